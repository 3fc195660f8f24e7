/* xmalloc: producers and consumers (after xmalloc-test -w N -s 64).  Each
 * of -t producers allocates 64-byte blocks, writes them, and hands them in
 * bundles of XM_BUNDLE through one shared queue to -t consumers, which read
 * and free them: every block is freed by a thread that did not allocate it,
 * and blocks flow one way.  The queue holds at most XM_QUEUE bundles.  -t N
 * runs 2N threads; ops is blocks per producer. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define XM_SIZE 64
#define XM_BUNDLE 64
#define XM_QUEUE 64

struct xm_bundle {
    struct xm_bundle *next;
    size_t count;
    void *block[XM_BUNDLE];
};

struct xm_queue {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct xm_bundle *head, *tail;
    unsigned queued, producers_left;
};

struct xm_arg {
    struct xm_queue *q;
    uint64_t ops;
    uint64_t sum;
    int consumer;
    char pad[64];
};

static void xm_put(struct xm_queue *q, struct xm_bundle *b)
{
    pthread_mutex_lock(&q->lock);
    while (q->queued >= XM_QUEUE)
        pthread_cond_wait(&q->changed, &q->lock);
    b->next = NULL;
    if (q->tail)
        q->tail->next = b;
    else
        q->head = b;
    q->tail = b;
    q->queued++;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->lock);
}

/* The next bundle, or NULL once every producer is done and the queue empty. */
static struct xm_bundle *xm_get(struct xm_queue *q)
{
    pthread_mutex_lock(&q->lock);
    while (q->head == NULL && q->producers_left > 0)
        pthread_cond_wait(&q->changed, &q->lock);
    struct xm_bundle *b = q->head;
    if (b) {
        q->head = b->next;
        if (q->head == NULL)
            q->tail = NULL;
        q->queued--;
        pthread_cond_broadcast(&q->changed);
    }
    pthread_mutex_unlock(&q->lock);
    return b;
}

static void xm_produce(struct xm_arg *a)
{
    for (uint64_t done = 0; done < a->ops;) {
        struct xm_bundle *b = malloc(sizeof *b);
        if (!b)
            bench_die("malloc");
        for (b->count = 0; b->count < XM_BUNDLE && done < a->ops; b->count++, done++) {
            unsigned char *p = malloc(XM_SIZE);
            if (!p)
                bench_die("malloc");
            memset(p, (int)done, XM_SIZE);
            b->block[b->count] = p;
        }
        xm_put(a->q, b);
    }
    pthread_mutex_lock(&a->q->lock);
    a->q->producers_left--;
    pthread_cond_broadcast(&a->q->changed);
    pthread_mutex_unlock(&a->q->lock);
}

static void xm_consume(struct xm_arg *a)
{
    struct xm_bundle *b;
    while ((b = xm_get(a->q)) != NULL) {
        for (size_t i = 0; i < b->count; i++) {
            a->sum += ((unsigned char *)b->block[i])[XM_SIZE - 1];
            free(b->block[i]);
        }
        free(b);
    }
}

static void *xm_thread(void *arg)
{
    struct xm_arg *a = arg;
    if (a->consumer)
        xm_consume(a);
    else
        xm_produce(a);
    return NULL;
}

static uint64_t xmalloc_run(const struct bench_params *bp, uint64_t ops)
{
    int n = bp->threads;
    struct xm_queue q = { .producers_left = (unsigned)n };
    pthread_mutex_init(&q.lock, NULL);
    pthread_cond_init(&q.changed, NULL);
    struct xm_arg *args = calloc((size_t)(2 * n), sizeof *args);
    if (!args)
        bench_die("calloc");
    for (int i = 0; i < 2 * n; i++)
        args[i] = (struct xm_arg){ .q = &q, .ops = ops, .consumer = i % 2 };
    bench_run_threads(2 * n, xm_thread, args, sizeof *args);
    bench_sink_sums(&args[0].sum, 2 * n, sizeof *args);
    free(args);
    return ops * (uint64_t)n;
}

const struct workload wl_xmalloc = {
    "xmalloc", "-t producers allocate 64 B blocks that -t consumers free (bundles through one queue)",
    10000000, xmalloc_run,
};
