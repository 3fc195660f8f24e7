/* A consumer's flush gives its blocks back cut where they stop being
 * neighbours, each chain the first freed first, and the owner's refill
 * takes the chain that goes on from the last one's end before the
 * oldest.  The owner's 96 fresh blocks, in address order, are freed as
 * four pieces of 24 in the order 1, 0, 3, 2, each piece upwards, and a
 * consumer arena flushes them in one batch (its bin's order: the last
 * freed first).  The refills must take piece 1 (the oldest chain), then
 * 2 (which goes on from 1's end), 3, and only then 0: each whole, its
 * blocks upwards; and the arenas check out after each step. */
#include "internal.h"
#include "testutil.h"

#define PIECE 24
#define PIECES 4
#define BLOCKS (PIECE * PIECES)

static struct arena owner, consumer;
static void *block[BLOCKS];   /* the owner's blocks, in address order */

/* The consumer's bin after freeing the pieces in order: the last freed first. */
static struct cache_entry *freed_as_a_bin(const int *order)
{
    struct cache_entry *bin = NULL;
    for (int k = 0; k < PIECES; k++)
        for (int i = 0; i < PIECE; i++) {
            struct cache_entry *e = block[order[k] * PIECE + i];
            e->next = bin;
            bin = e;
        }
    return bin;
}

/* The next refill holds piece, whole, upwards. */
static void refill_takes(unsigned cls, int piece)
{
    struct cache_entry *got;
    size_t taken = arena_fill(&owner, cls, &got, 1, 0);
    CHECK(taken == PIECE, "a refill took %zu blocks, not piece %d's %d", taken, piece, PIECE);
    for (int i = 0; i < PIECE; i++, got = got->next)
        CHECK(got == block[piece * PIECE + i], "the refill's block %d is not piece %d's, upwards", i, piece);
    CHECK(got == NULL, "the refill holds more than piece %d", piece);
    CHECK(arena_check(&owner) == 0, "arena_check failed after the refill of piece %d", piece);
}

int main(void)
{
    arena_init(&owner, 1);
    arena_init(&consumer, 2);
    owner.threads = consumer.threads = 1;   /* bound: no orphan's chains are merged at once */
    unsigned cls = size_class_lookup(64);
    struct cache_entry *fresh;
    CHECK(arena_fill(&owner, cls, &fresh, BLOCKS, BLOCKS) == BLOCKS, "no %d fresh blocks", BLOCKS);
    for (int i = 0; i < BLOCKS; i++, fresh = fresh->next)
        block[i] = fresh;
    sort_by_address(block, BLOCKS);
    for (int i = 1; i < BLOCKS; i++)
        CHECK((char *)block[i] - (char *)block[i - 1] == (ptrdiff_t)class_units(cls) << UNIT_SHIFT,
              "the fresh blocks are not neighbours: the test's premise");

    static const int freed[PIECES] = { 1, 0, 3, 2 };
    struct cache_entry *bin = freed_as_a_bin(freed);
    CHECK(arena_free_cached(&consumer, &bin, BLOCKS) == BLOCKS && bin == NULL, "the flush kept blocks");
    CHECK(arena_check(&owner) == 0 && arena_check(&consumer) == 0, "arena_check failed after the flush");

    static const int taken[PIECES] = { 1, 2, 3, 0 };
    for (int k = 0; k < PIECES; k++)
        refill_takes(cls, taken[k]);
    return 0;
}
