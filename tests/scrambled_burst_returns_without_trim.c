/* A burst freed in scrambled order is given back at once, with no call to
 * malloc_trim (issue 8).  One thread allocates 512 MiB in blocks of
 * 64 B..64 KiB, half of the bytes in blocks below 1 KiB (log-uniform
 * 64..1024 B; the rest log-uniform 1..64 KiB), writes every byte, then
 * frees them all in a stride walk over the array.  Right after the last
 * free -- default options, no other call -- the resident set is back within
 * 16 MiB of where it was before the burst.
 *
 * The program calls the plain names, so it measures any malloc (built
 * alone it runs on glibc's):
 *     cc -O2 -I tests -o /tmp/burst tests/scrambled_burst_returns_without_trim.c && /tmp/burst
 * Measured, RSS at the start / peak / after the last free: glibc 2.36
 * 1.2 / 530.6 / 528.3 MiB; hmm before issue 8 9.2 / 566.9 / 566.9 MiB.
 * In a --disable-override build it calls the hmm_* names. */
#include "plain_names.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define MiB ((size_t)1 << 20)
#define BURST (512 * MiB)
#define MAX_BLOCKS 1000000      /* about 764,000 at this size */
#define STRIDE 7919u            /* a prime: the walk visits every block once */
#define SLACK (16 * MiB)

int main(void)
{
    uint64_t rng = test_seed(8);
    size_t small = 0, large = 0, n = 0;
    unsigned char **block = malloc(MAX_BLOCKS * sizeof(*block));
    CHECK(block != NULL, "malloc of the block array failed");
    memset(block, 0, MAX_BLOCKS * sizeof(*block));
    size_t rss0 = resident_bytes();

    while (small + large < BURST) {
        size_t size = small <= large ? rng_log_size(&rng, 64, 1024) : rng_log_size(&rng, 1024, 65536);
        CHECK(n < MAX_BLOCKS, "more than %d blocks", MAX_BLOCKS);
        block[n] = malloc(size);
        CHECK(block[n] != NULL, "malloc(%zu) failed after %zu blocks", size, n);
        memset(block[n++], 0xb5, size);
        *(size < 1024 ? &small : &large) += size;
    }
    size_t peak = resident_bytes();
    CHECK(n % STRIDE != 0, "the stride divides the block count");
    for (size_t i = 0, at = 0; i < n; i++, at = (at + STRIDE) % n)
        free(block[at]);
    size_t after = resident_bytes();

    printf("%zu blocks, %.1f MiB (%.1f MiB below 1 KiB); RSS start %.1f MiB, peak %.1f MiB, "
           "after the last free %.1f MiB\n", n, (double)(small + large) / MiB,
           (double)small / MiB, (double)rss0 / MiB, (double)peak / MiB, (double)after / MiB);
    fflush(stdout);
    free(block);
    CHECK(peak >= rss0 + BURST / 2, "the burst was not resident (%.1f MiB at the peak)",
          (double)peak / MiB);
    CHECK(after <= rss0 + SLACK, "%.1f MiB still resident after the last free, %.1f MiB at the "
          "start: %.1f MiB kept", (double)after / MiB, (double)rss0 / MiB,
          (double)(after - rss0) / MiB);
    return 0;
}
