/* Scenario pipeline: producer/consumer pairs; every block a producer
 * allocates is verified, maybe realloc'd, and freed by its consumer. */
#include <sched.h>
#include <stdlib.h>

#include "torture.h"

static void backoff(unsigned *spins)
{
    if (++*spins < 16)
        sched_yield();
    else
        sleep_us(50);
}

static void *producer_main(void *arg)
{
    struct worker *w = arg;
    struct blk b;
    while (!worker_done(w)) {
        alloc_blk(w, &b, pick_size(w));
        unsigned spins = 0;
        while (!q_push(w->pipe, &b)) {
            if (atomic_load_explicit(&g_stop, memory_order_relaxed)) {
                free_blk(w, &b, "before free (queue closed)");
                break;
            }
            backoff(&spins);
        }
    }
    atomic_store(w->pipe_done, 1);
    atomic_fetch_add(&g_finished, 1);
    return NULL;
}

static void consume(struct worker *w, struct blk *b)
{
    if (opt.consumer_delay_us)
        sleep_us(opt.consumer_delay_us);
    if (opt.realloc_pct && pct(w) < (unsigned)opt.realloc_pct)
        realloc_blk(w, b, pick_realloc_size(w, b->size));
    free_blk(w, b, "before free by the consumer");
    w->remote_recv++;
}

static void *consumer_main(void *arg)
{
    struct worker *w = arg;
    struct blk b;
    unsigned spins = 0;
    for (;;) {
        if (q_pop(w->pipe, &b)) {
            spins = 0;
            consume(w, &b);
            continue;
        }
        if (atomic_load(w->pipe_done)) {
            if (q_pop(w->pipe, &b)) {
                consume(w, &b);
                continue;
            }
            break;
        }
        backoff(&spins);
    }
    atomic_fetch_add(&g_finished, 1);
    return NULL;
}

static double run_pairs(unsigned pairs, uint64_t ops_limit)
{
    struct worker *w = calloc(2 * pairs, sizeof *w);
    struct queue *q = calloc(pairs, sizeof *q);
    _Atomic int *done = calloc(pairs, sizeof *done);
    if (!w || !q || !done)
        die(EXIT_USAGE, "hmm-stress: out of memory for the pipeline\n");
    atomic_store(&g_finished, 0);
    for (unsigned i = 0; i < pairs; i++) {
        q_init(&q[i], opt.queue);
        atomic_init(&done[i], 0);
        for (unsigned k = 0; k < 2; k++) {
            struct worker *x = &w[2 * i + k];
            worker_init(x, 2 * i + k, 0, default_budget(), k == 0 ? ops_limit : 0);
            x->pipe = &q[i];
            x->pipe_done = &done[i];
        }
    }
    double t0 = now_s();
    g_deadline = opt.seconds > 0 ? t0 + opt.seconds : 0;
    for (unsigned i = 0; i < pairs; i++) {
        start_thread(&w[2 * i].th, NULL, producer_main, &w[2 * i]);
        start_thread(&w[2 * i + 1].th, NULL, consumer_main, &w[2 * i + 1]);
    }
    info("hmm-stress: %u producer/consumer pairs started (queue %zu)\n", pairs, q[0].mask + 1);
    monitor_run(g_deadline, (int)(2 * pairs));
    for (unsigned i = 0; i < 2 * pairs; i++) {
        pthread_join(w[i].th, NULL);
        add_totals(&w[i]);
    }
    double el = now_s() - t0;
    for (unsigned i = 0; i < pairs; i++)
        q_destroy(&q[i]);
    free(q);
    free(w);
    free((void *)done);
    return el;
}

double run_pipeline(unsigned threads)
{
    return run_pairs(threads / 2 ? threads / 2 : 1, ops_per_thread(200000));
}
