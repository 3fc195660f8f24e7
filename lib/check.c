/* hmm_check: walk the region's free chunks, every arena (each under its own
 * lock, the list under RCU, so other threads keep allocating), and this
 * thread's cache, and report the first broken invariant. */
#include "lib.h"

static __thread uint64_t calls_since_check __attribute__((tls_model("initial-exec")));

static void check_arena(struct arena *a, void *ctx)
{
    int *result = ctx;
    if (*result == 0)
        *result = arena_check(a);
}

/* The calling thread's cache: each entry a cached block of its class and
 * arena, each bin's count right. */
static int check_own_cache(void)
{
    struct thread_cache *cache = &hmm_thread_cache;
    for (unsigned cls = 1; cls < CLASS_COUNT; cls++) {
        uint32_t count = 0;
        for (struct cache_entry *e = cache->bins[cls].head; e != NULL; e = e->next, count++) {
            struct block *b = block_of(e);
            struct chunk *c = map_lookup(b);
            if (c == NULL || block_chunk(b) != c || c->state != CHUNK_ARENA || !block_header_valid(b) ||
                block_state(b) != BLOCK_CACHED || block_class(b) != cls || block_usable(b) < class_size(cls)) {
                warn("hmm_check: thread cache: entry %p of class %u is not a cached block of it",
                     (void *)e, cls);
                return -1;
            }
        }
        if (count > CACHE_CLASS_MAX || cache->bins[cls].room > (intptr_t)CACHE_CLASS_MAX) {
            warn("hmm_check: thread cache: class %u holds %u blocks with room for %zd more, "
                 "past the bound of %u", cls, count, cache->bins[cls].room, CACHE_CLASS_MAX);
            return -1;
        }
    }
    return 0;
}

HMM_EXPORT int hmm_check(void)
{
    thread_init();
    int result = region_check();
    if (result == 0)
        registry_foreach(check_arena, &result);
    if (result == 0)
        result = check_own_cache();
    return result;
}

void check_tick(void)
{
    if (++calls_since_check < hmm_options.check_every)
        return;
    calls_since_check = 0;
    if (hmm_check() != 0)
        fatal("check: the heap is corrupted (the line above says where)");
}
