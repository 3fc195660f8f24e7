/* large: big buffers.  Each thread keeps 4 buffers whose sizes are
 * log-uniform over 64 KiB..32 MiB; each step frees one at random, allocates a
 * new one and writes one byte in every 4 KiB page of it (as a server filling
 * an I/O buffer would).  Measures how an allocator moves big blocks to and
 * from the kernel: mmap/munmap and page faults on every step, or memory kept
 * and reused (faster, but held).  -t is the number of threads. */
#include <stdlib.h>

#include "bench.h"

#define LARGE_SLOTS 4
#define PAGE 4096

static void *large_thread(void *arg)
{
    struct seeded_arg *a = arg;
    uint64_t rng = a->seed, sum = 0;
    unsigned char *slot[LARGE_SLOTS] = { 0 };
    size_t len[LARGE_SLOTS] = { 0 };
    for (uint64_t i = 0; i < a->ops; i++) {
        size_t k = (size_t)(rng_next(&rng) % LARGE_SLOTS);
        if (slot[k]) {
            sum += slot[k][len[k] / 2];
            free(slot[k]);
        }
        size_t size = rng_logsize(&rng, 65536, 32u << 20);
        unsigned char *p = malloc(size);
        if (!p)
            bench_die("malloc");
        for (size_t off = 0; off < size; off += PAGE)
            p[off] = (unsigned char)(off >> 12);
        p[size - 1] = 1;
        slot[k] = p;
        len[k] = size;
    }
    for (size_t k = 0; k < LARGE_SLOTS; k++)
        free(slot[k]);
    a->sum = sum;
    return NULL;
}

static uint64_t large_run(const struct bench_params *bp, uint64_t ops)
{
    return bench_run_seeded(bp, ops, 5, large_thread);
}

const struct workload wl_large = {
    "large", "4 live buffers per thread, log-uniform 64 KiB..32 MiB, every page written",
    2000, large_run,
};
