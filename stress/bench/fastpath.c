/* fast32, fastcycle, fastfifo: the fast path.  malloc(n) immediately followed by
 * free, in a loop, on each of -t threads: n = 32 (fast32) or cycling through
 * 16, 32, ..., 512 (fastcycle); fastfifo mallocs 100 blocks of sizes
 * 16, 17, ..., 1024 in turn and frees them in the same order (the cache's
 * refill and flush path).  Nothing is written to the block; the pointer
 * is passed through an empty asm so the pair cannot be optimised away.  Under
 * callgrind, the difference between two runs with different -n divided by the
 * difference in pairs gives the instructions per malloc+free pair (the loop
 * itself adds about 3). */
#include <stdlib.h>

#include "bench.h"

struct fast_arg {
    uint64_t ops;
    int cycle;
    char pad[64];
};

static __attribute__((noinline)) void fast_loop_fixed(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        void *p = malloc(32);
        BENCH_SINK(p);
        free(p);
    }
}

static __attribute__((noinline)) void fast_loop_cycle(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        void *p = malloc(16 + ((size_t)(i & 31) << 4));
        BENCH_SINK(p);
        free(p);
    }
}

/* Every size from 16 to 1024 in turn, freed in first-in first-out
 * batches of FIFO_BATCH: a class comes back every 64 sizes or so, and the
 * cache refills and flushes classes all the time. */
#define FIFO_BATCH 100

static __attribute__((noinline)) void fast_loop_fifo(uint64_t n)
{
    void *batch[FIFO_BATCH];
    size_t size = 16;
    for (uint64_t i = 0; i < n; i += FIFO_BATCH) {
        for (int j = 0; j < FIFO_BATCH; j++) {
            batch[j] = malloc(size);
            BENCH_SINK(batch[j]);
            size = size == 1024 ? 16 : size + 1;
        }
        for (int j = 0; j < FIFO_BATCH; j++)
            free(batch[j]);
    }
}

static void *fast_thread(void *arg)
{
    struct fast_arg *a = arg;
    if (a->cycle == 2)
        fast_loop_fifo(a->ops);
    else if (a->cycle)
        fast_loop_cycle(a->ops);
    else
        fast_loop_fixed(a->ops);
    return NULL;
}

static uint64_t fast_run(const struct bench_params *bp, uint64_t ops, int cycle)
{
    int n = bp->threads;
    struct fast_arg *args = bench_calloc((size_t)n, sizeof *args);
    for (int i = 0; i < n; i++) {
        args[i].ops = ops;
        args[i].cycle = cycle;
    }
    bench_run_threads(n, fast_thread, args, sizeof *args);
    free(args);
    return ops * (uint64_t)n;
}

static uint64_t fast32_run(const struct bench_params *bp, uint64_t ops)
{
    return fast_run(bp, ops, 0);
}

static uint64_t fastcycle_run(const struct bench_params *bp, uint64_t ops)
{
    return fast_run(bp, ops, 1);
}

static uint64_t fastfifo_run(const struct bench_params *bp, uint64_t ops)
{
    return fast_run(bp, ops - ops % FIFO_BATCH, 2);
}

const struct workload wl_fast32 = {
    "fast32", "malloc(32)/free in a loop", 50000000, fast32_run,
};
const struct workload wl_fastcycle = {
    "fastcycle", "malloc(n)/free in a loop, n cycling 16..512 by 16", 30000000, fastcycle_run,
};
const struct workload wl_fastfifo = {
    "fastfifo", "malloc(n) for n = 16, 17, ..., 1024 in turn, freed in FIFO batches of 100",
    30000000, fastfifo_run,
};
