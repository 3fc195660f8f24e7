/* The slow side of the thread cache: filling an empty bin from the arena in
 * one batch, making room in a full bin by returning half of it in one
 * batch, and flushing everything at thread exit.  The fast side (a pop and
 * a push) is inline in internal.h. */
#include "internal.h"

#include <errno.h>

__thread struct thread_cache hmm_thread_cache __attribute__((tls_model("initial-exec")));

/* A cache may hold cache_size bytes, and all of them together
 * CACHE_TOTAL_SHARES times that: with many threads each gets less.  The
 * budget is looked at again on every slow path. */
static void cache_budget(struct thread_cache *cache)
{
    size_t threads = arena_threads();
    size_t total = hmm_tunables.cache_size * CACHE_TOTAL_SHARES;
    size_t share = threads > CACHE_TOTAL_SHARES ? total / threads : hmm_tunables.cache_size;
    cache->budget = share;
}

/* Each class may hold a sixteenth of the budget, and at most
 * CACHE_CLASS_MAX blocks: with the default 1 MiB, one 64 KiB block or 128
 * small ones, about 2.9 MiB if every class were full at once. */
uint32_t cache_limit(const struct thread_cache *cache, unsigned cls)
{
    if (cls == 0)
        return 0;
    size_t blocks = cache->budget / 16 / class_size(cls);
    return blocks > CACHE_CLASS_MAX ? CACHE_CLASS_MAX : (uint32_t)blocks;
}

/* What the free fast path finds in the header of an in-use block of class
 * cls with extra units more than cut exactly; 0 where no block may enter
 * the bin that way. */
static uint64_t class_key(unsigned cls, bool bound, uint32_t extra)
{
    if (!bound || cls == 0 || cls >= CLASS_COUNT)
        return 0;
    return block_key(BLOCK_INUSE, (uint16_t)(cls * sizeof(struct cache_bin)), class_units(cls) + extra);
}

void cache_bind(struct thread_cache *cache, struct arena *a)
{
    cache->arena = a;
    cache_budget(cache);
    for (unsigned cls = 0; cls < CACHE_BINS; cls++) {
        cache->bins[cls].head = NULL;
        cache->bins[cls].room = a && cls < CLASS_COUNT ? cache_limit(cache, cls) : 0;
        cache->bins[cls].key = class_key(cls, a != NULL, 0);
        cache->bins[cls].key_long = class_key(cls, a != NULL, 1);
    }
    cache->state = a ? CACHE_BOUND : CACHE_EXITED;
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
        cache->batch[cls] = 1;
}

/* A malloc that missed the fast path (or did not try it): refill the
 * class's bin when it is empty, from blocks other threads gave back or new
 * ones, and hand out one block; or go to the arena for an uncached size.
 * Refills start at one block and double up to a quarter of the limit, so
 * a class used once costs one block, not a batch. */
void *cache_fill(struct thread_cache *cache, size_t size)
{
    unsigned cls = size_class(size);
    cache_budget(cache);
    uint32_t limit = cache_limit(cache, cls);
    if (limit == 0)
        return arena_malloc(cache->arena, size);
    struct cache_bin *bin = &cache->bins[cls];
    if (bin->head == NULL) {
        cache->closed = false;
        uint32_t want = cache->batch[cls] < limit / 4u + 1u ? cache->batch[cls] : limit / 4u + 1u;
        size_t got = arena_fill(cache->arena, cls, &bin->head, want);
        bin->room = (intptr_t)(limit - got);
        if (want < 128u && want <= limit / 8u)
            cache->batch[cls] = (uint8_t)(want * 2u);
        if (bin->head == NULL) {
            errno = ENOMEM;
            return NULL;
        }
    }
    struct cache_entry *entry = bin->head;
    HMM_ASSERT(block_cached(block_of(entry)));
    bin->head = entry->next;
    bin->room++;
    block_set_state(block_of(entry), BLOCK_INUSE);
    return entry;
}

/* Detach every block of the bin past the first keep onto tail (as they
 * are, when there is no tail). */
static struct cache_entry *bin_cut(struct cache_bin *bin, uint32_t keep, struct cache_entry *tail)
{
    struct cache_entry **link = &bin->head;
    for (uint32_t kept = 0; *link != NULL && kept < keep; kept++)
        link = &(*link)->next;
    struct cache_entry *cut = *link;
    *link = NULL;
    if (tail == NULL)
        return cut;
    while (cut != NULL) {
        struct cache_entry *next = cut->next;
        cut->next = tail;
        tail = cut;
        cut = next;
    }
    return tail;
}

/* Give every cached block back and leave no room in any bin, so that each
 * free goes to the slow path until a malloc refills its class. */
static void cache_close(struct thread_cache *cache)
{
    if (cache->closed)
        return;
    cache->closed = true;
    cache_flush(cache);
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++)
        cache->bins[cls].room = 0;
}

/* A free that found its bin full: send half of it back to the arena(s).
 * False when the block's class is not cached at all, or when the block's
 * arena is being emptied (the end of a burst): cached blocks would pin its
 * chunks, so the cache closes and the block goes straight back. */
bool cache_make_room(struct thread_cache *cache, struct block *b)
{
    unsigned cls = block_class(b);
    cache_budget(cache);
    uint32_t limit = cache_limit(cache, cls);
    if (limit == 0 || cache->state != CACHE_BOUND)
        return false;
    if (arena_sparse(block_chunk(b)->arena)) {
        cache_close(cache);
        return false;
    }
    struct cache_bin *bin = &cache->bins[cls];
    struct cache_entry *list = bin_cut(bin, limit / 2u, NULL);
    arena_free_cached(cache->arena, list);
    bin->room = (intptr_t)(limit - limit / 2u);
    return true;
}

void cache_flush(struct thread_cache *cache)
{
    struct cache_entry *list = NULL;
    for (unsigned cls = 1; cls < CLASS_COUNT; cls++) {
        list = bin_cut(&cache->bins[cls], 0, list);
        cache->bins[cls].room = cache_limit(cache, cls);
    }
    if (list)
        arena_free_cached(cache->arena, list);
    if (cache->arena)
        arena_merge_central(cache->arena);
}
