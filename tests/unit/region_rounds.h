/* The region's unit tests that watch the break: where it is, and a round
 * of chunks taken and given back. */
#ifndef HMM_TEST_REGION_ROUNDS_H
#define HMM_TEST_REGION_ROUNDS_H

#include "internal.h"
#include "testutil.h"

#define ROUND_CHUNKS_MAX 16

static uintptr_t brk_now(void)
{
    struct region_stats s;
    region_stats(&s);
    CHECK(region_check() == 0, "region_check failed (the line above says why)");
    return s.brk;
}

/* The region's decay for the test, and a chunk that stays below the
 * rounds. */
static void rounds_begin(unsigned decay_ms)
{
    hmm_tunables.decay_ms = decay_ms;
    CHECK(region_take(GRANULE, NULL) != NULL, "region_take failed");
}

/* Take count chunks of size and give them back; the break moves it made. */
static unsigned round_moves(int count, size_t size)
{
    uintptr_t at = brk_now(), was;
    unsigned moves = 0;
    struct chunk *chunk[ROUND_CHUNKS_MAX];
    CHECK(count <= ROUND_CHUNKS_MAX, "a round of %d chunks", count);
    for (int i = 0; i < count; i++) {
        CHECK((chunk[i] = region_take(size, NULL)) != NULL, "region_take(%zu KiB) failed", size >> 10);
        was = at, at = brk_now(), moves += at != was;
    }
    for (int i = 0; i < count; i++) {
        region_give(chunk[i]);
        was = at, at = brk_now(), moves += at != was;
    }
    return moves;
}

/* rounds rounds of count chunks of size; the break moves of the first two
 * in *early, of the others returned: a program that bounced may move it in
 * the first two only. */
static unsigned late_moves(int rounds, int count, size_t size, unsigned *early)
{
    *early = round_moves(count, size) + round_moves(count, size);
    unsigned late = 0;
    for (int i = 2; i < rounds; i++)
        late += round_moves(count, size);
    return late;
}

#endif
