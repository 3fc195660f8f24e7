/* lib/'s door to the engine besides the malloc family (heap.c): binding a
 * thread and its exit, the fork child, and the walks behind hmm_stats,
 * hmm_check, malloc_trim and the maintenance thread.  lib/ reads no field
 * of an engine struct: what it needs comes out as a struct arena_summary,
 * a result or a line on stderr. */
#include "internal.h"

/* The arena of the block at ptr, if ptr is one (a hint: nothing is fatal
 * here, heap_free checks the pointer next).  The chunk of a block in use
 * stays its arena's while the program holds the block. */
static struct arena *arena_of(const void *ptr)
{
    struct chunk *c = ptr == NULL || ((uintptr_t)ptr & (UNIT - 1)) ? NULL : map_lookup(ptr);
    return c != NULL && chunk_valid(c) && c->state == CHUNK_ARENA ? c->arena : NULL;
}

/* A thread whose first call frees a block prefers to adopt that block's
 * arena, if it is an orphan. */
void *engine_bind(const void *freeing)
{
    struct arena *a = registry_bind(arena_of(freeing));
    if (a == NULL)
        return NULL;
    cache_bind(&hmm_thread_cache, a);
    return &hmm_thread_cache;
}

void engine_unbind(void *bound)
{
    struct thread_cache *cache = bound;
    struct arena *a = cache->arena;
    if (a == NULL)
        return;
    cache_flush(cache);
    cache_bind(cache, NULL);
    registry_unbind(a);
}

void engine_fork_child(void)
{
    registry_child_reset(hmm_thread_cache.arena);
}

/* ---- statistics ---------------------------------------------------------- */

/* Bytes and blocks of a on one list of the calling thread's cache. */
static void own_list(const struct arena *a, const struct cache_entry *e, struct arena_summary *s)
{
    for (; e; e = e->next) {
        if (block_chunk(block_of(e))->arena != a)
            continue;
        s->own_cached_bytes += (size_t)block_of(e)->units << UNIT_SHIFT;
        s->own_cached_blocks++;
    }
}

/* Bytes and blocks of a parked in the calling thread's cache (its bins
 * and its closing list); other threads' caches count as in use, since only
 * their owners may read them. */
static void own_cache(const struct arena *a, struct arena_summary *s)
{
    for (unsigned cls = 1; cls < CLASS_COUNT; cls++)
        own_list(a, hmm_thread_cache.heads[cls], s);
    own_list(a, hmm_thread_cache.closing, s);
}

struct summary_walk {
    void (*visit)(const struct arena_summary *s, void *ctx);
    void *ctx;
};

/* Counters are read without the arena's lock, so that a walker is never
 * held up by the threads sharing an arena: each is exact, the set is a
 * near-instant snapshot. */
static void summarize(struct arena *a, void *ctx)
{
    struct summary_walk *walk = ctx;
    struct arena_summary s = {
        .id = a->id,
        .threads = __atomic_load_n(&a->threads, __ATOMIC_ACQUIRE),
        .chunks = counter_read(&a->chunk_count),
        .chunk_bytes = counter_read(&a->chunk_bytes),
        .used_bytes = counter_read(&a->used_bytes) - counter_read(&a->slack_bytes),
        .used_blocks = counter_read(&a->used_blocks),
        .free_bytes = counter_read(&a->free_bytes),
        .purged_bytes = counter_read(&a->purged_bytes),
        .purged_total = counter_read(&a->purged_total),
        .mallocs = counter_read(&a->mallocs),
        .frees = counter_read(&a->frees),
        .remote_frees = counter_read(&a->remote_frees),
    };
    own_cache(a, &s);
    walk->visit(&s, walk->ctx);
}

void engine_arenas(void (*visit)(const struct arena_summary *s, void *ctx), void *ctx)
{
    struct summary_walk walk = { visit, ctx };
    registry_foreach(summarize, &walk);
}

void engine_retired(struct arena_summary *s)
{
    *s = (struct arena_summary){ .id = 0 };
    registry_retired(&s->mallocs, &s->frees, &s->purged_total);
}

/* ---- the checker ----------------------------------------------------------- */

