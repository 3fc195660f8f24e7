/* The slow side of the thread cache: filling an empty bin from the arena in
 * one batch, making room in a full bin by returning half of it in one
 * batch, and flushing everything at thread exit.  The fast side (a pop and
 * a push) is inline in internal.h. */
#include "internal.h"

#include <errno.h>

__thread struct thread_cache hmm_thread_cache __attribute__((tls_model("initial-exec")));

struct sampling hmm_sampling;

void cache_sampling_start(uint64_t (*interval)(void), void (*forget)(void *ptr))
{
    hmm_sampling.interval = interval;
    hmm_sampling.forget = forget;
    hmm_sampling.on = true;
    arena_handoffs_stop();
}

/* The mallocs of class cls that pass before the next sampled one. */
static uint32_t sample_draw(unsigned cls)
{
    uint64_t pops = hmm_sampling.interval() / class_size(cls);
    return pops >= UINT32_MAX ? UINT32_MAX - 1 : (uint32_t)pops;
}

/* A block enters a bin's list: with sampling on, the malloc that will pop
 * it is counted now, if the countdown allows. */
static bool sample_charge(struct thread_cache *cache, unsigned cls)
{
    uint32_t *pops = &cache->sample_pops[cls];
    if (!hmm_sampling.on)
        return true;
    if (*pops == 0)
        return false;
    (*pops)--;
    return true;
}

static void sample_refund(struct thread_cache *cache, unsigned cls, uint32_t blocks)
{
    uint32_t *pops = &cache->sample_pops[cls];
    *pops = *pops > UINT32_MAX - blocks ? UINT32_MAX : *pops + blocks;
}

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
 * small ones, about 2.9 MiB if every class were full at once; doubled each
 * time the class grew (cache_grow), which adds at most a sixteenth of the
 * budget to all classes together. */
uint32_t cache_limit(const struct thread_cache *cache, unsigned cls)
{
    if (cls == 0)
        return 0;
    size_t blocks = cache->budget / 16 / class_size(cls);
    uint32_t base = blocks > CACHE_CLASS_MAX ? CACHE_CLASS_MAX : (uint32_t)blocks;
    return base << cache->grown[cls];
}

/* A class that overflowed and then ran empty cycles more blocks than its
 * bin holds: every round trip costs a flush and refills.  Its limit
 * doubles, up to CACHE_GROWTH_MAX times, while what the growth of all
 * classes added stays within a CACHE_GROWTH_SHARE-th of the budget
 * (glibc's malloc-simple batches of 1,600 16-byte blocks then stay in the
 * cache, 30 KiB more).  A quarter of the budget let the classes of
 * 513 B..1 KiB grow too (a FIFO loop over 16 B..1 KiB in batches of 100:
 * 55 instructions a pair, not 64), but sleeping threads kept it: idle's
 * peak RSS +0.9 MiB, realloc's +0.5 MiB (+16 %).  A class of large
 * blocks, whose limit is below CACHE_CLASS_MIN (a sixteenth of the budget
 * holds one or two of 64 KiB), grows to that many out of an allowance of
 * its own, CACHE_LARGE_GROWTH_BUDGETS budgets: under a random mix of sizes
 * a bin of L blocks walks at random and reaches empty or full (the slow
 * path) every (L/2)^2 mallocs and frees of its class or so, and churn
 * (8 B..64 KiB) took 6 % of its calls there with bins of 4 (8 blocks and
 * two budgets: 10 % faster, peak RSS +1-3 %; 16 blocks and four budgets
 * 20 % faster, but idle's peak RSS +13-17 %).  A flush of
 * the whole cache shrinks every class back. */
static void cache_grow(struct thread_cache *cache, unsigned cls)
{
    cache->overflowed[cls] = false;
    uint32_t limit = cache_limit(cache, cls);
    size_t more = (size_t)limit * class_size(cls);
    bool large = limit < CACHE_CLASS_MIN;
    size_t *grown_bytes = large ? &cache->grown_large_bytes : &cache->grown_bytes;
    size_t allowance = large ? cache->budget * CACHE_LARGE_GROWTH_BUDGETS : cache->budget / CACHE_GROWTH_SHARE;
    if (cache->grown[cls] < CACHE_GROWTH_MAX && *grown_bytes + more <= allowance) {
        cache->grown[cls]++;
        *grown_bytes += more;
    }
}

/* The room of a bin no malloc of this thread has refilled: its frees are
 * of blocks it does not allocate (a consumer's), given back a quarter of a
 * bin at a time from the first one.  A first fill of a whole bin doubled
 * prodcon's time: the producer's working set outgrew the CPU cache. */
