/* The engine's front door: every pointer the program hands back is checked
 * here (the chunk map says whether hmm owns it, the header whether it is a
 * block in use) before it reaches the thread cache, its arena, its owner's
 * remote stack or the huge blocks.  A caller bug ends in one fatal line. */
#include "internal.h"

#include <errno.h>
#include <string.h>

static HMM_COLD __attribute__((noreturn)) void not_ours(const char *call, void *ptr)
{
    size_t huge = huge_recently_freed(ptr);
    if (huge)
        fatal("%s(): double free of %p (huge block of %zu bytes, already unmapped)", call, ptr, huge);
    fatal("%s(): invalid pointer %p (not a block hmm returned)", call, ptr);
}

/* ptr is in a chunk the region holds free, or in a huge block's mapping. */
static HMM_COLD __attribute__((noreturn)) void outside_arena(const char *call, void *ptr, struct chunk *c)
{
    if (c->state == CHUNK_FREE)
        fatal("%s(): invalid pointer %p (inside free memory at %p)", call, ptr, (void *)c);
    if (c->state != CHUNK_HUGE && block_of(ptr) == chunk_first_block(c))
        fatal("%s(): heap underflow into the chunk header at %p below the block at %p", call, (void *)c, ptr);
    if (c->state != CHUNK_HUGE)
        fatal("%s(): corrupted chunk header at %p (state 0x%x), freeing %p", call, (void *)c, c->state, ptr);
    void *payload = huge_payload(c);
    if (payload != NULL && (char *)ptr > (char *)payload)
        fatal("%s(): invalid pointer %p (inside the huge block at %p)", call, ptr, payload);
    not_ours(call, ptr);
}

/* The header at ptr does not check out: walk the chunk to say why.  A free
 * block may have taken in its neighbours, so its size is not the size of
 * any block the program had, and a pointer inside it may never have been
 * returned: it is only "inside free memory". */
static HMM_COLD __attribute__((noreturn)) void diagnose(const char *call, void *ptr, struct chunk *c)
{
    if (c->state != CHUNK_ARENA)
        outside_arena(call, ptr, c);
    struct block *target = block_of(ptr), *b = chunk_first_block(c), *fence = chunk_fence(c);
    while (b < fence) {
        if (b == target)
            fatal("%s(): corrupted block header at %p (overwritten by an underflow of the block or an overflow "
                  "of the one below)", call, ptr);
        if (!block_header_valid(b) || block_chunk(b) != c || block_next(b) > fence)
            fatal("%s(): corrupted block header at %p (found looking for %p)", call, block_payload(b), ptr);
        if (target < block_next(b)) {
            if (block_state(b) == BLOCK_FREE)
                fatal("%s(): invalid pointer %p (inside free memory at %p)", call, ptr, block_payload(b));
            fatal("%s(): invalid pointer %p (inside the block of %zu bytes at %p)", call, ptr,
                  block_usable(b), block_payload(b));
        }
        b = block_next(b);
    }
    not_ours(call, ptr);
}

/* A header tagged free at ptr: a double free, but the block may have been
 * merged with the free blocks around it, so no size is given. */
static HMM_COLD __attribute__((noreturn)) void double_free(const char *call, void *ptr, struct block *b)
{
    if (block_state(b) == BLOCK_FREE)
        fatal("%s(): double free of %p (already free)", call, ptr);
    fatal("%s(): double free of %p (block of %zu bytes)", call, ptr, block_usable(b));
}

/* The header above b, a block in use, starts with a tag and knows b's
 * size: an overflow of b that reached it changed one or the other. */
static bool block_above_intact(struct block *b)
{
    struct block *above = block_next(b);
    return block_next_untouched(b, (uintptr_t)b->units << UNIT_SHIFT) && above->prev_units == b->units;
}

/* The block at ptr, in use by the program, and its chunk; anything else is
 * fatal. */
struct block *heap_block(void *ptr, const char *call, struct chunk **chunk_out)
{
    struct chunk *c = ((uintptr_t)ptr & (UNIT - 1)) ? NULL : map_lookup(ptr);
    if (c != NULL && !chunk_valid(c))
        fatal("%s(): corrupted chunk header at %p, below the block at %p (heap underflow?)", call, (void *)c, ptr);
    if (c == NULL || (char *)ptr < (char *)c + CHUNK_HEADER + BLOCK_HEADER)
        not_ours(call, ptr);
    struct block *b = block_of(ptr);
    if (!block_tagged(b) || block_chunk(b) != c)
        diagnose(call, ptr, c);
    uint16_t state = block_state(b);
    if (state == BLOCK_FREE || state == BLOCK_CACHED || state == BLOCK_REMOTE)
        double_free(call, ptr, b);
    bool in_arena = state == BLOCK_INUSE && c->state == CHUNK_ARENA && b->units >= MIN_BLOCK_UNITS &&
                    block_next(b) <= chunk_fence(c);
    bool huge = state == BLOCK_HUGE && c->state == CHUNK_HUGE;
    if (!in_arena && !huge)
        diagnose(call, ptr, c);
    if (in_arena && !block_above_intact(b))
        fatal("%s(): heap overflow into the header after the block at %p (usable %zu bytes)", call, ptr,
              block_usable(b));
    if ((in_arena && !block_slack_intact(b)) || (huge && !huge_slack_intact(c, b)))
        fatal("%s(): heap overflow past the block at %p (usable %zu bytes): canary overwritten", call, ptr,
              huge ? huge_usable(c, b) : block_usable(b));
    *chunk_out = c;
    return b;
}

