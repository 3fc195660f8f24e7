/* prodcon: producer/consumer.  Each of -t pairs has a producer thread that
 * allocates messages (16..512 bytes, and one in 16 a 1..4 KiB buffer), fills
 * a header and hands them through a bounded single-producer single-consumer
 * ring to its consumer thread, which reads and frees them: every block is
 * freed by a thread other than the one that allocated it.  -t N runs 2N
 * threads. */
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define RING 1024   /* power of two */

struct msg {
    uint64_t seq;
    uint64_t size;
};

struct ring {
    _Alignas(64) _Atomic uint64_t head;     /* written by the producer */
    _Alignas(64) _Atomic uint64_t tail;     /* written by the consumer */
    _Alignas(64) void *slot[RING];
};

struct pc_arg {
    struct ring *ring;
    uint64_t ops;
    uint64_t seed;
    uint64_t sum;
    int consumer;
    char pad[64];
};

static void *producer(void *arg)
{
    struct pc_arg *a = arg;
    struct ring *q = a->ring;
    uint64_t rng = a->seed;
    uint64_t head = 0, tail_seen = 0;
    for (uint64_t i = 0; i < a->ops; i++) {
        uint64_t r = rng_next(&rng);
        size_t size = (r & 15) == 0 ? 1024 + (size_t)((r >> 16) % 3073)
                                    : 16 + (size_t)((r >> 16) % 497);
        struct msg *m = malloc(size);
        if (!m)
            bench_die("malloc");
        m->seq = i;
        m->size = size;
        if (size > sizeof *m)
            ((unsigned char *)m)[size - 1] = (unsigned char)i;
        int spins = 0;
        while (head - tail_seen >= RING) {
            tail_seen = atomic_load_explicit(&q->tail, memory_order_acquire);
            if (head - tail_seen >= RING && ++spins > 64) {
                sched_yield();
                spins = 0;
            }
        }
        q->slot[head & (RING - 1)] = m;
        atomic_store_explicit(&q->head, ++head, memory_order_release);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct pc_arg *a = arg;
    struct ring *q = a->ring;
    uint64_t tail = 0, head_seen = 0, sum = 0;
    for (uint64_t i = 0; i < a->ops; i++) {
        int spins = 0;
        while (tail == head_seen) {
            head_seen = atomic_load_explicit(&q->head, memory_order_acquire);
            if (tail == head_seen && ++spins > 64) {
                sched_yield();
                spins = 0;
            }
        }
        struct msg *m = q->slot[tail & (RING - 1)];
        sum += m->seq;
        if (m->size > sizeof *m)
            sum += ((unsigned char *)m)[m->size - 1];
        free(m);
        atomic_store_explicit(&q->tail, ++tail, memory_order_release);
    }
    a->sum = sum;
    return NULL;
}

static void *prodcon_thread(void *arg)
{
    struct pc_arg *a = arg;
    return a->consumer ? consumer(a) : producer(a);
}

static uint64_t prodcon_run(const struct bench_params *bp, uint64_t ops)
{
    int n = bp->threads;
    struct ring *rings = aligned_alloc(64, sizeof(struct ring) * (size_t)n);
    struct pc_arg *args = calloc((size_t)(2 * n), sizeof *args);
    if (!rings || !args)
        bench_die("malloc");
    memset(rings, 0, sizeof(struct ring) * (size_t)n);
    for (int i = 0; i < n; i++) {
        args[2 * i] = (struct pc_arg){ .ring = &rings[i], .ops = ops,
                                       .seed = rng_seed(2, (uint64_t)i) };
        args[2 * i + 1] = (struct pc_arg){ .ring = &rings[i], .ops = ops, .consumer = 1 };
    }
    bench_run_threads(2 * n, prodcon_thread, args, sizeof *args);
    bench_sink_sums(&args[0].sum, 2 * n, sizeof *args);
    free(args);
    free(rings);
    return ops * (uint64_t)n;
}

const struct workload wl_prodcon = {
    "prodcon", "producer/consumer pairs: allocated in one thread, freed in another (-t pairs)",
    2000000, prodcon_run,
};
