/* A block that realloc has to move to grow gets room to grow again, so that
 * a string grown by appends does not copy itself at every step; but most
 * such blocks stop growing somewhere, and keep that room for good.  redis
 * grows each list node by one element's bytes up to 8 KiB: with half as
 * much room again its used_memory (the sum of malloc_usable_size) was
 * 1.24 x the bytes it asked for, and its peak RSS 78 MiB against
 * jemalloc's 66, whose size classes are a quarter apart.  Here 1,024
 * blocks grow side by side (so that each one's neighbour is in use and it
 * must move) by 261 bytes up to 1..8 KiB each; the usable bytes they end
 * with must stay within 1.15 x what was asked: a quarter of room given at
 * each move keeps it under 1.13, and half as much again gave 1.21. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "hmm.h"
#include "testutil.h"

#define BLOCKS 1024
#define STEP 261
#define MAX_SLACK 1.15

int main(void)
{
    static char *block[BLOCKS];
    static size_t size[BLOCKS], target[BLOCKS];
    uint64_t rng = test_seed(0x51ac);
    for (int i = 0; i < BLOCKS; i++)
        target[i] = rng_log_size(&rng, 1024, 8192);
    for (int growing = BLOCKS; growing > 0;) {
        growing = 0;
        for (int i = 0; i < BLOCKS; i++) {
            if (size[i] >= target[i])
                continue;
            char *grown = hmm_realloc(block[i], size[i] + STEP);
            CHECK(grown != NULL, "realloc to %zu failed", size[i] + STEP);
            memset(grown + size[i], (char)i, STEP);
            block[i] = grown;
            size[i] += STEP;
            growing++;
        }
    }
    size_t asked = 0, usable = 0;
    for (int i = 0; i < BLOCKS; i++) {
        asked += size[i];
        usable += hmm_malloc_usable_size(block[i]);
        CHECK(block[i][0] == (char)i && block[i][size[i] - 1] == (char)i, "block %d lost its bytes", i);
        hmm_free(block[i]);
    }
    double slack = (double)usable / (double)asked;
    printf("%d blocks grown by %d bytes: %zu usable bytes for %zu asked (%.3f x)\n", BLOCKS, STEP, usable,
           asked, slack);
    CHECK(slack <= MAX_SLACK, "grown blocks keep %.3f x the bytes asked, more than %.2f x", slack, MAX_SLACK);
    return 0;
}
