/* A chunk given back with room its block never wrote (realloc's reserve
 * for a growing buffer: address space, no RSS) may stay whole on the free
 * top past the trim point, for the next growing buffer to take.  Its give
 * counts by the bytes used, which kept the dirty limit at trim_threshold,
 * so the break moved up for each take and down for each give, a system
 * call under the region lock each time: hmm-bench realloc -t 2 made
 * 22,000 brk calls in one run of three, and took 2.6 x as long.  Here a
 * chunk stays below, and a 4 MiB chunk is taken and given back 20 times, a
 * quarter of it used: the break may move for the first take only.  Then,
 * after decay_ms, a give of a chunk it filled trims the top to the pad. */
#include "internal.h"
#include "testutil.h"

#include <time.h>

#define DECAY_MS 200
#define CYCLES 20
#define BUFFER (4 * GRANULE)

static uintptr_t brk_now(void)
{
    struct region_stats s;
    region_stats(&s);
    CHECK(region_check() == 0, "region_check failed (the line above says why)");
    return s.brk;
}

int main(void)
{
    hmm_tunables.decay_ms = DECAY_MS;
    CHECK(region_take(GRANULE, NULL) != NULL, "region_take failed");
    uintptr_t start = brk_now();
    unsigned moves = 0;
    for (int i = 0; i < CYCLES; i++) {
        uintptr_t before = brk_now();
        struct chunk *buffer = region_take(BUFFER, NULL);
        CHECK(buffer != NULL, "region_take(4 MiB) failed");
        uintptr_t taken = brk_now();
        region_give_used(buffer, BUFFER / 4);
        uintptr_t given = brk_now();
        moves += (taken != before) + (given != taken);
    }
    CHECK(moves <= 1, "%d takes and gives of a 4 MiB top chunk moved the break %u times", CYCLES, moves);

    struct timespec pause = { 0, (DECAY_MS + 100) * 1000000L };
    nanosleep(&pause, NULL);
    region_give(region_take(GRANULE / 2, NULL));
    uintptr_t trimmed = brk_now();
    CHECK(trimmed < start + BUFFER, "after decay_ms the top keeps %zu KiB past the first chunk",
          (size_t)(trimmed - start) >> 10);
    /* stdio last: glibc's malloc moves the break above the region, which
     * hmm then never lowers */
    printf("%d takes and gives of a 4 MiB top chunk moved the break %u times; after decay_ms the top "
           "went back\n", CYCLES, moves);
    return 0;
}