static uint32_t bin_room(const struct thread_cache *cache, unsigned cls)
{
    uint32_t limit = cache_limit(cache, cls);
    return cache->refilled[cls] ? limit : limit / CONSUMER_SHARE + 1u;
}

/* What the free fast path finds in the header of an in-use block of class
 * cls with extra units more than cut exactly; 0 where no block may enter
 * the bin, and with KEY_SLOW where only the slow path's push may. */
static uint64_t class_key(unsigned cls, bool bound, uint32_t extra)
{
    if (!bound || cls == 0 || cls >= CLASS_COUNT)
        return 0;
    uint64_t key = block_key(BLOCK_INUSE, (uint8_t)cls, class_units(cls) + extra);
    return frees_scrubbed() || hmm_sampling.on ? key | KEY_SLOW : key;
}

void cache_bind(struct thread_cache *cache, struct arena *a)
{
    HMM_ASSERT(cache->closing == NULL);
    cache->arena = a;
    cache->closed = false;
    cache_budget(cache);
    for (unsigned cls = 0; cls < CACHE_KEYS; cls++) {
        cache->keys[cls] = class_key(cls, a != NULL, 0);
        cache->keys_long[cls] = class_key(cls, a != NULL, 1);
    }
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
        cache->heads[cls] = NULL;
        cache->rooms[cls] = a ? bin_room(cache, cls) : 0;
    }
    cache->state = a ? CACHE_BOUND : CACHE_EXITED;
    cache->grown_bytes = 0;
    cache->grown_large_bytes = 0;
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
        cache->batch[cls] = 1;
        cache->grown[cls] = 0;
        cache->overflowed[cls] = false;
    }
    if (a != NULL && hmm_sampling.on) {
        cache->sample_bytes = (int64_t)hmm_sampling.interval();
        for (unsigned cls = 1; cls < CLASS_COUNT; cls++)
            cache->sample_pops[cls] = sample_draw(cls);
    }
}

/* With sampling on, a refill of cls brings no more blocks than the
 * countdown has mallocs left (cache_fill charges them all); with
 * none left this malloc is the sampled one: it takes one block, charged to
 * a countdown started again.  True when this malloc is sampled. */
static bool sample_refill(struct thread_cache *cache, unsigned cls, uint32_t *want)
{
    uint32_t *pops = &cache->sample_pops[cls];
    if (*pops == 0) {
        *pops = sample_draw(cls) + 1u;
        *want = 1;
        return true;
    }
    if (*want > *pops)
        *want = *pops;
    return false;
}

/* A chosen block: out of the bins for good (class 0), and counted. */
static void *sample_take(struct thread_cache *cache, void *ptr, size_t counted)
{
    block_of(ptr)->cls = 0;
    cache->sampled = counted;
    return ptr;
}

/* The countdown of the sizes no bin holds, in bytes. */
void *sample_uncached(void *ptr, size_t size)
{
    struct thread_cache *cache = &hmm_thread_cache;
    if (HMM_LIKELY(!hmm_sampling.on) || ptr == NULL)
        return ptr;
    cache->sample_bytes -= (int64_t)size;
    if (cache->sample_bytes > 0)
        return ptr;
    cache->sample_bytes = (int64_t)hmm_sampling.interval();
    return sample_take(cache, ptr, size);
}

/* While the thread's own arena is being emptied (the end of a burst) its
 * cache stays closed (cache_close), and the blocks of that arena freed
 * meanwhile go back CLOSING_BATCH at a time: one lock and merges fetched
 * ahead (arena_free_cached) instead of a lock and a merge of cold
 * neighbours for each free (hmm-bench burst 7 % faster at -t 1).  At
 * most a batch less one waits, pinning at most that many chunks (their
 * free pages are purged as any are), until the next batch, malloc that
 * misses or flush. */
static void closing_flush(struct thread_cache *cache)
{
    if (cache->closing == NULL)
        return;
    arena_free_cached(cache->arena, &cache->closing, SIZE_MAX);
    HMM_ASSERT(cache->closing == NULL);
    cache->closing_count = 0;
}

static bool closing_add(struct thread_cache *cache, struct block *b, const struct arena *owner)
{
    if (!cache->closed || owner != cache->arena || block_class(b) == 0)
        return false;
    HMM_ASSERT(cache->state == CACHE_BOUND);   /* only a bound cache closes; binding reopens it */
    struct cache_entry *entry = block_payload(b);
    entry->next = cache->closing;
    cache->closing = entry;
    block_set_state(b, BLOCK_CACHED);
    if (++cache->closing_count >= CLOSING_BATCH)
        closing_flush(cache);
    return true;
}

