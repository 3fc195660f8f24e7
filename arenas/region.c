/* The central region: one sbrk heap for the whole process, cut into chunks
 * that arenas borrow.  One lock guards every movement of the break (hmm's
 * own and, in the override build, which exports sbrk and brk, everybody
 * else's) and the index of free chunks.  Free chunks are merged with their
 * neighbours and indexed by address, so the lowest fit is reused first and
 * the top of the heap tends to stay free.  Free memory beyond the dirty
 * limit goes back to the kernel: the free top chunk by lowering the break,
 * the free chunks below it with madvise, highest first, once they have been
 * free for decay_ms or at once past four times the limit.  A trim keeps
 * top_pad, plus what the limit has grown by beyond the trim threshold.  The
 * dirty limit is the trim threshold, or twice the largest chunk given back
 * in the last decay_ms if that is more, so that a program cycling large
 * buffers reuses resident memory instead of faulting it in again, as
 * glibc's sliding mmap threshold does, and an idle one settles back to the
 * trim threshold; a program cycling buffers of 8 MiB and more may keep
 * twice that at the top.  When the break cannot move, chunks are mmap'ed.
 *
 * The heap is a stack of segments: a segment ends where somebody else moved
 * the break, and what lies between two segments is foreign.  Only the top
 * segment grows or shrinks, and only while the break is where hmm left it.
 * A segment trimmed away whole gives the break back to where hmm found it,
 * so that foreign code below can lower its own piece again. */
#include "internal.h"

#include <errno.h>

#define SEGMENT_MAX 256u   /* past this many segments, chunks are mmap'ed */
#define LARGE_CYCLE (8 * GRANULE)   /* see trim_point */

/* Where a segment began: the break hmm found (the segment starts at the next
 * granule) and the end of the segment below it (NULL for the first). */
struct segment_floor {
    char *found;
    char *below_end;
};

/* Invariants: top is the end of the top segment and top_chunk the chunk
 * ending there, both NULL iff segments == 0; every chunk of the index is
 * CHUNK_FREE without CHUNK_PURGING and counts in free_bytes; a chunk being
 * purged without the lock is CHUNK_FREE | CHUNK_PURGING, off the index and
 * on the purging list (header links), counted nowhere. */
struct region {
    struct chunk *free_root;   /* the index of free sbrk chunks, see below */
    struct chunk *purging;     /* chunks madvised right now without the lock */
    struct chunk *top_chunk;
    char *top;
    char *brk_seen;            /* the break after the last look or move; sbrk(0) */
    unsigned segments;
    struct segment_floor floors[SEGMENT_MAX];
    size_t region_bytes;       /* every segment, gaps excluded */
    size_t free_bytes;
    size_t purged_bytes;       /* of free_bytes, not resident (free_node.purged) */
    size_t mapped_bytes;       /* mmap'ed chunks in arenas' hands */
    size_t returned_bytes;
    size_t recent_peak;        /* largest chunk given back since recent_since */
    size_t bounce;             /* largest chunk the break grew for soon after a trim */
    uint64_t index_visits;     /* nodes of the index looked at: tests bound it */
    uint64_t recent_since;     /* ms; the peak expires decay_ms after it */
    uint64_t bounce_since;     /* ms; bounce expires decay_ms after it */
    uint64_t trimmed_ms;       /* when a give last lowered the break */
    size_t regrown;            /* what the break grew for since then */
    bool threaded;             /* a second thread bound an arena once (atomic) */
};

static pthread_mutex_t region_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct region region;

uintptr_t hmm_heap_start = HEAP_START_UNSET;
uintptr_t hmm_heap_span;

/* Tell the free fast path where the readable heap ends (internal.h). */
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

static char *chunk_end(const struct chunk *c)
{
    return (char *)c + c->size;
}

/* Free and not being purged: may be taken or merged. */
static bool chunk_is_free(const struct chunk *c)
{
    return c->state == CHUNK_FREE && !(c->flags & CHUNK_PURGING);
}

/* A free chunk keeps its header page; the rest can be purged. */
static size_t purgeable(const struct chunk *c)
{
    return c->size - os_page_size();
}

static size_t dirty_bytes(void)
{
    return region.free_bytes - region.purged_bytes;
}

