/* A program that takes several large chunks, gives them all back and takes
 * them again (threads cycling big buffers, hmm-bench large) had its break
 * lowered at every round, and every page of the chunks faulted in again:
 * a growth soon after a trim counted as a bounce, but the top kept only
 * the largest chunk grown, not what the break grew for in all since the
 * trim.  Here twelve chunks of 8 MiB (a program cycling large buffers, as
 * region.c's LARGE_CYCLE calls them) above one that stays are taken and
 * given back round after round: the break may move in the first two
 * rounds only (before, rounds 3 to 10 moved it 88 times).  A program of smaller chunks keeps only the largest
 * (region_break_stops_bouncing, and freed_reserve_does_not_raise_the_
 * dirty_limit, whose buffers after a trim go back). */
#include "region_rounds.h"

#define DECAY_MS 2000
#define ROUNDS 10
#define CHUNKS 12
#define BUFFER (8 * GRANULE)

int main(void)
{
    rounds_begin(DECAY_MS);
    unsigned early, late = late_moves(ROUNDS, CHUNKS, BUFFER, &early);
    CHECK(late == 0, "rounds 3 to %d of %d chunks of 8 MiB taken and given back moved the break %u times", ROUNDS,
          CHUNKS, late);
    printf("the break moved %u times in the first 2 rounds, %u in the next %d\n", early, late, ROUNDS - 2);
    return 0;
}
