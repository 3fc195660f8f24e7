/* The central region: one sbrk heap for the whole process, cut into chunks
 * that arenas borrow.  One lock guards every movement of the break and the
 * free list.  Free chunks are merged with their neighbours and kept in
 * address order, so the lowest fit is reused first and the top of the heap
 * tends to stay free.  Free memory beyond the dirty limit goes back to the
 * kernel: the free top chunk with a negative sbrk, the free chunks below it
 * with madvise, a chunk at a time, once they have been free for decay_ms or
 * at once past four times the limit.  A trim keeps top_pad, plus what the
 * limit has grown by beyond the trim threshold.  The dirty limit is the trim threshold,
 * or twice the largest chunk given back in the last decay_ms if that is
 * more, so that a program cycling large buffers reuses resident memory
 * instead of faulting it in again, as glibc's sliding mmap threshold does,
 * and an idle one settles back to the trim threshold.  When sbrk fails, chunks are mmap'ed.
 *
 * The heap is a sequence of segments: a segment ends where somebody else
 * moved the break.  Only the top segment grows or shrinks, and only while the
 * break is still where hmm left it; memory above a foreign break is never
 * trimmed. */
#include "internal.h"

#include <errno.h>

struct region {
    struct chunk *free_list;   /* sbrk chunks in state CHUNK_FREE, address order */
    struct chunk *top_chunk;   /* the chunk ending at top, NULL when none */
    char *top;                 /* where hmm left the break, NULL before the first growth */
    size_t region_bytes;       /* every segment, gaps excluded */
    size_t free_bytes;
    size_t purged_bytes;       /* of free_bytes, madvised away (CHUNK_PURGED) */
    size_t mapped_bytes;       /* mmap'ed chunks in arenas' hands */
    size_t returned_bytes;
    size_t recent_peak;        /* largest chunk given back since recent_since */
    uint64_t recent_since;     /* ms; the peak expires decay_ms after it */
};

static pthread_mutex_t region_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct region region;

uintptr_t hmm_heap_start = HEAP_START_UNSET;
uintptr_t hmm_heap_span;

/* Tell the free fast path where the heap ends (internal.h). */
static void publish_top(const char *top)
{
    uintptr_t start = hmm_heap_start, end = (uintptr_t)top;
    __atomic_store_n(&hmm_heap_span, end > start ? end - start : 0, __ATOMIC_RELAXED);
}

void region_lock(void)
{
    pthread_mutex_lock(&region_mutex);
}

void region_unlock(void)
{
    pthread_mutex_unlock(&region_mutex);
}

void region_child_reset(void)
{
    pthread_mutex_init(&region_mutex, NULL);
}

static size_t round_granule(size_t size)
{
    return (size + GRANULE - 1) & ~(GRANULE - 1);
}

static void chunk_format(struct chunk *c, size_t size, size_t prev_size, uint32_t flags)
{
    c->magic = CHUNK_MAGIC ^ (uintptr_t)c;
    c->size = size;
    c->prev_size = prev_size;
    c->arena = NULL;
    c->next = c->prev = NULL;
    c->state = CHUNK_FREE;
    c->flags = flags;
    c->huge_size = 0;
}

static struct chunk *chunk_above(struct chunk *c)
{
    if (c->flags & CHUNK_SEGMENT_END)
        return NULL;
    return (struct chunk *)((char *)c + c->size);
}

static struct chunk *chunk_below(struct chunk *c)
{
    if (c->prev_size == 0)
        return NULL;
    return (struct chunk *)((char *)c - c->prev_size);
}

/* ---- the free list ------------------------------------------------------ */

/* A free chunk keeps its header page; the rest can be purged. */
static size_t purgeable(const struct chunk *c)
{
    return c->size - os_page_size();
}

