/* A free block's purge record (arena.c) names two runs of pages madvised
 * away, one from the start of its whole pages and one to their end.  A
 * purged free block L with a block M above it: when M is freed and merges
 * down into L, the merged block's runs must name no resident page (M's
 * pages, just written, are resident and at the merged block's end), and
 * after a malloc takes L's bytes back from its front, arena_purge
 * (malloc_trim's pass) leaves none of the rest's pages resident.
 * mincore(2) says which pages are.  (Nothing here may call malloc: it
 * shares the break.) */
#include "arena.c"
#include "large_block_pair.h"
#include "testutil.h"

#include <sys/mman.h>

static struct arena a;

/* Pages of [from, to) (page-aligned inward) that are resident. */
static size_t resident_pages(const void *from, const void *to)
{
    uintptr_t page = region_page_size();
    uintptr_t lo = ((uintptr_t)from + page - 1) & ~(page - 1), hi = (uintptr_t)to & ~(page - 1);
    unsigned char in_core[BLOCK_UNITS * UNIT / 4096 * 2 + 2];
    size_t count = 0;
    if (hi <= lo)
        return 0;
    CHECK((hi - lo) / page <= sizeof(in_core) && mincore((void *)lo, hi - lo, in_core) == 0, "mincore");
    for (size_t p = 0; p < (hi - lo) / page; p++)
        count += in_core[p] & 1;
    return count;
}

/* The resident pages b's runs claim are purged. */
static size_t resident_counted_purged(struct block *b)
{
    struct purge_record *r = purge_record(b);
    char *start = purgeable_start(b), *end = start + purgeable_len(b);
    return resident_pages(start, start + r->purged_head) + resident_pages(end - r->purged_tail, end);
}

int main(void)
{
    struct block *below, *freed;
    large_block_pair(&a, &below, &freed);

    free_locked(&a, below);
    CHECK(purge_locked(&a, 0, 0) > 0, "the free block below was not purged");
    CHECK(block_purged(below) == purgeable_len(below), "the purged block counts %zu of %zu bytes purged",
          block_purged(below), purgeable_len(below));

    free_locked(&a, freed);
    CHECK(block_state(below) == BLOCK_FREE && block_next(below) == block_next(freed), "no merge");
    CHECK(resident_counted_purged(below) == 0,
          "the merged block counts %zu bytes purged, %zu of its resident pages among them",
          block_purged(below), resident_counted_purged(below));

    struct block *again = alloc_locked(&a, BLOCK_UNITS);
    CHECK(again == below, "the merged block's front was not reused");
    memset(block_payload(again), 0x5a, block_usable(again));
    struct block *rest = block_next(again);
    spin_unlock(&a.lock);
    arena_purge(&a);
    size_t left = resident_pages(purgeable_start(rest), block_next(rest));
    CHECK(left == 0, "after arena_purge %zu pages of the free block above the malloc stay resident", left);
    CHECK(arena_check(&a) == 0, "arena_check failed (the line above says why)");
    return 0;
}