/* ---- the index of free chunks ------------------------------------------
 * A treap keyed by address: in order it is address order, and a node's
 * priority is a hash of its address, so the tree stays balanced (in
 * expectation) whatever order chunks come and go in.  Each node also holds
 * the largest size and the oldest resident chunk's freed_ms below it, so
 * that the lowest fit and the next chunk to purge are each one descent.
 * The node sits right after the chunk's header, in the page a purge keeps. */
struct free_node {
    struct chunk *left, *right;
    size_t max_size;       /* the largest chunk in this subtree */
    uint64_t oldest_ms;    /* the least freed_ms of a resident chunk in it, or UINT64_MAX */
    size_t purged;         /* of the chunk's purgeable bytes, how many are not
                            * resident (madvised away, or fresh from the break) */
};

/* Every chunk the index reaches is a granule-aligned chunk header: a node
 * that a write after free overwrote stops here, not at a wild address. */
static struct free_node *node(const struct chunk *c)
{
    if (HMM_UNLIKELY(((uintptr_t)c & (GRANULE - 1)) != 0 || !chunk_valid(c)))
        fatal("malloc(): corrupted index of free chunks: %p is not a chunk (write after free?)", (void *)c);
    return (struct free_node *)((char *)c + CHUNK_HEADER);
}

