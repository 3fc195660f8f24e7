/* A purge asks the kernel to drop only the pages of a dirty free block
 * that its runs do not name purged already.  A 64 KiB block H is freed
 * and purged whole; the block L below it is freed and merges up into it:
 * the merged block keeps H's run (its purged end) and L's pages make it
 * dirty.  The next purge must madvise L's pages only, not H's again (a
 * scrambled burst of 512 MiB madvised 12.3 GiB that way).  And the mirror:
 * L purged whole, H freed and merging down into it: the merged block keeps
 * L's run (its purged start), and the next purge madvises H's pages only
 * (before, a merge from above forgot the block below was purged, and a
 * scrambled burst of 128 MiB counted 820 MiB returned).  (Nothing here may
 * call malloc: it shares the break.) */
#include "arena.c"
#include "large_block_pair.h"
#include "testutil.h"

static struct arena a, mirror;

/* The merged block's pages that were not purged before, and only they, go
 * to the kernel at the next purge. */
static void purge_only_the_freed_pages(struct arena *arena, struct block *merged, const char *which)
{
    size_t counted = block_purged(merged), len = purgeable_len(merged);
    CHECK(counted > 0 && counted < len && block_dirty(merged, counted),
          "%s: the merged block counts %zu of its %zu purgeable bytes purged", which, counted, len);
    size_t before = hmm_test_os_purged_bytes();
    CHECK(purge_locked(arena, 0, 0) == len - counted, "%s: the purge did not purge the freed block's pages", which);
    size_t asked = hmm_test_os_purged_bytes() - before;
    CHECK(asked == len - counted,
          "%s: the purge madvised %zu bytes, not the %zu its runs do not name (%zu purged already)", which, asked,
          len - counted, counted);
    spin_unlock(&arena->lock);
    CHECK(arena_check(arena) == 0, "%s: arena_check failed (the line above says why)", which);
}

int main(void)
{
    struct block *low, *high;
    large_block_pair(&a, &low, &high);
    free_locked(&a, high);
    CHECK(purge_locked(&a, 0, 0) > 0 && block_purged(high) == purgeable_len(high),
          "the free block above was not purged whole");
    free_locked(&a, low);
    CHECK(block_state(low) == BLOCK_FREE && block_next(low) == block_next(high), "no merge");
    purge_only_the_freed_pages(&a, low, "the block below freed");

    large_block_pair(&mirror, &low, &high);
    free_locked(&mirror, low);
    CHECK(purge_locked(&mirror, 0, 0) > 0 && block_purged(low) == purgeable_len(low),
          "the free block below was not purged whole");
    free_locked(&mirror, high);
    CHECK(block_state(low) == BLOCK_FREE && block_state(high) != BLOCK_FREE, "no merge");
    purge_only_the_freed_pages(&mirror, low, "the block above freed");
    return 0;
}
