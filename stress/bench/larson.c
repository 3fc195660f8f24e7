/* larson: a server keeps a pool of live objects per thread and replaces them
 * at random (Larson & Krishnan's benchmark, fixed work instead of fixed time).
 * Sizes are uniform over 8..1000 bytes (larson 3 8 1000 5000 ...).  The thread's work is cut into
 * generations: at the end of each, the thread exits and a new thread takes
 * over its pool, so objects allocated by one thread are freed by the next
 * (what thread pools that recycle workers do).  -t is the number of pools
 * (concurrent threads). */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define LARSON_SLOTS 5000
#define LARSON_GENERATIONS 8
#define LARSON_MIN 8
#define LARSON_MAX 1000

struct larson_pool {
    void **slot;
    uint64_t rng;
    uint64_t ops;       /* per generation */
    uint64_t sum;
};

static void *larson_gen(void *arg)
{
    struct larson_pool *pool = arg;
    uint64_t rng = pool->rng, sum = pool->sum;
    for (uint64_t i = 0; i < pool->ops; i++) {
        uint64_t r = rng_next(&rng);
        size_t k = (size_t)(r % LARSON_SLOTS);
        size_t size = LARSON_MIN + (size_t)((r >> 32) % (LARSON_MAX - LARSON_MIN + 1));
        unsigned char *old = pool->slot[k];
        sum += old[0];
        free(old);
        unsigned char *p = malloc(size);
        if (!p)
            bench_die("malloc");
        p[0] = (unsigned char)size;
        p[size - 1] = (unsigned char)i;
        pool->slot[k] = p;
    }
    pool->rng = rng;
    pool->sum = sum;
    return NULL;
}

static void *larson_fill(void *arg)
{
    struct larson_pool *pool = arg;
    pool->slot = malloc(sizeof(void *) * LARSON_SLOTS);
    if (!pool->slot)
        bench_die("malloc");
    for (size_t k = 0; k < LARSON_SLOTS; k++) {
        size_t size = rng_range(&pool->rng, LARSON_MIN, LARSON_MAX);
        unsigned char *p = malloc(size);
        if (!p)
            bench_die("malloc");
        p[0] = (unsigned char)size;
        pool->slot[k] = p;
    }
    return NULL;
}

static void *larson_drain(void *arg)
{
    struct larson_pool *pool = arg;
    for (size_t k = 0; k < LARSON_SLOTS; k++)
        free(pool->slot[k]);
    free(pool->slot);
    return NULL;
}

static uint64_t larson_run(const struct bench_params *bp, uint64_t ops)
{
    int n = bp->threads;
    struct larson_pool *pools = bench_calloc((size_t)n, sizeof *pools);
    uint64_t per_gen = ops / LARSON_GENERATIONS;
    if (!per_gen)
        per_gen = 1;
    for (int i = 0; i < n; i++) {
        pools[i].rng = rng_seed(1, (uint64_t)i);
        pools[i].ops = per_gen;
    }
    bench_run_threads(n, larson_fill, pools, sizeof *pools);
    for (int g = 0; g < LARSON_GENERATIONS; g++)
        bench_run_threads(n, larson_gen, pools, sizeof *pools);
    bench_run_threads(n, larson_drain, pools, sizeof *pools);
    bench_sink_sums(&pools[0].sum, n, sizeof *pools);
    free(pools);
    return per_gen * LARSON_GENERATIONS * (uint64_t)n;
}

const struct workload wl_larson = {
    "larson", "pool of live objects per thread replaced at random, 8..1000 B, threads recycled",
    12000000, larson_run,
};