/* The head of a bin, which a pop set from the link of the block it took
 * (the fast path pops only heads in the sbrk heap): none, or a cached
 * block of class cls, in the heap or a mapped chunk; else that link was
 * written after free (its block is the program's again). */
static void bin_head_check(struct cache_entry *entry, unsigned cls)
{
    if (HMM_LIKELY(entry == NULL || (cached_link_ok(entry) && block_class(block_of(entry)) == cls)))
        return;
    fatal("malloc(): corrupted thread cache: the bin of %zu-byte blocks leads to %p, not a free block "
          "(write after free?)",
          class_size(cls), (void *)entry);
}

/* A malloc that missed the fast path (or did not try it): refill the
 * class's bin when it is empty, from blocks other threads gave back or new
 * ones, and hand out one block; or go to the arena for an uncached size.
 * Refills start at one block and double up to a quarter of the limit, so
 * a class used once costs one block, not a batch.  A class that overflowed
 * since its last refill cycles: its refill takes back from the central
 * list as many blocks as one flush sent there (half the limit), so that a
 * round trip costs one refill, not two; new blocks it still takes by the
 * batch. */
void *cache_fill(struct thread_cache *cache, size_t size)
{
    unsigned cls = size_class_lookup(size);
    closing_flush(cache);
    cache_budget(cache);
    uint32_t limit = cache_limit(cache, cls);
    if (limit == 0)
        return sample_uncached(arena_malloc(cache->arena, size), size);
    bool sampled = false;
    if (cache->heads[cls] == NULL) {
        cache->closed = false;
        bool cycled = cache->overflowed[cls];
        if (cycled) {
            cache_grow(cache, cls);
            limit = cache_limit(cache, cls);
        }
        uint32_t fresh = cache->batch[cls] < limit / 4u + 1u ? cache->batch[cls] : limit / 4u + 1u;
        if (fresh < 128u && fresh <= limit / 8u)
            cache->batch[cls] = (uint8_t)(fresh * 2u);
        uint32_t want = cycled && fresh < limit - limit / 2u ? limit - limit / 2u : fresh;
        sampled = hmm_sampling.on && sample_refill(cache, cls, &want);
        cache->refilled[cls] = true;
        size_t got = arena_fill(cache->arena, cls, &cache->heads[cls], want, fresh < want ? fresh : want);
        cache->rooms[cls] = (intptr_t)(limit - got);
        if (hmm_sampling.on)
            cache->sample_pops[cls] -= (uint32_t)got;   /* want <= pops: every block parks */
        if (cache->heads[cls] == NULL) {
            errno = ENOMEM;
            return NULL;
        }
    }
    struct cache_entry *entry = cache->heads[cls];
    bin_head_check(entry, cls);
    HMM_ASSERT(block_cached(block_of(entry)));
    cache->heads[cls] = entry->next;
    cache->rooms[cls]++;
    block_set_state(block_of(entry), BLOCK_INUSE);
    return sampled ? sample_take(cache, entry, class_size(cls)) : entry;
}

/* Detach every block of class cls's bin, in the bin's order (the last
 * freed first, as an overflow gives them back: a chain handed back is
 * relinked the first freed first), ahead of tail; with sampling on, the
 * pops they were counted for are given back. */
static struct cache_entry *bin_cut(struct thread_cache *cache, unsigned cls, struct cache_entry *tail)
{
    struct cache_entry *cut = cache->heads[cls], *last = NULL;
    bin_head_check(cut, cls);
    if (cut == NULL)
        return tail;
    cache->heads[cls] = NULL;
    uint32_t blocks = 0;
    for (struct cache_entry *entry = cut; entry != NULL; blocks++) {
        last = entry;
        entry = cached_next(entry);
    }
    last->next = tail;
    if (hmm_sampling.on)
        sample_refund(cache, cls, blocks);
    return cut;
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
        cache->rooms[cls] = 0;
}

