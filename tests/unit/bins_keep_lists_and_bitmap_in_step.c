/* An arena's bins (arena.c's static functions, so this file includes it):
 * bin_index is exact up to BIN_EXACT units and has four bins per doubling
 * above; a freed block goes to the head of its bin and sets the bin's
 * bitmap bit; removing the last block of a bin clears it; bin_search finds
 * the next bin that holds a block; small and large blocks keep separate
 * sets.  The arena checks out after. */
#include "arena.c"
#include "testutil.h"

static struct arena a;

static bool bit(const struct bin_set *set, unsigned i)
{
    return (set->bitmap[i / 64] >> (i % 64)) & 1;
}

int main(void)
{
    for (uint32_t units = MIN_BLOCK_UNITS; units <= BIN_EXACT; units++)
        CHECK(bin_index(units) == units, "%u units in bin %u", units, bin_index(units));
    for (uint32_t units = BIN_EXACT + 1; units <= MAX_UNITS / 2; units += units / 7 + 1) {
        CHECK(bin_index(units) >= bin_index(units - 1), "bin_index falls at %u units", units);
        CHECK(bin_index(2 * units) == bin_index(units) + 4, "%u and %u units are not 4 bins apart", units,
              2 * units);
    }
    CHECK(bin_index(MAX_UNITS) < BIN_COUNT, "MAX_UNITS has no bin");

    arena_init(&a, 1);
    spin_lock(&a.lock);
    struct block *small[2], *large;
    small[0] = alloc_locked(&a, 40);
    alloc_locked(&a, 2);                   /* in use between: no coalescing */
    small[1] = alloc_locked(&a, 40);
    alloc_locked(&a, 2);
    large = alloc_locked(&a, 300);
    alloc_locked(&a, 80);
    struct bin_set *smalls = &a.sets[CHUNK_SMALL_BLOCKS], *larges = &a.sets[CHUNK_LARGE_BLOCKS];
    CHECK(!bit(smalls, 40) && smalls->bins[40] == NULL, "bin 40 holds a block before any free");

    free_locked(&a, small[0]);
    free_locked(&a, small[1]);
    free_locked(&a, large);
    CHECK(bit(smalls, 40) && smalls->bins[40] == small[1], "the last freed block is not bin 40's head");
    CHECK(block_links(small[1])->next == small[0], "the first freed block is not next in bin 40");
    CHECK(bit(larges, bin_index(300)) && larges->bins[bin_index(300)] == large, "the large block is not binned");
    CHECK(bin_search(larges, bin_index(82)) == bin_index(300), "bin_search skips the large block's bin");
    CHECK(bin_search(smalls, 41) > bin_index(300), "bin_search finds a small bin between 41 and 300");

    bin_remove(&a, small[1]);
    CHECK(bit(smalls, 40) && smalls->bins[40] == small[0], "bin 40 lost its other block");
    bin_remove(&a, small[0]);
    CHECK(!bit(smalls, 40) && smalls->bins[40] == NULL, "an empty bin keeps its bit");
    CHECK(bin_take(&a, 300) == large && !bit(larges, bin_index(300)), "bin_take missed the large block");

    bin_insert(&a, small[0]);
    bin_insert(&a, small[1]);
    bin_insert(&a, large);
    spin_unlock(&a.lock);
    CHECK(arena_check(&a) == 0, "arena_check failed (the line above says why)");
    return 0;
}
