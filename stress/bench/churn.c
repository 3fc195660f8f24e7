/* churn: random size churn.  Each thread keeps 1000 live blocks whose sizes
 * are log-uniform over 8 B..64 KiB and replaces one at random per step,
 * writing the first and last 16 bytes of the new block.  Exercises every size
 * class, splitting and coalescing, and the boundary between small and large
 * blocks.  -t is the number of threads. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define CHURN_SLOTS 1000

static void *churn_thread(void *arg)
{
    struct seeded_arg *a = arg;
    uint64_t rng = a->seed, sum = 0;
    unsigned char **slot = calloc(CHURN_SLOTS, sizeof *slot);
    size_t *len = calloc(CHURN_SLOTS, sizeof *len);
    if (!slot || !len)
        bench_die("calloc");
    for (uint64_t i = 0; i < a->ops; i++) {
        size_t k = (size_t)(rng_next(&rng) % CHURN_SLOTS);
        if (slot[k]) {
            sum += slot[k][len[k] - 1];
            free(slot[k]);
        }
        size_t size = rng_logsize(&rng, 8, 65536);
        unsigned char *p = malloc(size);
        if (!p)
            bench_die("malloc");
        memset(p, (int)i, size < 16 ? size : 16);
        memset(p + (size > 16 ? size - 16 : 0), (int)k, size < 16 ? size : 16);
        slot[k] = p;
        len[k] = size;
    }
    for (size_t k = 0; k < CHURN_SLOTS; k++)
        free(slot[k]);
    free(slot);
    free(len);
    a->sum = sum;
    return NULL;
}

static uint64_t churn_run(const struct bench_params *bp, uint64_t ops)
{
    return bench_run_seeded(bp, ops, 4, churn_thread);
}

const struct workload wl_churn = {
    "churn", "random size churn, 1000 live blocks per thread, log-uniform 8 B..64 KiB",
    3000000, churn_run,
};
