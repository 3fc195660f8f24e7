/* The central region: three chunks taken in a row lie next to each other;
 * given back in any order they merge into one free chunk, which the next
 * take of their total size reuses in place; given back again, malloc_trim's
 * region_trim lowers the break to where the first one began.  The region's
 * own check passes after every step.  (Nothing here may call malloc: it
 * shares the break.) */
#include "internal.h"
#include "testutil.h"

static struct region_stats stats(void)
{
    struct region_stats s;
    region_stats(&s);
    CHECK(region_check() == 0, "region_check failed (the line above says why)");
    return s;
}

int main(void)
{
    hmm_tunables.trim_threshold = (size_t)1 << 40;   /* nothing trimmed or purged unasked */
    hmm_tunables.decay_ms = 3600000;
    struct chunk *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = region_take(GRANULE, NULL);
        CHECK(c[i] != NULL && chunk_valid(c[i]) && c[i]->size == GRANULE, "take %d failed", i);
        CHECK(map_lookup(c[i]) == c[i], "chunk %d is not in the chunk map", i);
    }
    CHECK((char *)c[0] + GRANULE == (char *)c[1] && (char *)c[1] + GRANULE == (char *)c[2],
          "three chunks taken in a row are not adjacent: %p %p %p", (void *)c[0], (void *)c[1], (void *)c[2]);
    struct region_stats grown = stats();        /* free: the growth's top pad */

    region_give(c[2]);
    region_give(c[0]);
    CHECK(stats().free_bytes == grown.free_bytes + 2 * GRANULE, "two chunks given back, %zu bytes free", stats().free_bytes);
    CHECK(map_lookup(c[0]) == NULL, "a given-back chunk is still in the chunk map");
    region_give(c[1]);
    CHECK(stats().free_bytes == grown.free_bytes + 3 * GRANULE, "three chunks given back, %zu bytes free", stats().free_bytes);

    struct chunk *whole = region_take(3 * GRANULE, NULL);
    CHECK(whole == c[0], "the merged chunks are not reused in place: %p, not %p", (void *)whole, (void *)c[0]);
    CHECK(stats().region_bytes == grown.region_bytes, "taking the merged chunk grew the region");

    region_give(whole);
    CHECK(region_trim(0) >= 3 * GRANULE, "region_trim gave back less than the free top");
    struct region_stats trimmed = stats();
    CHECK(trimmed.brk <= (uintptr_t)c[0], "the break stays at %p, above %p", (void *)trimmed.brk, (void *)c[0]);
    CHECK(trimmed.region_bytes + 3 * GRANULE <= grown.region_bytes, "the region did not shrink");
    return 0;
}