static uint64_t priority(const struct chunk *c)
{
    uint64_t z = (uintptr_t)c >> GRANULE_SHIFT;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A free chunk's count of bytes not resident, vetted: no more than it can
 * hold. */
static size_t chunk_purged(const struct chunk *c)
{
    size_t purged = node(c)->purged;
    if (HMM_UNLIKELY(purged > purgeable(c)))
        fatal("malloc(): corrupted free chunk %p: it counts %zu of its %zu bytes purged (write after free?)",
              (void *)c, purged, purgeable(c));
    return purged;
}

static uint64_t resident_since(const struct chunk *c)
{
    return chunk_purged(c) == purgeable(c) ? UINT64_MAX : c->freed_ms;
}

/* What a node's summaries should be, from its chunk and its children. */
static void node_summarize(const struct chunk *c, size_t *max_size, uint64_t *oldest_ms)
{
    *max_size = c->size;
    *oldest_ms = resident_since(c);
    const struct chunk *children[2] = { node(c)->left, node(c)->right };
    for (int i = 0; i < 2; i++) {
        if (children[i] == NULL)
            continue;
        const struct free_node *child = node(children[i]);
        *max_size = child->max_size > *max_size ? child->max_size : *max_size;
        *oldest_ms = child->oldest_ms < *oldest_ms ? child->oldest_ms : *oldest_ms;
    }
}

static void node_update(struct chunk *c)
{
    region.index_visits++;
    node_summarize(c, &node(c)->max_size, &node(c)->oldest_ms);
}

/* Split t into the chunks below key and those at or above it. */
static void treap_split(struct chunk *t, const struct chunk *key, struct chunk **lo, struct chunk **hi)
{
    if (t == NULL) {
        *lo = *hi = NULL;
    } else if (t < key) {
        treap_split(node(t)->right, key, &node(t)->right, hi);
        node_update(t);
        *lo = t;
    } else {
        treap_split(node(t)->left, key, lo, &node(t)->left);
        node_update(t);
        *hi = t;
    }
}

/* Join two treaps, every chunk of lo below every chunk of hi. */
static struct chunk *treap_join(struct chunk *lo, struct chunk *hi)
{
    if (lo == NULL || hi == NULL)
        return lo != NULL ? lo : hi;
    if (priority(lo) > priority(hi)) {
        node(lo)->right = treap_join(node(lo)->right, hi);
        node_update(lo);
        return lo;
    }
    node(hi)->left = treap_join(lo, node(hi)->left);
    node_update(hi);
    return hi;
}

static struct chunk *treap_insert(struct chunk *t, struct chunk *c)
{
    if (t == NULL || priority(c) > priority(t)) {
        treap_split(t, c, &node(c)->left, &node(c)->right);
        node_update(c);
        return c;
    }
    if (c < t)
        node(t)->left = treap_insert(node(t)->left, c);
    else
        node(t)->right = treap_insert(node(t)->right, c);
    node_update(t);
    return t;
}

static struct chunk *treap_remove(struct chunk *t, struct chunk *c)
{
    if (t == NULL)
        fatal("region: free chunk %p is not in the index", (void *)c);
    if (t == c)
        return treap_join(node(c)->left, node(c)->right);
    if (c < t)
        node(t)->left = treap_remove(node(t)->left, c);
    else
        node(t)->right = treap_remove(node(t)->right, c);
    node_update(t);
    return t;
}

static void free_insert(struct chunk *c)
{
    c->state = CHUNK_FREE;
    c->arena = NULL;
    region.free_root = treap_insert(region.free_root, c);
    region.free_bytes += c->size;
    region.purged_bytes += node(c)->purged;
}

static void free_remove(struct chunk *c)
{
    HMM_ASSERT(chunk_free_valid(c));
    region.free_root = treap_remove(region.free_root, c);
    region.free_bytes -= c->size;
    region.purged_bytes -= chunk_purged(c);
}

/* The lowest free chunk of at least size bytes. */
static struct chunk *lowest_fit(size_t size)
{
    struct chunk *t = region.free_root;
    if (t == NULL || node(t)->max_size < size)
        return NULL;
    for (;; region.index_visits++) {
        if (HMM_UNLIKELY(node(t)->max_size & (GRANULE - 1)))
            fatal("malloc(): corrupted index of free chunks: the free chunk at %p (%zu bytes) is overwritten "
                  "(write after free?)", (void *)t, t->size);
        struct chunk *left = node(t)->left, *right = node(t)->right;
        if (left != NULL && node(left)->max_size >= size)
            t = left;
        else if (t->size >= size)
            return t;
        else
            t = right;   /* the subtree's max is here */
    }
}

/* The highest resident free chunk freed at or before cutoff, but spare. */
static struct chunk *highest_stale(struct chunk *t, uint64_t cutoff, const struct chunk *spare)
{
    if (t == NULL || node(t)->oldest_ms > cutoff)
        return NULL;
    region.index_visits++;
    struct chunk *found = highest_stale(node(t)->right, cutoff, spare);
    if (found != NULL)
        return found;
    if (t != spare && resident_since(t) <= cutoff)
        return t;
    return highest_stale(node(t)->left, cutoff, spare);
}

/* The highest free chunk below addr. */
static struct chunk *free_below(const char *addr)
{
    struct chunk *best = NULL;
    for (struct chunk *t = region.free_root; t != NULL; region.index_visits++) {
        if ((char *)t < addr) {
            best = t;
            t = node(t)->right;
        } else {
            t = node(t)->left;
        }
    }
    return best;
}

/* ---- merging ------------------------------------------------------------ */

/* Absorb the free chunk above c into c; both are off the index.  A free c
 * counts above's purged bytes too (above's header page, resident, is not
 * among them); an arena's c grows over them (realloc in place). */
static void chunk_absorb_above(struct chunk *c, struct chunk *above)
{
    HMM_ASSERT(chunk_abuts(c, above) && above->state == CHUNK_FREE);
    if (c->state == CHUNK_FREE)
        node(c)->purged += node(above)->purged;
    c->size += above->size;
    c->flags = (c->flags & ~CHUNK_SEGMENT_END) | (above->flags & CHUNK_SEGMENT_END);
    struct chunk *next = chunk_above(c);
    if (next)
        next->prev_size = c->size;
    if (region.top_chunk == above)
        region.top_chunk = c;
    above->magic = 0;
}

/* Put c (off the index) on it, merged with its free neighbours, counted as
 * freed at freed_ms.  Returns the merged chunk. */
static struct chunk *free_merge_insert(struct chunk *c, uint64_t freed_ms)
{
    struct chunk *above = chunk_above(c);
    if (above && chunk_is_free(above)) {
        free_remove(above);
        chunk_absorb_above(c, above);
    }
    struct chunk *below = chunk_below(c);
    if (below && chunk_is_free(below)) {
        free_remove(below);
        chunk_absorb_above(below, c);
        c = below;
    }
    c->freed_ms = freed_ms;
    free_insert(c);
    return c;
}

/* Cut c (off the index) to size; the rest becomes a free chunk.  Where in
 * a free c its purged bytes lie is not known: each part counts those that
 * cannot all lie in the other (a count that claimed resident pages purged
 * would keep them from every purge). */
static void chunk_split(struct chunk *c, size_t size)
{
    struct chunk *rest = (struct chunk *)((char *)c + size);
    size_t purged = c->state == CHUNK_FREE ? node(c)->purged : 0, rest_size = c->size - size;
    chunk_format(rest, rest_size, size, c->flags & CHUNK_SEGMENT_END);
    node(rest)->purged = purged > size ? purged - size : 0;
    if (c->state == CHUNK_FREE)
        node(c)->purged = purged > rest_size ? purged - rest_size : 0;
    struct chunk *next = chunk_above(rest);
    if (next)
        next->prev_size = rest->size;
    c->size = size;
    c->flags &= ~CHUNK_SEGMENT_END;
    if (region.top_chunk == c)
        region.top_chunk = rest;
    rest->freed_ms = os_now_ms();
    free_insert(rest);
}

/* ---- purging without the lock -------------------------------------------
 * madvise is slow: the chunks to purge are taken off the index (nobody takes
 * or merges them meanwhile), purged with the lock dropped, and put back. */

static void purging_link(struct chunk *c)
{
    c->flags |= CHUNK_PURGING;
    c->prev = NULL;
    c->next = region.purging;
    if (region.purging)
        region.purging->prev = c;
    region.purging = c;
}

static void purging_unlink(struct chunk *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        region.purging = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    c->flags &= ~CHUNK_PURGING;
}

/* Purges may go to the kernel as vectors (os_purge_ranges) once a second
 * thread has bound an arena: what a vector saves is the shootdowns of
 * other cores' TLBs, and a program that never ran threads (a sandboxed
 * worker whose seccomp filter kills the calls it does not list) never
 * makes the call.  purge_vector=false turns them off. */
void region_threads_started(void)
{
    __atomic_store_n(&region.threaded, true, __ATOMIC_RELAXED);
}

static bool region_vector(void)
{
    return hmm_tunables.purge_vector && __atomic_load_n(&region.threaded, __ATOMIC_RELAXED);
}

/* Drop the pages of a batch of chunks linked by their nodes' left, as
 * many at a time as one call takes; each node keeps what its chunk's
 * purge released (max_size: 0 when refused). */
static void purge_chunk_pages(struct chunk *batch)
{
    struct os_range ranges[PURGE_BATCH];
    struct chunk *chunks[PURGE_BATCH];
    while (batch != NULL) {
        unsigned count = 0;
        for (; batch != NULL && count < PURGE_BATCH; batch = node(batch)->left) {
            chunks[count] = batch;
            ranges[count++] = (struct os_range){ (char *)batch + os_page_size(), purgeable(batch) };
        }
        os_purge_ranges(ranges, count, region_vector());
        for (unsigned i = 0; i < count; i++)
            node(chunks[i])->max_size = ranges[i].size;
    }
}

/* Purge resident free chunks freed at or before cutoff, highest first and
 * never spare, while more than limit bytes are resident.  Drops the lock
 * while it purges.  Returns the bytes purged. */
static size_t purge_chunks(size_t limit, uint64_t cutoff, const struct chunk *spare)
{
    struct chunk *batch = NULL, *c;
    while (dirty_bytes() > limit && (c = highest_stale(region.free_root, cutoff, spare)) != NULL) {
        free_remove(c);
        purging_link(c);
        node(c)->left = batch;
        batch = c;
    }
    if (batch == NULL)
        return 0;
    /* Off the index, a batch chunk's node links the batch (left) and keeps
     * what its madvise released (max_size: 0 when it failed). */
    region_unlock();
    purge_chunk_pages(batch);
    region_lock();
    size_t purged = 0;
    while ((c = batch) != NULL) {
        batch = node(c)->left;
        purging_unlink(c);
        if (node(c)->max_size != 0) {
            purged += purgeable(c) - node(c)->purged;
            node(c)->purged = purgeable(c);
        }
        free_merge_insert(c, c->freed_ms);
    }
    region.returned_bytes += purged;
    return purged;
}

/* Purge free chunks below the top while more than limit bytes of them are
 * resident: only those free for decay_ms, unless four times the limit is
 * resident. */
static void purge_excess(size_t limit)
{
    if (dirty_bytes() <= limit)
        return;
    uint64_t now = os_now_ms(), decay = hmm_tunables.decay_ms;
    uint64_t cutoff = dirty_bytes() / 4 > limit ? UINT64_MAX - 1 : now >= decay ? now - decay : 0;
    purge_chunks(limit, cutoff, region.top_chunk);
}

/* The child of a fork: chunks a vanished thread was purging go back. */
void region_child_reset(void)
{
    pthread_mutex_init(&region_mutex, NULL);
    while (region.purging != NULL) {
        struct chunk *c = region.purging;
        purging_unlink(c);
        free_merge_insert(c, c->freed_ms);
    }
}

/* ---- the break ---------------------------------------------------------- */

static char *break_read(void)
{
    char *now = os_brk(NULL);
    __atomic_store_n(&region.brk_seen, now, __ATOMIC_RELEASE);
    return now;
}

static bool break_set(char *target)
{
    char *now = os_brk(target);
    __atomic_store_n(&region.brk_seen, now, __ATOMIC_RELEASE);
    return now == target;
}

/* Extend the heap by size bytes from the break now: right at the top when
 * it is where hmm left it (contiguous), else as a new segment at the next
 * granule.  Returns the new memory, or NULL. */
static char *break_grow(char *now, size_t size, bool contiguous)
{
    if (!contiguous && region.segments == SEGMENT_MAX)
        return NULL;
    size_t gap = contiguous ? 0 : (GRANULE - ((uintptr_t)now & (GRANULE - 1))) & (GRANULE - 1);
    if (size > (size_t)INTPTR_MAX - gap || (uintptr_t)now + gap + size < (uintptr_t)now)
        return NULL;
    char *end = now + gap + size;
    if (!break_set(end))
        return NULL;
    if (!contiguous)
        region.floors[region.segments++] = (struct segment_floor){ now, region.top };
    if (region.top == NULL)
        __atomic_store_n(&hmm_heap_start, (uintptr_t)(end - size) + BLOCK_HEADER, __ATOMIC_RELAXED);
    region.top = end;
    publish_top(end);
    region.region_bytes += size;
    return end - size;
}

/* The chunk ending at end, the last of its segment: free, being purged or
 * an arena's (in the chunk map). */
static struct chunk *chunk_ending_at(char *end)
{
    struct chunk *c = free_below(end);
    if (c != NULL && chunk_end(c) == end)
        return c;
    for (c = region.purging; c != NULL; c = c->next)
        if (chunk_end(c) == end)
            return c;
    c = map_lookup(end - 1);
    if (c == NULL || chunk_end(c) != end)
        fatal("region: no chunk ends segment end %p", (void *)end);
    return c;
}

/* The top segment is gone: the one below is the top again. */
static void segment_pop(void)
{
    char *below_end = region.floors[--region.segments].below_end;
    region.top = below_end;
    region.top_chunk = below_end != NULL ? chunk_ending_at(below_end) : NULL;
}

/* Keep *largest the largest size noted in the last decay_ms (*since: when
 * it was noted): a larger one, or any once it has expired, replaces it. */
static void recent_note(size_t *largest, uint64_t *since, size_t size, uint64_t now)
{
    if (size >= *largest || now - *since > hmm_tunables.decay_ms) {
        *largest = size;
        *since = now;
    }
}

/* A program that gave back chunks of LARGE_CYCLE or more lately. */
static bool cycles_large_buffers(void)
{
    return region.recent_peak >= LARGE_CYCLE;
}

/* A program whose top chunk comes and goes (a buffer taken past the pad
 * and given back) made the break go down at each give and up again at
 * the next take, under the region lock: hmm-bench realloc -t 2 made
 * 16,000 brk calls in most runs, and took 1.8 x the time of the others.
 * A growth within a tenth of decay_ms of a trim is such a bounce: the
 * free top may then hold the largest such chunk on top of the trim
 * point, for decay_ms; a program cycling large buffers (LARGE_CYCLE and
 * more given back lately) as much as the break grew for since that trim,
 * all chunks together: the largest alone let threads cycling several big
 * buffers trim 70-90 MiB and fault it back in (hmm-bench large -t 2 22 %
 * slower, its peak RSS no lower).  Only a program that bounced keeps it,
 * and no more than it took again. */
static void bounce_note(size_t size)
{
    uint64_t now = os_now_ms();
    if (now - region.trimmed_ms > hmm_tunables.decay_ms / 10)
        return;
    region.regrown += size;
    size_t bounced = cycles_large_buffers() ? region.regrown : size;
    recent_note(&region.bounce, &region.bounce_since, bounced, now);
}

static void region_trimmed(void)
{
    region.trimmed_ms = os_now_ms();
    region.regrown = 0;
}

static size_t bounce_room(void)
{
    return os_now_ms() - region.bounce_since > hmm_tunables.decay_ms ? 0 : region.bounce;
}

/* Make room for size bytes at the top and return them as a free chunk off
 * the index, or NULL when the break cannot move. */
static struct chunk *region_grow(size_t size)
{
    bounce_note(size);
    size_t pad = round_granule(hmm_tunables.top_pad);
    char *now = break_read();
    bool contiguous = region.top != NULL && now == region.top;
    struct chunk *top = contiguous ? region.top_chunk : NULL;
    bool top_free = top != NULL && chunk_is_free(top);
    size_t want = top_free ? size - top->size : size;
    if (want > SIZE_MAX - pad)
        return NULL;
    char *mem = break_grow(now, want + pad, contiguous);
    if (mem == NULL && pad != 0)
        mem = break_grow(now, want, contiguous), pad = 0;
    if (mem == NULL)
        return NULL;
    if (top_free) {
        free_remove(top);
        top->size += want + pad;
        node(top)->purged += want + pad;   /* fresh pages: not resident */
        return top;
    }
    struct chunk *c = (struct chunk *)mem;
    if (top)
        top->flags &= ~CHUNK_SEGMENT_END;
    chunk_format(c, want + pad, top ? top->size : 0, CHUNK_SEGMENT_END);
    node(c)->purged = purgeable(c);
    region.top_chunk = c;
    return c;
}

/* Lower the break while the free top chunk is larger than keep + pad, and
 * only while the break is where hmm left it.  A segment released whole
 * gives the break back to where hmm found it. */
static size_t break_trim(size_t keep)
{
    struct chunk *top = region.top_chunk;
    size_t pad = round_granule(keep);
    if (top == NULL || !chunk_is_free(top) || top->size < pad + GRANULE || break_read() != region.top)
        return 0;
    size_t release = (top->size - pad) & ~(GRANULE - 1);
    bool whole = release == top->size;
    struct chunk *below = chunk_below(top);
    bool segment_gone = whole && below == NULL;
    char *target = segment_gone ? region.floors[region.segments - 1].found : region.top - release;
    /* the purged bytes are taken to lie in the part released (the pad the
     * break grew by, never touched, is at the top): its resident bytes
     * are returned, and the rest counts no more than it can hold */
    size_t released_purged = chunk_purged(top) < release ? chunk_purged(top) : release;
    free_remove(top);   /* before the break drops: the header goes with the memory */
    publish_top(target);
    if (!break_set(target)) {
        publish_top(region.top);
        free_insert(top);
        return 0;
    }
    region.region_bytes -= release;
    region.returned_bytes += release - released_purged;
    if (!whole) {
        top->size -= release;
        node(top)->purged -= released_purged;
        region.top -= release;
        free_insert(top);
    } else if (segment_gone) {
        segment_pop();
    } else {
        below->flags |= CHUNK_SEGMENT_END;
        region.top_chunk = below;
        region.top -= release;
    }
    return release;
}

/* Move the break for the rest of the program, never below hmm's top. */
static bool foreign_move(char *target)
{
    if ((uintptr_t)target < (uintptr_t)region.top)
        return false;
    return break_set(target);
}

/* sbrk(2) for the program: the break moves under the region lock only, so
 * two callers never get the same memory.  A lowering that would cut into
 * hmm's heap fails with ENOMEM; sbrk(0) is one atomic load. */
void *region_sbrk(intptr_t delta)
{
    char *seen = __atomic_load_n(&region.brk_seen, __ATOMIC_ACQUIRE);
    if (delta == 0 && seen != NULL)
        return seen;
    region_lock();
    char *old = break_read();
    uintptr_t target = (uintptr_t)old + (uintptr_t)delta;
    bool wraps = delta > 0 ? target < (uintptr_t)old : target > (uintptr_t)old;
    bool moved = delta == 0 || (!wraps && foreign_move((char *)target));
    region_unlock();
    if (!moved) {
        errno = ENOMEM;
        return (void *)-1;
    }
    return old;
}

/* brk(2) for the program, with the same rule. */
int region_brk(void *addr)
{
    region_lock();
    break_read();
    bool moved = foreign_move(addr);
    region_unlock();
    if (!moved) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

/* ---- granting and taking back ------------------------------------------- */

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
 * set under the region lock: the region reads the state of neighbours.
 * *purged (unless NULL) says whether none of its pages past the first is
 * resident (fresh from the break or a mapping, or all madvised away). */
struct chunk *region_take_purged(size_t size, struct arena *owner, bool *purged)
{
    if (size > SIZE_MAX / 4) {
        errno = ENOMEM;
        return NULL;
    }
    size = round_granule(size);
    region_lock();
    struct chunk *c = lowest_fit(size);
    if (c != NULL)
        free_remove(c);
    else
        c = region_grow(size);
    bool untouched = c == NULL || node(c)->purged == purgeable(c);
    if (c != NULL && c->size > size)
        chunk_split(c, size);
    if (c == NULL)
        c = mapped_chunk(size);
    if (purged != NULL)
        *purged = untouched;
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

struct chunk *region_take(size_t size, struct arena *owner)
{
    return region_take_purged(size, owner, NULL);
}

static size_t dirty_limit(size_t given)
{
    recent_note(&region.recent_peak, &region.recent_since, given, os_now_ms());
    size_t limit = 2 * region.recent_peak;
    return limit > hmm_tunables.trim_threshold ? limit : hmm_tunables.trim_threshold;
}

/* How large the free top may grow before a give lowers the break.  A
 * program that cycles large buffers (LARGE_CYCLE and more given back
 * recently) would fault every page of them in again after each trim: it
 * may keep twice the limit, trimmed back to the limit (the large rows of
 * stress/bench: half the time, the same peak RSS). */
static size_t trim_point(size_t limit)
{
    return cycles_large_buffers() ? 2 * limit : limit;
}

/* Grow c to size by moving the break: c is the top chunk, or lies under a
 * free top chunk too small to make up the difference alone. */
static bool top_extend(struct chunk *c, struct chunk *above, size_t size)
{
    size_t have = c->size + (above ? above->size : 0);
    if (break_read() != region.top || break_grow(region.top, size - have, true) == NULL)
        return false;
    if (above == NULL) {
        c->size = size;
        return true;
    }
    free_remove(above);
    above->size += size - have;
    chunk_absorb_above(c, above);
    return true;
}

/* Grow a chunk an arena holds to size bytes in place: into the free chunk
 * above it, or by moving the break when it is (or is under) the top chunk.
 * Lets realloc grow a large block without copying it. */
bool region_grow_chunk(struct chunk *c, size_t size)
{
    size = round_granule(size);
    if (c->flags & CHUNK_MAPPED || size <= c->size)
        return false;
    region_lock();
    size_t old = c->size;
    struct chunk *above = chunk_above(c);
    bool above_free = above && chunk_is_free(above);
    bool done = false;
    if (above_free && old + above->size >= size) {
        free_remove(above);
        chunk_absorb_above(c, above);
        if (c->size > size)
            chunk_split(c, size);
        done = true;
    } else if (c == region.top_chunk || (above_free && above == region.top_chunk)) {
        done = top_extend(c, above_free ? above : NULL, size);
    }
    if (done && !map_set(c)) {
        chunk_split(c, old);
        done = false;
    }
    region_unlock();
    return done;
}

/* Take a chunk back: merge it with free neighbours, trim the top, purge.
 * used: the bytes of it its owner used, which set the dirty limit (a
 * dedicated chunk's reserve that realloc never grew into is untouched);
 * purged: how many of its bytes past the first page are not resident. */
void region_give_used(struct chunk *c, size_t used, size_t purged)
{
    HMM_ASSERT(purged <= purgeable(c));
    region_lock();
    map_clear(c);
    c->arena = NULL;
    if (c->flags & CHUNK_MAPPED) {
        region.mapped_bytes -= c->size;
        region.returned_bytes += c->size - purged;
        region_unlock();
        c->magic = 0;
        os_unmap(c, c->size);
        return;
    }
    c->state = CHUNK_FREE;
    node(c)->purged = purged;
    size_t limit = dirty_limit(used);
    c = free_merge_insert(c, os_now_ms());
    size_t room = bounce_room();
    if (c == region.top_chunk && c->size > trim_point(limit) + room &&
        break_trim(hmm_tunables.top_pad + room + (limit - hmm_tunables.trim_threshold)) != 0)
        region_trimmed();
    purge_excess(limit);
    region_unlock();
}

void region_give(struct chunk *c)
{
    region_give_used(c, c->size, 0);
}

/* malloc_trim: lower the break to keep pad bytes, purge every free chunk
 * left.  Returns the bytes given back. */
size_t region_trim(size_t pad)
{
    region_lock();
    size_t released = break_trim(pad);
    released += purge_chunks(0, UINT64_MAX - 1, NULL);
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
    out->index_visits = region.index_visits;
    region_unlock();
}

/* ---- checking ----------------------------------------------------------- */

struct index_walk {
    struct chunk *last;     /* the chunk visited before, in address order */
    size_t sum, purged;
    bool broken, unbalanced;
};

/* In order: valid free chunks, ascending, no two adjacent; and each node's
 * summaries and priority agree with its children. */
static void index_visit(struct chunk *t, struct index_walk *w)
{
    if (t == NULL || w->broken)
        return;
    struct free_node *n = node(t);
    index_visit(n->left, w);
    if (w->broken)
        return;
    if (!chunk_valid(t) || !chunk_is_free(t)) {
        warn("hmm_check: region: free chunk %p has a broken header", (void *)t);
        w->broken = true;
        return;
    }
    if (w->last != NULL && (t <= w->last || chunk_above(w->last) == t)) {
        warn("hmm_check: region: free chunks %p and %p are out of order or adjacent",
             (void *)w->last, (void *)t);
        w->broken = true;
        return;
    }
    w->last = t;
    w->sum += t->size;
    if (node(t)->purged > purgeable(t)) {
        warn("hmm_check: region: free chunk %p counts %zu bytes purged of %zu", (void *)t, node(t)->purged,
             purgeable(t));
        w->broken = true;
        return;
    }
    w->purged += node(t)->purged;
    size_t max_size;
    uint64_t oldest_ms;
    node_summarize(t, &max_size, &oldest_ms);
    w->unbalanced |= max_size != n->max_size || oldest_ms != n->oldest_ms;
    w->unbalanced |= n->left != NULL && priority(n->left) > priority(t);
    w->unbalanced |= n->right != NULL && priority(n->right) > priority(t);
    index_visit(n->right, w);
}

/* The index holds valid free chunks only, in address order, no two of them
 * adjacent, adding up to free_bytes, with true summaries; the top is the
 * end of the top chunk. */
int region_check(void)
{
    struct index_walk w = { 0 };
    region_lock();
    index_visit(region.free_root, &w);
    if (!w.broken && (w.sum != region.free_bytes || w.purged != region.purged_bytes)) {
        warn("hmm_check: region: free chunks add up to %zu bytes (%zu purged), not %zu (%zu)", w.sum,
             w.purged, region.free_bytes, region.purged_bytes);
        w.broken = true;
    } else if (!w.broken && w.unbalanced) {
        warn("hmm_check: region: the free chunk index has a wrong summary or priority");
        w.broken = true;
    } else if (!w.broken && (region.top_chunk ? chunk_end(region.top_chunk) != region.top : region.top != NULL)) {
        warn("hmm_check: region: the top chunk %p does not end at the top %p",
             (void *)region.top_chunk, (void *)region.top);
        w.broken = true;
    }
    region_unlock();
    return w.broken ? -1 : 0;
}

/* ---- the arenas' way to the kernel --------------------------------------
 * Arenas purge the pages inside their free blocks and time that on this
 * clock through the region, so that calls flow arena -> region -> os. */

size_t region_page_size(void)
{
    return os_page_size();
}

size_t region_purge_ranges(struct os_range *ranges, unsigned count)
{
    return os_purge_ranges(ranges, count, region_vector());
}

uint64_t region_now_ms(void)
{
    return os_now_ms();
}