/* A chunk leaving the list will be written again: it counts as resident. */
static void free_list_remove(struct chunk *c)
{
    if (c->flags & CHUNK_PURGED) {
        region.purged_bytes -= purgeable(c);
        c->flags &= ~CHUNK_PURGED;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        region.free_list = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    region.free_bytes -= c->size;
}

static void free_list_insert(struct chunk *c)
{
    struct chunk *before = NULL, *after = region.free_list;
    while (after != NULL && after < c) {
        before = after;
        after = after->next;
    }
    c->prev = before;
    c->next = after;
    if (before)
        before->next = c;
    else
        region.free_list = c;
    if (after)
        after->prev = c;
    c->state = CHUNK_FREE;
    c->arena = NULL;
    c->flags &= ~CHUNK_PURGED;
    c->freed_ms = os_now_ms();
    region.free_bytes += c->size;
}

static size_t chunk_purge(struct chunk *c)
{
    if (c->flags & CHUNK_PURGED)
        return 0;
    os_purge((char *)c + os_page_size(), purgeable(c));
    c->flags |= CHUNK_PURGED;
    region.purged_bytes += purgeable(c);
    region.returned_bytes += purgeable(c);
    return purgeable(c);
}

/* Purge free chunks below the top while more than limit bytes of them are
 * resident, the highest first (the lowest are the next to be reused), and
 * only those free for decay_ms unless four times the limit is resident. */
static void purge_excess(size_t limit)
{
    if (region.free_bytes - region.purged_bytes <= limit)
        return;
    bool urgent = region.free_bytes - region.purged_bytes > 4 * limit;
    uint64_t now = os_now_ms();
    struct chunk *c = region.free_list;
    while (c != NULL && c->next != NULL)
        c = c->next;
    for (; c != NULL && region.free_bytes - region.purged_bytes > limit; c = c->prev)
        if (c != region.top_chunk && (urgent || now - c->freed_ms >= hmm_tunables.decay_ms))
            chunk_purge(c);
}

/* Absorb the free chunk above c into c; both are off the free list. */
static void chunk_absorb_above(struct chunk *c, struct chunk *above)
{
    c->size += above->size;
    c->flags = (c->flags & ~CHUNK_SEGMENT_END) | (above->flags & CHUNK_SEGMENT_END);
    c->flags &= ~CHUNK_PURGED;
    struct chunk *next = chunk_above(c);
    if (next)
        next->prev_size = c->size;
    if (region.top_chunk == above)
        region.top_chunk = c;
    above->magic = 0;
}

/* Cut c to size; the rest becomes a free chunk on the list. */
static void chunk_split(struct chunk *c, size_t size)
{
    struct chunk *rest = (struct chunk *)((char *)c + size);
    chunk_format(rest, c->size - size, size, c->flags & (CHUNK_SEGMENT_END | CHUNK_PURGED));
    struct chunk *next = chunk_above(rest);
    if (next)
        next->prev_size = rest->size;
    c->size = size;
    c->flags &= ~CHUNK_SEGMENT_END;
    if (region.top_chunk == c)
        region.top_chunk = rest;
    free_list_insert(rest);
}

/* ---- growing and shrinking the break ------------------------------------ */

/* Extend the heap by size bytes: right at the top when the break is still
 * where hmm left it (contiguous), else at the next granule above the
 * foreign break.  Returns the new memory, or NULL. */
static char *break_grow(size_t size, bool contiguous)
{
    char *current = os_sbrk(0);
    if (current == (char *)-1 || contiguous != (current == region.top))
        return NULL;
    size_t gap = contiguous ? 0 : (GRANULE - ((uintptr_t)current & (GRANULE - 1))) & (GRANULE - 1);
    if (size > (size_t)INTPTR_MAX - gap)
        return NULL;
    char *got = os_sbrk((intptr_t)(size + gap));
    if (got == (char *)-1)
        return NULL;
    if (got != current) {           /* the break moved under us: give it back */
        os_sbrk(-(intptr_t)(size + gap));
        return NULL;
    }
    if (region.top == NULL)
        __atomic_store_n(&hmm_heap_start, (uintptr_t)(got + gap) + BLOCK_HEADER, __ATOMIC_RELAXED);
    region.top = got + gap + size;
    publish_top(region.top);
    region.region_bytes += size;
    return got + gap;
}

/* Make room for size bytes at the top and return them as a free chunk off
 * the list, or NULL when sbrk cannot. */
static struct chunk *region_grow(size_t size)
{
    size_t pad = round_granule(hmm_tunables.top_pad);
    bool contiguous = region.top != NULL && os_sbrk(0) == region.top;
    struct chunk *top = contiguous ? region.top_chunk : NULL;
    bool top_free = top != NULL && top->state == CHUNK_FREE;
    size_t want = top_free ? size - top->size : size;
    if (want > SIZE_MAX - pad)
        return NULL;
    char *mem = break_grow(want + pad, contiguous);
    if (mem == NULL && pad != 0)
        mem = break_grow(want, contiguous), pad = 0;
    if (mem == NULL)
        return NULL;
    if (top_free) {
        free_list_remove(top);
        top->size += want + pad;
        top->flags &= ~CHUNK_PURGED;
        return top;
    }
    struct chunk *c = (struct chunk *)mem;
    if (top)
        top->flags &= ~CHUNK_SEGMENT_END;
    chunk_format(c, want + pad, top ? top->size : 0, CHUNK_SEGMENT_END);
    region.top_chunk = c;
    return c;
}

/* Lower the break while the free top chunk is larger than keep + pad.  Never
 * below a break somebody else moved.  A top chunk released whole is taken
 * off the list first: its header goes with the memory. */
static size_t break_trim(size_t keep)
{
    struct chunk *top = region.top_chunk;
    if (top == NULL || top->state != CHUNK_FREE || (char *)top + top->size != region.top)
        return 0;
    size_t pad = round_granule(keep);
    if (top->size < pad + GRANULE || os_sbrk(0) != region.top)
        return 0;
    size_t release = (top->size - pad) & ~(GRANULE - 1);
    bool whole = release == top->size;
    struct chunk *below = chunk_below(top);
    if (whole)
        free_list_remove(top);
    publish_top(region.top - release);
    if (os_sbrk(-(intptr_t)release) == (void *)-1) {
        publish_top(region.top);
        if (whole)
            free_list_insert(top);
        return 0;
    }
    region.top -= release;
    region.region_bytes -= release;
    region.returned_bytes += release;
    if (!whole) {
        if (top->flags & CHUNK_PURGED)
            region.purged_bytes -= release;
        top->size -= release;
        region.free_bytes -= release;
        return release;
    }
    if (below)
        below->flags |= CHUNK_SEGMENT_END;
    region.top_chunk = below;
    return release;
}

/* ---- granting and taking back ------------------------------------------- */

static struct chunk *lowest_fit(size_t size)
{
    for (struct chunk *c = region.free_list; c != NULL; c = c->next)
        if (c->size >= size)
            return c;
    return NULL;
}

static struct chunk *mapped_chunk(size_t size)
{
    struct chunk *c = os_map_aligned(size, GRANULE);
    if (c == NULL)
        return NULL;
    chunk_format(c, size, 0, CHUNK_MAPPED | CHUNK_SEGMENT_END);
    region.mapped_bytes += size;
    return c;
}

/* Hand out a chunk of at least size bytes (rounded to whole granules),
 * owned by owner from here on, or NULL with errno = ENOMEM.  The owner is
 * set under the region lock: the region reads the state of neighbours. */
struct chunk *region_take(size_t size, struct arena *owner)
{
    if (size > SIZE_MAX / 4) {
        errno = ENOMEM;
        return NULL;
    }
    size = round_granule(size);
    region_lock();
    struct chunk *c = lowest_fit(size);
    if (c != NULL)
        free_list_remove(c);
    else
        c = region_grow(size);
    if (c != NULL && c->size > size)
        chunk_split(c, size);
    if (c == NULL)
        c = mapped_chunk(size);
    if (c != NULL) {
        c->state = CHUNK_ARENA;
        c->arena = owner;
    }
    if (c != NULL && !map_set(c)) {
        region_unlock();
        region_give(c);
        c = NULL;
    } else {
        region_unlock();
    }
    if (c == NULL)
        errno = ENOMEM;
    return c;
}

static size_t dirty_limit(size_t given)
{
    uint64_t now = os_now_ms();
    if (given >= region.recent_peak || now - region.recent_since > hmm_tunables.decay_ms) {
        region.recent_peak = given;
        region.recent_since = now;
    }
    size_t limit = 2 * region.recent_peak;
    return limit > hmm_tunables.trim_threshold ? limit : hmm_tunables.trim_threshold;
}

/* Grow a chunk an arena holds to size bytes in place: into the free chunk
 * above it, or by moving the break when it is the top chunk.  Lets realloc
 * grow a large block without copying it. */
bool region_grow_chunk(struct chunk *c, size_t size)
{
    size = round_granule(size);
    if (c->flags & CHUNK_MAPPED || size <= c->size)
        return false;
    region_lock();
    size_t old = c->size;
    struct chunk *above = chunk_above(c);
    bool done = false;
    if (above && above->state == CHUNK_FREE && old + above->size >= size) {
        free_list_remove(above);
        chunk_absorb_above(c, above);
        if (c->size > size)
            chunk_split(c, size);
        done = true;
    } else if (c == region.top_chunk && (char *)c + old == region.top &&
               break_grow(size - old, true) != NULL) {
        c->size = size;
        done = true;
    }
    if (done && !map_set(c)) {
        chunk_split(c, old);
        done = false;
    }
    region_unlock();
    return done;
}

/* Take a chunk back: merge it with free neighbours and trim the top. */
void region_give(struct chunk *c)
{
    map_clear(c);
    region_lock();
    c->arena = NULL;
    if (c->flags & CHUNK_MAPPED) {
        region.mapped_bytes -= c->size;
        region.returned_bytes += c->size;
        region_unlock();
        c->magic = 0;
        os_unmap(c, c->size);
        return;
    }
    c->state = CHUNK_FREE;
    size_t limit = dirty_limit(c->size);
    struct chunk *above = chunk_above(c);
    if (above && above->state == CHUNK_FREE) {
        free_list_remove(above);
        chunk_absorb_above(c, above);
    }
    struct chunk *below = chunk_below(c);
    if (below && below->state == CHUNK_FREE) {
        free_list_remove(below);
        chunk_absorb_above(below, c);
        c = below;
    }
    free_list_insert(c);
    if (c == region.top_chunk && c->size > limit)
        break_trim(hmm_tunables.top_pad + (limit - hmm_tunables.trim_threshold));
    purge_excess(limit);
    region_unlock();
}

/* malloc_trim: lower the break to keep pad bytes, purge every free chunk
 * below it.  Returns the bytes given back. */
size_t region_trim(size_t pad)
{
    region_lock();
    size_t released = break_trim(pad);
    for (struct chunk *c = region.free_list; c != NULL; c = c->next)
        released += chunk_purge(c);
    region_unlock();
    return released;
}

void region_stats(struct region_stats *out)
{
    region_lock();
    out->region_bytes = region.region_bytes;
    out->free_bytes = region.free_bytes;
    out->purged_bytes = region.purged_bytes;
    out->mapped_bytes = region.mapped_bytes;
    out->returned_bytes = region.returned_bytes;
    out->brk = (uintptr_t)region.top;
    region_unlock();
}

/* The free list is in address order, holds valid free chunks only, no two of
 * them adjacent, and adds up to free_bytes. */
int region_check(void)
{
    int broken = 0;
    size_t sum = 0, purged = 0;
    region_lock();
    for (struct chunk *c = region.free_list; c != NULL && !broken; c = c->next) {
        if (!chunk_valid(c) || c->state != CHUNK_FREE) {
            warn("hmm_check: region: free chunk %p has a broken header", (void *)c);
            broken = -1;
        } else if (c->next && (c->next <= c || chunk_above(c) == c->next)) {
            warn("hmm_check: region: free chunks %p and %p are out of order or adjacent",
                 (void *)c, (void *)c->next);
            broken = -1;
        }
        sum += c->size;
        purged += c->flags & CHUNK_PURGED ? purgeable(c) : 0;
    }
    if (!broken && (sum != region.free_bytes || purged != region.purged_bytes)) {
        warn("hmm_check: region: free chunks add up to %zu bytes (%zu purged), not %zu (%zu)", sum,
             purged, region.free_bytes, region.purged_bytes);
        broken = -1;
    }
    region_unlock();
    return broken;
}
