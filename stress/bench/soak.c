/* soak: steady churn over a fixed live set (issue 8).  40,000 shared slots
 * hold about 200 MiB: sizes 16 B..1 KiB (80 %), 1..32 KiB (17 %) and
 * 32..96 KiB (3 %).  -t threads (2 in the issue) each step malloc a new
 * block, write its first 256 bytes, swap it into a random slot with an
 * atomic exchange and free the block it displaced, so any thread frees any
 * other's blocks.  The live set never grows: a footprint that keeps rising
 * is the allocator's.  -i prints the RSS as it goes. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "soak_mix.h"

#define SOAK_SLOTS 40000
#define SOAK_TOUCH 256

static _Atomic(unsigned char *) soak_slot[SOAK_SLOTS];

static unsigned char *soak_block(uint64_t *rng)
{
    size_t size = soak_mix_size(rng);
    unsigned char *p = malloc(size);
    if (!p)
        bench_die("malloc");
    memset(p, (int)size, size < SOAK_TOUCH ? size : SOAK_TOUCH);
    return p;
}

static void *soak_thread(void *arg)
{
    struct seeded_arg *a = arg;
    uint64_t rng = a->seed, sum = 0;
    for (uint64_t i = 0; i < a->ops; i++) {
        size_t k = (size_t)(rng_next(&rng) % SOAK_SLOTS);
        unsigned char *old = atomic_exchange_explicit(&soak_slot[k], soak_block(&rng),
                                                      memory_order_acq_rel);
        sum += old[0];
        free(old);
    }
    a->sum = sum;
    return NULL;
}

static uint64_t soak_run(const struct bench_params *bp, uint64_t ops)
{
    uint64_t rng = rng_seed(10, 0);
    for (size_t k = 0; k < SOAK_SLOTS; k++)
        atomic_store_explicit(&soak_slot[k], soak_block(&rng), memory_order_relaxed);
    uint64_t done = bench_run_seeded(bp, ops, 10, soak_thread);
    for (size_t k = 0; k < SOAK_SLOTS; k++)
        free(atomic_exchange_explicit(&soak_slot[k], NULL, memory_order_relaxed));
    return done;
}

const struct workload wl_soak = {
    "soak", "steady churn, 40,000 shared slots (~200 MiB live), 16 B..96 KiB, cross-thread frees",
    2000000, soak_run,
};
