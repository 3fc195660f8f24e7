/* A purge asks the kernel to drop only the pages of a dirty free block
 * that its count does not name purged already.  A 64 KiB block H is freed
 * and purged whole; the block L below it is freed and merges up into it:
 * the merged block keeps H's count (its purged end) and L's pages make it
 * dirty.  The next purge must madvise L's pages only, not H's again (a
 * scrambled burst of 512 MiB madvised 12.3 GiB that way).  (Nothing here
 * may call malloc: it shares the break.) */
#include "arena.c"
#include "large_block_pair.h"
#include "testutil.h"

static struct arena a;

int main(void)
{
    struct block *low, *high;
    large_block_pair(&a, &low, &high);

    free_locked(&a, high);
    CHECK(purge_locked(&a, 0, 0) > 0 && block_purged(high) == purgeable_len(high),
          "the free block above was not purged whole");

    free_locked(&a, low);
    CHECK(block_state(low) == BLOCK_FREE && block_next(low) == block_next(high), "no merge");
    size_t counted = block_purged(low), len = purgeable_len(low);
    CHECK(counted > 0 && counted < len && block_dirty(low),
          "the merged block counts %zu of its %zu purgeable bytes purged", counted, len);
    size_t before = hmm_test_os_purged_bytes();
    CHECK(purge_locked(&a, 0, 0) == len - counted, "the purge did not purge the merged block's front");
    size_t asked = hmm_test_os_purged_bytes() - before;
    CHECK(asked == len - counted,
          "the purge madvised %zu bytes, not the %zu its count does not name (%zu purged already)", asked,
          len - counted, counted);
    spin_unlock(&a.lock);
    CHECK(arena_check(&a) == 0, "arena_check failed (the line above says why)");
    return 0;
}
