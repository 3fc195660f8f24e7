/* idle: many threads that sit idle between bursts.  16 x -t worker threads
 * each block on a semaphore; the main thread wakes -t of them at a time, in
 * turn, for a burst: replace the worker's 32 long-lived "session" objects
 * (64..1024 B) and allocate 1000 temporaries (log-uniform 16..2048 B), touch
 * them and free them all.  Most threads are asleep most of the time, each
 * with whatever its allocator cached for it: the peak RSS shows what idle
 * threads cost, the time what waking cold caches costs. */
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define IDLE_PER_THREAD 16
#define IDLE_BURST 1000
#define IDLE_SESSION 32

struct idle_worker {
    sem_t go;
    sem_t *done;
    int stop;
    uint64_t seed;
    uint64_t bursts;
    uint64_t sum;
    char pad[64];
};

/* A block of size with its first 16 bytes written. */
static unsigned char *idle_block(size_t size, int k)
{
    unsigned char *p = malloc(size);
    if (!p)
        bench_die("malloc");
    memset(p, k, 16);
    return p;
}

static void *idle_thread(void *arg)
{
    struct idle_worker *w = arg;
    uint64_t rng = w->seed, sum = 0;
    void *session[IDLE_SESSION] = { 0 };
    unsigned char *tmp[IDLE_BURST];
    for (;;) {
        while (sem_wait(&w->go) != 0)
            ;
        if (w->stop)
            break;
        for (int k = 0; k < IDLE_SESSION; k++) {
            free(session[k]);
            session[k] = idle_block(rng_range(&rng, 64, 1024), k);
        }
        for (int k = 0; k < IDLE_BURST; k++)
            tmp[k] = idle_block(rng_logsize(&rng, 16, 2048), k);
        for (int k = 0; k < IDLE_BURST; k++) {
            sum += tmp[k][k & 15];
            free(tmp[k]);
        }
        w->bursts++;
        sem_post(w->done);
    }
    for (int k = 0; k < IDLE_SESSION; k++)
        free(session[k]);
    w->sum = sum;
    return NULL;
}

struct idle_main {
    int nworkers, active;
    uint64_t rounds;
    struct idle_worker *w;
    sem_t done;
};

static void *idle_driver(void *arg)
{
    struct idle_main *m = arg;
    int next = 0;
    for (uint64_t r = 0; r < m->rounds; r++) {
        for (int i = 0; i < m->active; i++) {
            sem_post(&m->w[next].go);
            next = (next + 1) % m->nworkers;
        }
        for (int i = 0; i < m->active; i++)
            while (sem_wait(&m->done) != 0)
                ;
    }
    for (int i = 0; i < m->nworkers; i++) {
        m->w[i].stop = 1;
        sem_post(&m->w[i].go);
    }
    return NULL;
}

static void *idle_dispatch(void *arg)
{
    /* thread 0 drives, the others are workers */
    struct idle_worker *w = arg;
    if (w->done == NULL)
        return idle_driver((void *)(uintptr_t)w->seed);
    return idle_thread(w);
}

static uint64_t idle_run(const struct bench_params *bp, uint64_t ops)
{
    struct idle_main m;
    m.active = bp->threads;
    m.nworkers = IDLE_PER_THREAD * bp->threads;
    m.rounds = ops / IDLE_BURST ? ops / IDLE_BURST : 1;
    /* slot 0: the driver; slots 1..nworkers: the workers */
    struct idle_worker *slots = calloc((size_t)m.nworkers + 1, sizeof *slots);
    if (!slots || sem_init(&m.done, 0, 0))
        bench_die("init");
    m.w = slots + 1;
    slots[0].seed = (uint64_t)(uintptr_t)&m;
    for (int i = 0; i < m.nworkers; i++) {
        if (sem_init(&m.w[i].go, 0, 0))
            bench_die("sem_init");
        m.w[i].done = &m.done;
        m.w[i].seed = rng_seed(7, (uint64_t)i);
    }
    bench_run_threads(m.nworkers + 1, idle_dispatch, slots, sizeof *slots);
    uint64_t sum = 0, bursts = 0;
    for (int i = 0; i < m.nworkers; i++) {
        sum += m.w[i].sum;
        bursts += m.w[i].bursts;
        sem_destroy(&m.w[i].go);
    }
    sem_destroy(&m.done);
    BENCH_SINK(sum);
    free(slots);
    return bursts * IDLE_BURST;
}

const struct workload wl_idle = {
    "idle", "16 x -t threads asleep between bursts, -t awake at a time",
    4000000, idle_run,
};