/* A free that found its bin full: send half of it back to the arena(s),
 * the blocks freed last, off the head in one walk (the rest of the list
 * is not walked).  A consumer's bin (the block is another arena's, and the
 * thread never refilled the class: it frees that size and does not
 * allocate it) goes back whole and gets a quarter of its room: a full bin
 * of others' blocks, which the thread never uses, would stay in flight.  A
 * thread that also allocates the class keeps half, as its next mallocs pop
 * them.  A bin that held more than its limit (the budget shrank since)
 * keeps the excess until it runs empty.
 * False when the block's class is not cached at all, or when the block's
 * arena is being emptied (the end of a burst): the block goes back, and
 * if that arena is the thread's own the cache closes, as its cached blocks
 * would pin the chunks (the blocks freed then go back in batches,
 * closing_add).  Another thread's arena emptying
 * (a churn replacing the blocks main allocated) leaves the cache alone:
 * closing it flushed the thread's own blocks and merged its central
 * lists, and its next mallocs split them off again. */
bool cache_make_room(struct thread_cache *cache, struct block *b)
{
    unsigned cls = block_class(b);
    cache_budget(cache);
    uint32_t limit = cache_limit(cache, cls);
    if (limit == 0 || cache->state != CACHE_BOUND)
        return false;
    struct arena *owner = cached_block_arena(b);
    if (arena_sparse(owner)) {
        if (owner == cache->arena)
            cache_close(cache);
        return false;
    }
    bool consumer = !cache->refilled[cls] && owner != cache->arena;
    uint32_t give = limit - limit / 2u;
    bin_head_check(cache->heads[cls], cls);   /* a pop set it from a link no walk has vetted */
    size_t gone = arena_free_cached(cache->arena, &cache->heads[cls], consumer ? SIZE_MAX : give);
    if (hmm_sampling.on)
        sample_refund(cache, cls, (uint32_t)gone);
    cache->overflowed[cls] = true;
    cache->rooms[cls] = (intptr_t)(consumer ? bin_room(cache, cls) : give);
    return true;
}

/* The free fast path found the bin of the block at ptr full, its room
 * taken: the block, which the fast path's checks vouch for (as for the
 * blocks the bin sends back, which have no other), goes in once the bin
 * has made room, or to its arena when it cannot; either way without the
 * slow path's lookups. */
void cache_overflow(void *ptr)
{
    hmm_call = "free";
    cache_release(&hmm_thread_cache, block_of(ptr));
}

/* What the slow path's push asks before it parks b: with sampling on,
 * the malloc that will pop it is counted ahead; a scrubbed free's canary
 * is checked and its bytes scrubbed (a cached class's block has no
 * slack: its usable bytes are its units less the header and canary). */
static bool cache_push_admit(struct block *b, const char *call)
{
    if (!sample_charge(&hmm_thread_cache, block_class(b)))
        return false;
    if (frees_scrubbed())
        block_scrub(b, ((size_t)b->units - 1u - canary_units()) << UNIT_SHIFT, call);
    return true;
}

/* The free push of the slow path, for check=full, zero_on_free and
 * sampling, whose bins' keys match no block; false for heap_free. */
bool cache_push_slow(void *ptr, const char *call)
{
    return cache_push_block(ptr, 0, cache_push_admit, call);
}

/* Whether a slow free may park b in its bin: its class is cached, the bin
 * has room (made if need be) and, with sampling on, the malloc that will
 * pop it can be counted ahead. */
static bool cache_admit(struct thread_cache *cache, struct block *b)
{
    unsigned cls = block_class(b);
    if (cls == 0 || (cache->rooms[cls] <= 0 && !cache_make_room(cache, b)) || cache->rooms[cls] <= 0)
        return false;
    if (!sample_charge(cache, cls))
        return false;
    cache->rooms[cls]--;
    return true;
}

/* A freed block of the program's, vetted: onto the closing batch while
 * the cache is closed, into its bin if cache_admit lets it, else back to
 * its arena (the thread's own under its lock, any other through its remote
 * stack). */
void cache_release(struct thread_cache *cache, struct block *b)
{
    struct arena *a = cached_block_arena(b);
    if (closing_add(cache, b, a))
        return;
    if (cache_admit(cache, b))
        cache_put(cache, b);
    else if (a == cache->arena)
        arena_free(a, b);
    else
        arena_free_remote(a, b);
}

void cache_flush(struct thread_cache *cache)
{
    closing_flush(cache);
    struct cache_entry *list = NULL;
    for (unsigned cls = 1; cls < CLASS_COUNT; cls++) {
        list = bin_cut(cache, cls, list);
        cache->grown[cls] = 0;
        cache->overflowed[cls] = false;
        cache->rooms[cls] = bin_room(cache, cls);
    }
    cache->grown_bytes = 0;
    cache->grown_large_bytes = 0;
    if (list)
        arena_free_cached(cache->arena, &list, SIZE_MAX);
    if (cache->arena)
        arena_merge_central(cache->arena);
}