static void check_arena(struct arena *a, void *ctx)
{
    int *result = ctx;
    if (*result == 0)
        *result = arena_check(a);
}

/* A cached block of class cls (any class, for 0) in an arena's chunk: its
 * chunk is looked up before its header is read. */
static bool cached_entry_sound(const struct cache_entry *e, unsigned cls)
{
    struct block *b = block_of(e);
    struct chunk *c = map_lookup(b);
    return c != NULL && block_chunk(b) == c && c->state == CHUNK_ARENA && block_header_valid(b) &&
           block_state(b) == BLOCK_CACHED && block_class(b) != 0 && (cls == 0 || block_class(b) == cls) &&
           block_class_valid(b) && block_usable(b) >= class_size(block_class(b));
}

/* The blocks a closed cache holds to give back: its own arena's, fewer
 * than a batch, as many as it counts. */
static int check_closing(const struct thread_cache *cache)
{
    uint32_t count = 0;
    for (const struct cache_entry *e = cache->closing; e != NULL && count < CLOSING_BATCH; e = e->next, count++)
        if (!cached_entry_sound(e, 0) || block_chunk(block_of(e))->arena != cache->arena) {
            warn("hmm_check: thread cache: closing list: entry %p is not a cached block of the thread's arena",
                 (const void *)e);
            return -1;
        }
    if (count >= CLOSING_BATCH || count != cache->closing_count) {
        warn("hmm_check: thread cache: the closing list holds %u blocks or more, counted %u (a batch is %u)", count,
             cache->closing_count, CLOSING_BATCH);
        return -1;
    }
    return 0;
}

/* The calling thread's cache: each entry a cached block of its class and
 * arena, each bin's count right, and its closing list. */
static int check_own_cache(void)
{
    struct thread_cache *cache = &hmm_thread_cache;
    for (unsigned cls = 1; cls < CLASS_COUNT; cls++) {
        uint32_t count = 0;
        for (struct cache_entry *e = cache->heads[cls]; e != NULL; e = e->next, count++)
            if (!cached_entry_sound(e, cls)) {
                warn("hmm_check: thread cache: entry %p of class %u is not a cached block of it",
                     (void *)e, cls);
                return -1;
            }
        uint32_t bound = CACHE_CLASS_MAX << CACHE_GROWTH_MAX;
        if (count > bound || cache->rooms[cls] > (intptr_t)bound) {
            warn("hmm_check: thread cache: class %u holds %u blocks with room for %zd more, "
                 "past the bound of %u", cls, count, cache->rooms[cls], bound);
            return -1;
        }
    }
    return check_closing(cache);
}

/* The region's free chunks, every arena (each under its own lock, the list
 * walked without blocking allocation) and this thread's cache: 0, or -1
 * after one line naming the first broken invariant. */
int engine_check(void)
{
    int result = region_check();
    if (result == 0)
        registry_foreach(check_arena, &result);
    if (result == 0)
        result = check_own_cache();
    return result;
}

/* ---- giving memory back -------------------------------------------------- */

static void release_arena(struct arena *a, void *released)
{
    *(size_t *)released += arena_release(a, false) + arena_purge(a);
}

/* malloc_trim: flush this thread's cache, give back every wholly free
 * chunk and drain orphans, then lower the break to pad and purge the free
 * chunks below.  The bytes given back. */
size_t engine_trim(size_t pad)
{
    size_t released = 0;
    if (cache_bound())
        cache_flush(&hmm_thread_cache);
    registry_foreach(release_arena, &released);
    return released + region_trim(pad);
}

/* Retiring an orphan waits for nothing, so it is done inside the walk. */
static void tidy_arena(struct arena *a, void *ctx)
{
    (void)ctx;
    bool live = __atomic_load_n(&a->threads, __ATOMIC_ACQUIRE) != 0;
    arena_release(a, live);
    arena_purge(a);
    if (!live)
        registry_reclaim(a);
}

/* The maintenance thread's pass: drain remote frees, give back wholly free
 * chunks (live arenas keep their spare), purge free pages, retire empty
 * orphans, lower the break to pad and purge the free chunks below. */
void engine_maintain(size_t pad)
{
    registry_foreach(tidy_arena, NULL);
    region_trim(pad);
}
