/* burst: a burst that is freed and should be given back (issue 8).  Each of
 * -t threads allocates its share of -n MiB (512 at scale 1) in blocks of
 * 64 B..64 KiB, half of the bytes in blocks below 1 KiB (log-uniform
 * 64..1024 B, the rest log-uniform 1..64 KiB: about 760,000 blocks for
 * 512 MiB), writes every byte, then frees them all in a scrambled order (a
 * stride walk over the array).  Nobody calls malloc_trim.  Prints
 *   burst rss_kib start=S peak=P after_free=A
 * the resident set before, at the end of the allocation and right after the
 * last free: A near S means the allocator gave the burst back on its own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define BURST_STRIDE 7919u   /* a prime: the walk visits every block once */

struct burst_arg {
    uint64_t bytes;
    uint64_t seed;
    uint64_t blocks;
    unsigned char **block;
    pthread_barrier_t *allocated, *freed;
    char pad[64];
};

/* Half of the bytes small: the next block is small while they lag behind. */
static size_t burst_size(uint64_t *rng, uint64_t small, uint64_t large)
{
    if (small <= large)
        return rng_logsize(rng, 64, 1024);
    return rng_logsize(rng, 1024, 65536);
}

static void burst_allocate(struct burst_arg *a)
{
    uint64_t rng = a->seed, small = 0, large = 0, n = 0, cap = 1024;
    unsigned char **block = malloc(cap * sizeof *block);
    while (block && small + large < a->bytes) {
        size_t size = burst_size(&rng, small, large);
        if (n == cap)
            block = realloc(block, (cap *= 2) * sizeof *block);
        if (!block || !(block[n] = malloc(size)))
            bench_die("malloc");
        memset(block[n], (int)n, size);
        n++;
        *(size < 1024 ? &small : &large) += size;
    }
    if (!block)
        bench_die("malloc");
    a->block = block;
    a->blocks = n;
}

static void burst_free(struct burst_arg *a)
{
    uint64_t n = a->blocks, at = 0;
    if (n % BURST_STRIDE == 0)
        bench_die("burst: block count divisible by the stride");
    for (uint64_t i = 0; i < n; i++, at = (at + BURST_STRIDE) % n)
        free(a->block[at]);
    free(a->block);
}

static void *burst_thread(void *arg)
{
    struct burst_arg *a = arg;
    burst_allocate(a);
    pthread_barrier_wait(a->allocated);
    pthread_barrier_wait(a->allocated);
    burst_free(a);
    pthread_barrier_wait(a->freed);
    return NULL;
}

static uint64_t burst_run(const struct bench_params *bp, uint64_t ops)
{
    int n = bp->threads;
    pthread_barrier_t allocated, freed;
    struct burst_arg *args = calloc((size_t)n, sizeof *args);
    if (!args || pthread_barrier_init(&allocated, NULL, (unsigned)n + 1) ||
        pthread_barrier_init(&freed, NULL, (unsigned)n + 1))
        bench_die("init");
    for (int i = 0; i < n; i++)
        args[i] = (struct burst_arg){ .bytes = (ops << 20) / (uint64_t)n,
                                      .seed = rng_seed(11, (uint64_t)i),
                                      .allocated = &allocated, .freed = &freed };
    long start = bench_rss_kib();
    pthread_t *tid = bench_start_threads(n, burst_thread, args, sizeof *args);
    pthread_barrier_wait(&allocated);
    long peak = bench_rss_kib();
    pthread_barrier_wait(&allocated);
    pthread_barrier_wait(&freed);
    long after = bench_rss_kib();
    bench_join_threads(n, tid);
    uint64_t blocks = 0;
    for (int i = 0; i < n; i++)
        blocks += args[i].blocks;
    printf("burst rss_kib start=%ld peak=%ld after_free=%ld blocks=%llu\n", start, peak, after,
           (unsigned long long)blocks);
    pthread_barrier_destroy(&allocated);
    pthread_barrier_destroy(&freed);
    free(args);
    return blocks;
}

const struct workload wl_burst = {
    "burst", "-n MiB (512) in 64 B..64 KiB blocks over -t threads, freed in scrambled order",
    512, burst_run,
};
