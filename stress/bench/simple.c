/* simple: single-thread batches (after glibc's bench-malloc-simple).  Each
 * round allocates N blocks of 16 bytes for N = 25, 100, 400 and 1600,
 * writes them, and frees the first half oldest first and the second half
 * newest first.  The larger batches overflow a cache class every round.
 * Each of -t threads runs its own rounds; ops counts blocks per thread. */
#include <stdlib.h>

#include "bench.h"

#define SIMPLE_SIZE 16
#define SIMPLE_MAX 1600

static void simple_batch(void **block, size_t n, uint64_t *sum)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char *p = malloc(SIMPLE_SIZE);
        if (!p)
            bench_die("malloc");
        p[0] = (unsigned char)i;
        p[SIMPLE_SIZE - 1] = (unsigned char)n;
        block[i] = p;
    }
    for (size_t i = 0; i < n / 2; i++) {
        *sum += ((unsigned char *)block[i])[0];
        free(block[i]);
    }
    for (size_t i = n; i-- > n / 2;) {
        *sum += ((unsigned char *)block[i])[0];
        free(block[i]);
    }
}

static void *simple_thread(void *arg)
{
    static const size_t batch[] = { 25, 100, 400, 1600 };
    struct seeded_arg *a = arg;
    void **block = malloc(sizeof(void *) * SIMPLE_MAX);
    if (!block)
        bench_die("malloc");
    uint64_t sum = 0;
    for (uint64_t done = 0; done < a->ops;)
        for (size_t k = 0; k < sizeof batch / sizeof batch[0]; k++) {
            simple_batch(block, batch[k], &sum);
            done += batch[k];
        }
    free(block);
    a->sum = sum;
    return NULL;
}

static uint64_t simple_run(const struct bench_params *bp, uint64_t ops)
{
    return bench_run_seeded(bp, ops, 20, simple_thread);
}

const struct workload wl_simple = {
    "simple", "batches of 25, 100, 400, 1600 16 B blocks, freed half FIFO half LIFO (glibc malloc-simple)",
    20000000, simple_run,
};
