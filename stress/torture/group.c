/* Starting threads, the default slots and budget, and groups of private
 * workers (the private, many and fork scenarios) held at a start barrier
 * until all are running. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "torture.h"

void start_thread(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    int e;
    while ((e = pthread_create(th, attr, fn, arg)) == EAGAIN)
        sleep_us(1000);
    if (e)
        die(EXIT_USAGE, "hmm-stress: pthread_create: %s\n", strerror(e));
}

size_t default_slots(void)
{
    if (opt.slots_set)
        return opt.slots;
    switch (opt.sizes) {
    case SZ_HUGE:
        return 8;
    case SZ_MEDIUM:
        return 128;
    default:
        return 1024;
    }
}

size_t default_budget(void)
{
    if (opt.live_set)
        return opt.live_bytes;
    switch (opt.sizes) {
    case SZ_TINY:
    case SZ_SMALL:
        return 4 * MiB;
    case SZ_MEDIUM:
        return 32 * MiB;
    case SZ_HUGE:
        return 160 * MiB;
    default:
        return 32 * MiB;
    }
}

static void *private_main(void *arg)
{
    struct worker *w = arg;
    alloc_slots(w);
    pthread_barrier_wait(&w->g->start);
    while (!worker_done(w))
        step(w, w->g->fork_hammers);
    atomic_fetch_add(&g_finished, 1);
    /* Nobody hands off after this barrier: drain and free everything. */
    pthread_barrier_wait(&w->g->end);
    if (w->inbox)
        drain_inbox(w, UINT_MAX);
    free_all_slots(w, "before the final free");
    free(w->slots);
    w->slots = NULL;
    return NULL;
}

static struct group *make_group(unsigned n, size_t nslots, size_t budget, uint64_t ops_limit)
{
    struct group *g = calloc(1, sizeof *g);
    g->w = calloc(n, sizeof *g->w);
    if (!g || !g->w)
        die(EXIT_USAGE, "hmm-stress: out of memory for %u workers\n", n);
    g->n = n;
    if (n > 1 && opt.remote_pct > 0) {
        g->inboxes = calloc(n, sizeof *g->inboxes);
        if (!g->inboxes)
            die(EXIT_USAGE, "hmm-stress: out of memory for inboxes\n");
    }
    for (unsigned i = 0; i < n; i++) {
        worker_init(&g->w[i], i, nslots, budget, ops_limit);
        g->w[i].g = g;
        if (g->inboxes) {
            q_init(&g->inboxes[i], opt.queue < 256 ? opt.queue : 256);
            g->w[i].inbox = &g->inboxes[i];
        }
    }
    return g;
}

static void free_group(struct group *g)
{
    if (g->inboxes)
        for (unsigned i = 0; i < g->n; i++)
            q_destroy(&g->inboxes[i]);
    free(g->inboxes);
    free(g->w);
    free(g);
}

struct group *group_start(unsigned n, size_t stack, size_t nslots, size_t budget, uint64_t ops_limit,
                          bool fork_hammers)
{
    struct group *g = make_group(n, nslots, budget, ops_limit);
    g->fork_hammers = fork_hammers;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (stack) {
        int e = pthread_attr_setstacksize(&attr, stack);
        if (e)
            die(EXIT_USAGE, "hmm-stress: pthread_attr_setstacksize(%zu): %s\n", stack, strerror(e));
    }
    pthread_barrier_init(&g->start, NULL, n + 1);
    pthread_barrier_init(&g->end, NULL, n);
    atomic_store(&g_finished, 0);
    for (unsigned i = 0; i < n; i++)
        start_thread(&g->w[i].th, &attr, private_main, &g->w[i]);
    pthread_attr_destroy(&attr);
    return g;
}

void group_go(struct group *g)
{
    pthread_barrier_wait(&g->start);
}

void group_join(struct group *g)
{
    for (unsigned i = 0; i < g->n; i++) {
        pthread_join(g->w[i].th, NULL);
        add_totals(&g->w[i]);
    }
    pthread_barrier_destroy(&g->start);
    pthread_barrier_destroy(&g->end);
    free_group(g);
}
