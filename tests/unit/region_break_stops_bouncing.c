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
#include "internal.h"
#include "testutil.h"

#include <time.h>

#define DECAY_MS 400
#define ROUNDS 20
#define BUFFER (2 * GRANULE)

static uintptr_t brk_now(void)
{
    struct region_stats s;
    region_stats(&s);
    CHECK(region_check() == 0, "region_check failed (the line above says why)");
    return s.brk;
}

/* Take both buffers and give them back; the break moves it made. */
static unsigned round_moves(void)
{
    uintptr_t at = brk_now(), was;
    unsigned moves = 0;
    struct chunk *buffer[2];
    for (int i = 0; i < 2; i++) {
        CHECK((buffer[i] = region_take(BUFFER, NULL)) != NULL, "region_take(2 MiB) failed");
        was = at, at = brk_now(), moves += at != was;
    }
    for (int i = 0; i < 2; i++) {
        region_give(buffer[i]);
        was = at, at = brk_now(), moves += at != was;
    }
    return moves;
}

int main(void)
{
    hmm_tunables.decay_ms = DECAY_MS;
    CHECK(region_take(GRANULE, NULL) != NULL, "region_take failed");
    uintptr_t start = brk_now();
    unsigned early = round_moves() + round_moves(), late = 0;
    for (int i = 2; i < ROUNDS; i++)
        late += round_moves();
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
