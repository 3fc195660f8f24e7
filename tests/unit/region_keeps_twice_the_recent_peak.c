/* The region's dirty limit follows what programs give back: a chunk given
 * back stays resident while it is no more than twice the largest given
 * back in the last decay_ms (a program cycling large buffers reuses them
 * instead of faulting them in again), and once that peak has expired the
 * limit falls back to trim_threshold and the next give trims the top.
 * Here: a 16 MiB chunk under a small one is given back and stays, neither
 * trimmed nor purged, though it is eight times the 2 MiB threshold; after
 * decay_ms, giving back the small one (which makes the whole top free)
 * lowers the break to top_pad.  A program that cycles buffers of 8 MiB
 * and more may keep twice the limit at the top (region.c, trim_point). */
#include "internal.h"
#include "testutil.h"

#include <time.h>

#define DECAY_MS 200
#define LARGE (16 * GRANULE)

static struct region_stats stats(void)
{
    struct region_stats s;
    region_stats(&s);
    CHECK(region_check() == 0, "region_check failed (the line above says why)");
    return s;
}

/* A program cycling 16 MiB buffers: three given back in a row make a
 * 48 MiB free top, more than the limit (32 MiB) but not twice it; the
 * break stays, so that the next three are not faulted in again. */
static void cycling_buffers_stay(void)
{
    hmm_tunables.decay_ms = 3600000;
    struct chunk *buffer[3];
    for (int i = 0; i < 3; i++)
        CHECK((buffer[i] = region_take(LARGE, NULL)) != NULL, "region_take(16 MiB) failed");
    struct region_stats held = stats();
    for (int i = 2; i >= 0; i--)
        region_give(buffer[i]);
    struct region_stats given = stats();
    CHECK(given.brk == held.brk, "three 16 MiB buffers given back: the break fell by %zu MiB",
          (size_t)(held.brk - given.brk) >> 20);
    CHECK(region_take(LARGE, NULL) == buffer[0], "the next buffer is not the first one again");
}

int main(void)
{
    hmm_tunables.trim_threshold = 2 * GRANULE;
    hmm_tunables.top_pad = 0;
    hmm_tunables.decay_ms = DECAY_MS;
    struct chunk *large = region_take(LARGE, NULL);
    struct chunk *small = region_take(GRANULE, NULL);
    CHECK(large != NULL && small != NULL, "region_take failed");
    CHECK((char *)small == (char *)large + LARGE, "the small chunk is not right above the large one");
    struct region_stats before = stats();

    region_give(large);
    struct region_stats kept = stats();
    CHECK(kept.free_bytes >= before.free_bytes + LARGE && kept.brk == before.brk,
          "a 16 MiB chunk given back is not kept: %zu bytes free (%zu before), break %p (%p before)",
          kept.free_bytes, before.free_bytes, (void *)kept.brk, (void *)before.brk);
    CHECK(kept.purged_bytes == before.purged_bytes, "the chunk given back was purged at once (%zu bytes)",
          kept.purged_bytes - before.purged_bytes);

    struct timespec pause = { 0, (DECAY_MS + 100) * 1000000L };
    nanosleep(&pause, NULL);
    region_give(small);
    struct region_stats trimmed = stats();
    CHECK(trimmed.brk <= (uintptr_t)large && trimmed.free_bytes <= before.free_bytes,
          "after decay_ms the free top stays: break %p (the chunks began at %p), %zu bytes free",
          (void *)trimmed.brk, (void *)large, trimmed.free_bytes);
    cycling_buffers_stay();
    return 0;
}
