/* scratch: passive false sharing (Hoard's cache-scratch).  The main thread
 * allocates one small object per thread, side by side, and hands one to each
 * thread; each thread frees it, then repeatedly allocates a small object,
 * writes it many times and frees it.  An allocator that gives a thread the
 * block another thread freed (or a neighbour of another thread's block) puts
 * two threads' hot objects on one cache line, and the writes bounce the line
 * between cores.  With -t 1 there is nothing to share: it measures the
 * malloc/free/write loop. */
#include <stdlib.h>

#include "bench.h"

#define SCRATCH_SIZE 8
#define SCRATCH_WRITES 50

struct scratch_arg {
    unsigned char *first;
    uint64_t ops;
    uint64_t sum;
    char pad[64];
};

static void *scratch_thread(void *arg)
{
    struct scratch_arg *a = arg;
    free(a->first);
    uint64_t sum = 0;
    for (uint64_t i = 0; i < a->ops; i++) {
        volatile unsigned char *p = malloc(SCRATCH_SIZE);
        if (!p)
            bench_die("malloc");
        for (int w = 0; w < SCRATCH_WRITES; w++)
            for (int j = 0; j < SCRATCH_SIZE; j++)
                p[j] = (unsigned char)(p[j] + 1);
        sum += p[0];
        free((void *)p);
    }
    a->sum = sum;
    return NULL;
}

static uint64_t scratch_run(const struct bench_params *bp, uint64_t ops)
{
    int n = bp->threads;
    struct scratch_arg *args = bench_calloc((size_t)n, sizeof *args);
    for (int i = 0; i < n; i++) {
        args[i].first = malloc(SCRATCH_SIZE);
        if (!args[i].first)
            bench_die("malloc");
        args[i].ops = ops;
    }
    bench_run_threads(n, scratch_thread, args, sizeof *args);
    bench_sink_sums(&args[0].sum, n, sizeof *args);
    free(args);
    return ops * (uint64_t)n;
}

const struct workload wl_scratch = {
    "scratch", "cache-scratch: small objects passed between threads, written hard (false sharing)",
    2000000, scratch_run,
};
