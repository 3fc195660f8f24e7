/* A program whose top chunks come and go (two threads each taking a
 * buffer past the pad and giving it back) made the break go down at each
 * give and up again at the next take, under the region lock: hmm-bench
 * realloc -t 2 made 16,000 brk calls in most runs and took 1.8 x the time
 * of the others.  A growth soon after a trim is a bounce, and the free top
 * may then keep the largest such chunk on top of the trim point.  Here two
 * 2 MiB chunks are taken and given back 20 times above a chunk that stays
 * (with the default 1 MiB pad and 2 MiB threshold: together they pass
 * the limit, and each is larger than the pad): the break may move in the
 * first two rounds only.  After decay_ms a give trims the top again. */
#include "region_rounds.h"

#include <time.h>

#define DECAY_MS 400
#define ROUNDS 20
#define BUFFER (2 * GRANULE)

int main(void)
{
    rounds_begin(DECAY_MS);
    uintptr_t start = brk_now();
    unsigned early, late = late_moves(ROUNDS, 2, BUFFER, &early);
    CHECK(late == 0, "rounds 3 to %d of two 2 MiB chunks taken and given back moved the break %u times",
          ROUNDS, late);

    struct timespec pause = { 0, (DECAY_MS + 100) * 1000000L };
    nanosleep(&pause, NULL);
    region_give(region_take(GRANULE, NULL));
    uintptr_t trimmed = brk_now();
    CHECK(trimmed <= start + GRANULE, "after decay_ms the top keeps %zu KiB past the first chunk",
          (size_t)(trimmed - start) >> 10);
    /* stdio last: glibc's malloc moves the break above the region, which
     * hmm then never lowers */
    printf("the break moved %u times in the first 2 rounds, %u in the next %d; after decay_ms the top "
           "went back\n", early, late, ROUNDS - 2);
    return 0;
}