void *heap_malloc(size_t size)
{
    hmm_call = "malloc";
    if (size > hmm_tunables.mmap_threshold)
        return sample_uncached(huge_malloc(size, UNIT), size);
    return cache_fill(&hmm_thread_cache, size ? size : 1);
}

void *heap_memalign(size_t alignment, size_t size)
{
    if (alignment <= UNIT)
        return heap_malloc(size);
    hmm_call = "memalign";
    if (size > hmm_tunables.mmap_threshold || alignment > hmm_tunables.chunk_size / 4 ||
        arena_needs_dedicated(size + alignment + ((size_t)MIN_BLOCK_UNITS << UNIT_SHIFT)))
        return sample_uncached(huge_malloc(size, alignment), size);
    return sample_uncached(arena_memalign(hmm_thread_cache.arena, alignment, size), size);
}

/* A block the profiler may hold (class 0) stops being that block. */
static void sample_forget(void *ptr, struct block *b)
{
    if (HMM_UNLIKELY(hmm_sampling.on) && b->cls == 0)
        hmm_sampling.forget(ptr);
}

void heap_free(void *ptr, const char *call)
{
    if (ptr == NULL)
        return;
    hmm_call = call;
    struct chunk *c;
    struct block *b = heap_block(ptr, call, &c);
    sample_forget(ptr, b);
    if (c->state == CHUNK_HUGE) {
        huge_free(c, b);
        return;
    }
    if (!block_class_valid(b))
        fatal("%s(): corrupted block header at %p (class %u for a block of %u units)", call, ptr,
              block_class(b), b->units);
    if (frees_scrubbed())
        arena_scrub(b, call);
    cache_release(&hmm_thread_cache, b);
}

static void *realloc_move(void *ptr, size_t old_usable, size_t size, size_t capacity)
{
    void *fresh = heap_malloc(capacity);
    if (fresh == NULL && capacity > size)
        fresh = heap_malloc(size);
    else if (fresh != NULL && capacity > size && arena_needs_dedicated(capacity))
        arena_hold(block_of(fresh), size);
    if (fresh == NULL)
        return NULL;
    memcpy(fresh, ptr, old_usable < size ? old_usable : size);
    if (!cache_push(ptr))
        heap_free(ptr, "realloc");
    return fresh;
}

/* A block that has to move to grow gets more room than it asked for, as a
 * growing string or buffer soon asks again: a quarter more, twice as much
 * for a large one, and none where the size classes are a quarter apart
 * (1 KiB..64 KiB), as the class rounds up already.  Pages it does not
 * touch cost nothing, and the next growth stays in place instead of
 * copying; but most such blocks stop growing and keep the room: half as
 * much again made redis's list nodes 1.24 x what it asked.  One that moves
 * into a chunk of its own reserves eight times its size there as slack
 * (arena_hold), not usable: another thread's chunk above it would make
 * each doubling move, and the copy makes the whole old size resident. */
static size_t growth_capacity(size_t usable, size_t size)
{
    size_t most = hmm_tunables.mmap_threshold / 2;
    if (size <= usable || size > most || (size > 2 * CLASS_SMALL_MAX && size <= CLASS_MAX))
        return size;
    if (size < hmm_tunables.chunk_size / 4)
        return size + size / 4;
    if (!arena_needs_dedicated(2 * size))
        return 2 * size;
    return size < most / 8 ? 8 * size : most;
}

/* A block of usable bytes holds size as it is: realloc keeps it unless
 * it would waste more than half.  usable 0 (not known) never holds, as
 * size is never 0 here (realloc(p, 0) frees in lib/). */
static bool fits_in_place(size_t size, size_t usable)
{
    return size <= usable && size >= usable / 2;
}

/* With sampling on, a block resized where it is counts as a new malloc of
 * its new size (a moved one is counted by heap_malloc). */
void *heap_realloc(void *ptr, size_t size)
{
    hmm_call = "realloc";
    if (fits_in_place(size, cache_usable(ptr)))
        return ptr;
    struct chunk *c;
    struct block *b = heap_block(ptr, "realloc", &c);
    bool huge_size = size > hmm_tunables.mmap_threshold;
    sample_forget(ptr, b);
    if (c->state == CHUNK_HUGE) {
        if (huge_size)
            return sample_uncached(huge_realloc(c, b, size), size);
        return realloc_move(ptr, huge_usable(c, b), size, size);
    }
    size_t usable = block_usable(b);
    if (fits_in_place(size, usable))
        return sample_uncached(ptr, size);
    if (!huge_size && c->arena == hmm_thread_cache.arena && arena_resize(c->arena, b, size))
        return sample_uncached(ptr, size);
    return realloc_move(ptr, usable, size, growth_capacity(usable, size));
}

size_t heap_usable(void *ptr, const char *call)
{
    if (ptr == NULL)
        return 0;
    size_t cached_usable = cache_usable(ptr);
    if (cached_usable != 0)
        return cached_usable;
    struct chunk *c;
    struct block *b = heap_block(ptr, call, &c);
    return c->state == CHUNK_HUGE ? huge_usable(c, b) : block_usable(b);
}
