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
#include "internal.h"
#include "testutil.h"

#define DECAY_MS 2000
#define ROUNDS 10
#define CHUNKS 12
#define BUFFER (8 * GRANULE)

static uintptr_t brk_now(void)
{
    struct region_stats s;
    region_stats(&s);
    CHECK(region_check() == 0, "region_check failed (the line above says why)");
    return s.brk;
}

/* Take the chunks and give them back; the break moves it made. */
static unsigned round_moves(void)
{
    uintptr_t at = brk_now(), was;
    unsigned moves = 0;
    struct chunk *buffer[CHUNKS];
    for (int i = 0; i < CHUNKS; i++) {
        CHECK((buffer[i] = region_take(BUFFER, NULL)) != NULL, "region_take(8 MiB) failed");
        was = at, at = brk_now(), moves += at != was;
    }
    for (int i = 0; i < CHUNKS; i++) {
        region_give(buffer[i]);
        was = at, at = brk_now(), moves += at != was;
    }
    return moves;
}

int main(void)
{
    hmm_tunables.decay_ms = DECAY_MS;
    CHECK(region_take(GRANULE, NULL) != NULL, "region_take failed");
    unsigned early = round_moves() + round_moves(), late = 0;
    for (int i = 2; i < ROUNDS; i++)
        late += round_moves();
    CHECK(late == 0, "rounds 3 to %d of %d chunks of 8 MiB taken and given back moved the break %u times", ROUNDS,
          CHUNKS, late);
    printf("the break moved %u times in the first 2 rounds, %u in the next %d\n", early, late, ROUNDS - 2);
    return 0;
}
