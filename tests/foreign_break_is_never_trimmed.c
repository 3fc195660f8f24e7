/* When another part of the program moves the break (sbrk) above hmm's
 * heap, hmm never lowers the break below that memory and never hands it
 * out: after hmm's blocks are all freed and malloc_trim(0) runs, the
 * foreign memory is still mapped, intact and above the break's floor, and
 * blocks allocated afterwards never overlap it.
 *
 * DESIGN.md: "The break never drops below memory that is in use or that hmm
 * does not own."  Uses the hmm_* names only. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hmm.h"
#include "testutil.h"

#define MiB ((size_t)1 << 20)
#define N 4000
#define FOREIGN (1 * MiB)

static void *blocks[N];
static size_t sizes[N];

static int overlaps(const void *p, size_t n, const char *lo, const char *hi)
{
    const char *a = p, *b = a + n;
    return a < hi && b > lo;
}

int main(void)
{
    uint64_t r = 5;
    char *foreign, *foreign_end, *brk_now;
    size_t i, bad;
    int rc;

    alarm(TEST_TIMEOUT);
    /* hmm's heap grows with sbrk: 4000 blocks of up to 16 KiB (~32 MiB). */
    for (i = 0; i < N; i++) {
        sizes[i] = rng_range(&r, 1, 16384);
        blocks[i] = hmm_malloc(sizes[i]);
        CHECK(blocks[i] != NULL, "malloc(%zu) failed", sizes[i]);
        memset(blocks[i], 0x11, sizes[i]);
    }

    /* Someone else moves the break: memory hmm does not own. */
    foreign = sbrk((intptr_t)FOREIGN);
    if (foreign == (void *)-1) {
        printf("sbrk refused to move the break: nothing to test\n");
        return TEST_SKIP;
    }
    foreign_end = foreign + FOREIGN;
    pattern_fill(foreign, FOREIGN, 0xf0f0);
    printf("foreign memory %p..%p\n", (void *)foreign, (void *)foreign_end);

    /* hmm frees everything and is asked to give memory back. */
    for (i = 0; i < N; i++)
        hmm_free(blocks[i]);
    rc = hmm_check();
    CHECK(rc == 0, "hmm_check() returned %d after freeing everything", rc);
    brk_now = sbrk(0);
    CHECK(brk_now >= foreign_end, "the break %p fell below foreign memory ending at %p "
          "after the frees", (void *)brk_now, (void *)foreign_end);
    rc = hmm_malloc_trim(0);
    CHECK(rc == 0 || rc == 1, "malloc_trim(0) returned %d", rc);
    brk_now = sbrk(0);
    CHECK(brk_now >= foreign_end, "the break %p fell below foreign memory ending at %p "
          "after malloc_trim(0)", (void *)brk_now, (void *)foreign_end);
    bad = pattern_check(foreign, FOREIGN, 0xf0f0);   /* would fault if unmapped */
    CHECK(bad == (size_t)-1, "foreign memory changed at offset %zu", bad);

    /* hmm grows again (above the foreign memory, or elsewhere) and never
     * hands out the foreign bytes. */
    for (i = 0; i < N; i++) {
        sizes[i] = rng_range(&r, 1, 32768);
        blocks[i] = hmm_malloc(sizes[i]);
        CHECK(blocks[i] != NULL, "malloc(%zu) failed", sizes[i]);
        CHECK(!overlaps(blocks[i], sizes[i], foreign, foreign_end),
              "block %p of %zu bytes overlaps the foreign memory %p..%p", blocks[i],
              sizes[i], (void *)foreign, (void *)foreign_end);
        memset(blocks[i], 0x22, sizes[i]);
    }
    bad = pattern_check(foreign, FOREIGN, 0xf0f0);
    CHECK(bad == (size_t)-1, "foreign memory changed at offset %zu after new allocations",
          bad);
    for (i = 0; i < N; i++)
        hmm_free(blocks[i]);
    rc = hmm_malloc_trim(0);
    CHECK(rc == 0 || rc == 1, "malloc_trim(0) returned %d", rc);
    brk_now = sbrk(0);
    CHECK(brk_now >= foreign_end, "the break %p fell below foreign memory ending at %p",
          (void *)brk_now, (void *)foreign_end);
    bad = pattern_check(foreign, FOREIGN, 0xf0f0);
    CHECK(bad == (size_t)-1, "foreign memory changed at offset %zu at the end", bad);
    rc = hmm_check();
    CHECK(rc == 0, "hmm_check() returned %d at the end", rc);
    printf("foreign memory intact, break %p above it\n", (void *)brk_now);
    return 0;
}
