/* Arenas: chunks borrowed from the region, each a list of blocks with their
 * headers in front; free blocks in bins by size; allocation splits, free
 * coalesces, and a chunk that becomes wholly free goes back to the region
 * (one is kept back as a spare).  Small blocks a thread cache gives back
 * wait unmerged on per-class central lists for the next refill.  Blocks
 * freed by other threads arrive on the lock-free remote stack and are
 * taken onto the central lists (or freed) by a lock holder. */
#include "internal.h"

#include <errno.h>
#include <string.h>

#define REMOTE_BOUND 256u        /* pending remote frees before a freer drains */
#define FIT_SCAN 8               /* blocks tried in the request's own bin */
#define PURGE_UNITS 4096u         /* free blocks below 64 KiB are left resident */
#define PURGE_FLOOR ((size_t)4 << 20)   /* free bytes an arena may always keep resident */
#define PURGE_LIVE_FULL ((size_t)8 << 20)   /* live bytes up to which as many free ones stay */
#define PURGE_TICK_MS 10u         /* how often frees look for aged free pages */
#define SPARSE_SLACK ((size_t)8 << 20)  /* an arena holding this much more than its */
#define SPARSE_RATIO 4u                  /* live bytes, and 4 times them, is being emptied */
#define CENTRAL_FLOOR ((size_t)1 << 20)  /* central bytes an arena may always keep */
#define HANDOFF_BOUND ((size_t)1 << 20)   /* chained bytes before they go to the central lists */
#define HANDOFF_COUNT_MAX ((size_t)1 << 20) /* blocks no chain reaches (a bin holds a few thousand) */
#define SLACK_BYTE 0x5c

static uint64_t held_bytes;        /* every arena's chunk_bytes */
static bool handoffs_off;          /* set before any thread binds: chains take the remote stack */
unsigned arena_threads_bound;      /* atomic stores by the registry, under its lock */
static void (*orphan_emptied)(struct arena *a);   /* the registry's, atomic: set by every new arena */

size_t arena_held_bytes(void)
{
    return (size_t)__atomic_load_n(&held_bytes, __ATOMIC_RELAXED);
}

unsigned arena_threads(void)
{
    return __atomic_load_n(&arena_threads_bound, __ATOMIC_RELAXED);
}

void arena_on_orphan_emptied(void (*emptied)(struct arena *a))
{
    __atomic_store_n(&orphan_emptied, emptied, __ATOMIC_RELAXED);
}


static bool chunk_dedicated(const struct chunk *c);

/* No thread is bound to a (the registry changes threads under its lock):
 * nobody refills from its central lists or grows it. */
static bool arena_orphan(const struct arena *a)
{
    return __atomic_load_n(&a->threads, __ATOMIC_ACQUIRE) == 0;
}

/* A dedicated chunk is whole granules, so its block has more room than
 * was asked for: that slack is not usable, and starts with a canary
 * (SLACK_BYTE), which every free and realloc of the block checks
 * (block_slack_intact): an overflow into it is caught as one into the
 * header above a block is. */
static uint32_t block_slack_units(struct block *b)
{
    /* Not b->prev_units == 0 first: the lock holder may change it while
     * another thread frees b.  The chunk's fields were set before b was
     * handed out. */
    struct chunk *c = block_chunk(b);
    return chunk_dedicated(c) ? c->slack_units : 0;
}

static inline size_t usable_bytes(struct block *b)
{
    return ((size_t)b->units - 1u - canary_units() - block_slack_units(b)) << UNIT_SHIFT;
}

size_t block_usable(struct block *b)
{
    return usable_bytes(b);
}

static uint64_t *slack_canary(struct block *b)
{
    return (uint64_t *)((char *)block_payload(b) + block_usable(b));
}

/* b, alone in its dedicated chunk, was asked for units (0: it is freed):
 * the rest is slack, counted apart in a's used bytes.  A freed block's
 * chunk, released at once, keeps its last slack for the region
 * (chunk_release). */
static void slack_mark(struct arena *a, struct block *b, uint32_t units)
{
    struct chunk *c = block_chunk(b);
    if (!chunk_dedicated(c))
        return;
    counter_sub(&a->slack_bytes, (size_t)c->slack_units << UNIT_SHIFT);
    if (units == 0)
        return;
    c->slack_units = b->units - units;
    counter_add(&a->slack_bytes, (size_t)c->slack_units << UNIT_SHIFT);
    if (c->slack_units != 0)
        memset(slack_canary(b), SLACK_BYTE, UNIT);
}

bool block_slack_intact(struct block *b)
{
    if (block_slack_units(b) == 0)
        return true;
    uint64_t intact = 0x0101010101010101ull * SLACK_BYTE, *canary = slack_canary(b);
    return canary[0] == intact && canary[1] == intact;
}

/* ---- bins --------------------------------------------------------------- */

static unsigned bin_index(uint32_t units)
{
    if (units <= BIN_EXACT)
        return units;
    unsigned bit = 31u - (unsigned)__builtin_clz(units);
    return BIN_EXACT + 1u + (bit - 6u) * 4u + ((units >> (bit - 2u)) & 3u);
}

/* What a free block of PURGE_UNITS or more keeps after its bin links:
 * which of its whole pages are purged (madvised away, or not touched since
 * the region last purged them) as two runs, one from the start of those
 * pages and one to their end (a merge keeps the first run of the block
 * below and the last of the block above; the run the freed block's pages
 * cut off counts as resident), and, while that is not all
 * of its whole pages, its place on the arena's dirty list (newest first)
 * and when it went there (a coarse clock read, not the arena's last purge
 * tick, which may be long past in an arena that had no free for a while).
 * Smaller free blocks are left resident: they are reused first, counting
 * them slowed every split and merge, and purging them one by one cost a
 * scrambled burst's free 44,000 madvise calls of 12-40 KiB, each a TLB
 * shootdown with two threads (with 16 KiB: burst -t 2 0.63 s, now 0.45;
 * the whole chunks they end up in go back when they empty). */
struct purge_record {
    size_t purged_head;      /* with purged_tail, at most the block's whole pages */
    size_t purged_tail;
    uintptr_t newer_link;    /* mangled (link_encode) */
    uintptr_t older_link;
    uint64_t dirty_since;
};

static struct purge_record *purge_record(struct block *b)
{
    return (struct purge_record *)(block_links(b) + 1);
}

/* ---- links kept in free blocks ------------------------------------------ */

/* b's links or purge record were overwritten: a write after free, as the
 * program never holds a free block. */
static HMM_COLD __attribute__((noreturn)) void links_broken(struct block *b)
{
    fatal("%s(): corrupted free list: the free block at %p (%zu bytes) was overwritten (write after free?)",
          hmm_call ? hmm_call : "free", block_payload(b), (size_t)b->units << UNIT_SHIFT);
}

/* Readable, aligned and free: what every link of a free block points at
 * (hmm_check looks before it follows). */
static bool free_block_at(struct block *p)
{
    if (((uintptr_t)p & (UNIT - 1)) != 0 || (!heap_holds_header(p) && map_lookup(p) == NULL))
        return false;
    return block_state(p) == BLOCK_FREE;
}

/* The link stored in field of free block b, decoded: NULL, or aligned and
 * readable (in the sbrk heap, or else in a mapped chunk); the caller then
 * checks that it points back, as glibc does. */
static inline struct block *link_follow(struct block *b, const uintptr_t *field)
{
    struct block *to = link_decode(field, *field);
    if (to != NULL && (((uintptr_t)to & (UNIT - 1)) != 0 || (!heap_holds_header(to) && map_lookup(to) == NULL)))
        links_broken(b);
    return to;
}

static void link_store(uintptr_t *field, const struct block *to)
{
    *field = link_encode(field, to);
}

/* The page size, read by every split, merge and bin change of a large free
 * block: set with the first arena (arena_init), so that those are not two
 * calls across files (3 % of the instructions of a burst's carving). */
static uintptr_t page_size;

static uintptr_t arena_page(void)
{
    return __atomic_load_n(&page_size, __ATOMIC_RELAXED);
}

/* The whole pages of a free block past its links and purge record: where
 * they start, and how many bytes. */
static char *purgeable_start(struct block *b)
{
    uintptr_t page = arena_page();
    return (char *)(((uintptr_t)(purge_record(b) + 1) + page - 1) & ~(page - 1));
}

static size_t purgeable_len(struct block *b)
{
    uintptr_t from = (uintptr_t)purgeable_start(b);
    uintptr_t to = (uintptr_t)block_next(b) & ~(uintptr_t)(arena_page() - 1);
    return to > from ? to - from : 0;
}

/* A free block's purged pages: none when it is too small to keep them. */
struct purged_runs {
    size_t head;             /* bytes from purgeable_start */
    size_t tail;             /* bytes up to purgeable_start + purgeable_len */
};

/* b's record, its runs vetted: within b's pages.  A write after free that
 * changed them would have a purge madvise the pages of blocks in use. */
static struct purge_record *purge_record_vetted(struct block *b, size_t len)
{
    struct purge_record *r = purge_record(b);
    if (r->purged_head > len || r->purged_tail > len - r->purged_head)
        links_broken(b);
    return r;
}

static size_t block_purged(struct block *b)
{
    if (b->units < PURGE_UNITS)
        return 0;
    struct purge_record *r = purge_record_vetted(b, purgeable_len(b));
    return r->purged_head + r->purged_tail;
}

/* b's runs, a run that covers all of its pages as long as all of them. */
static struct purged_runs block_runs(struct block *b)
{
    if (b->units < PURGE_UNITS)
        return (struct purged_runs){ 0, 0 };
    size_t len = purgeable_len(b);
    struct purge_record *r = purge_record_vetted(b, len);
    if (r->purged_head + r->purged_tail == len)
        return (struct purged_runs){ len, len };
    return (struct purged_runs){ r->purged_head, r->purged_tail };
}

/* Keep runs within b's pages, the head first. */
static void block_set_purged(struct block *b, struct purged_runs runs)
{
    if (b->units < PURGE_UNITS)
        return;
    size_t len = purgeable_len(b);
    size_t head = runs.head < len ? runs.head : len;
    purge_record(b)->purged_head = head;
    purge_record(b)->purged_tail = runs.tail < len - head ? runs.tail : len - head;
}

/* Whether some of b's whole pages are not purged; purged: block_purged(b),
 * which its bin changes count anyway (one vetting of its runs, not two). */
static bool block_dirty(struct block *b, size_t purged)
{
    return b->units >= PURGE_UNITS && purged < purgeable_len(b);
}

static void dirty_push(struct arena *a, struct block *b)
{
    struct purge_record *r = purge_record(b);
    r->dirty_since = region_now_ms();
    link_store(&r->newer_link, NULL);
    link_store(&r->older_link, a->dirty_newest);
    if (a->dirty_newest)
        link_store(&purge_record(a->dirty_newest)->newer_link, b);
    else
        a->dirty_oldest = b;
    a->dirty_newest = b;
}

static void dirty_unlink(struct arena *a, struct block *b)
{
    struct purge_record *r = purge_record(b);
    struct block *newer = link_follow(b, &r->newer_link), *older = link_follow(b, &r->older_link);
    if ((newer ? link_follow(newer, &purge_record(newer)->older_link) : a->dirty_newest) != b ||
        (older ? link_follow(older, &purge_record(older)->newer_link) : a->dirty_oldest) != b)
        links_broken(b);
    if (newer)
        link_store(&purge_record(newer)->older_link, older);
    else
        a->dirty_newest = older;
    if (older)
        link_store(&purge_record(older)->newer_link, newer);
    else
        a->dirty_oldest = newer;
}

/* The use of a chunk that holds blocks of units (below a dedicated one). */
static enum chunk_use use_of_units(uint32_t units)
{
    return units <= SMALL_UNITS ? CHUNK_SMALL_BLOCKS : CHUNK_LARGE_BLOCKS;
}

static bool chunk_dedicated(const struct chunk *c)
{
    return c->use == CHUNK_DEDICATED;
}

static struct bin_set *block_set(struct arena *a, struct block *b)
{
    return &a->sets[block_chunk(b)->use];
}

static void bin_insert(struct arena *a, struct block *b)
{
    HMM_ASSERT(block_state(b) == BLOCK_FREE && block_linked(b));
    struct bin_set *set = block_set(a, b);
    unsigned i = bin_index(b->units);
    struct free_links *links = block_links(b);
    link_store(&links->prev_link, NULL);
    link_store(&links->next_link, set->bins[i]);
    if (set->bins[i])
        link_store(&block_links(set->bins[i])->prev_link, b);
    set->bins[i] = b;
    set->bitmap[i / 64] |= 1ull << (i % 64);
    size_t purged = block_purged(b);
    counter_add(&a->purged_bytes, purged);
    if (block_dirty(b, purged))
        dirty_push(a, b);
    counter_add(&a->free_bytes, (size_t)b->units << UNIT_SHIFT);
}

/* Off its bin, after checking that its bin neighbours point back at it
 * (glibc's safe unlink), before anything else of it is trusted. */
static void bin_remove(struct arena *a, struct block *b)
{
    if (block_state(b) != BLOCK_FREE)
        fatal("%s(): corrupted header of the free block at %p (write after free?)", hmm_call ? hmm_call : "free",
              block_payload(b));
    struct bin_set *set = block_set(a, b);
    unsigned i = bin_index(b->units);
    struct free_links *links = block_links(b);
    struct block *prev = link_follow(b, &links->prev_link), *next = link_follow(b, &links->next_link);
    if ((prev ? free_next(prev) : set->bins[i]) != b || (next && free_prev(next) != b))
        links_broken(b);
    HMM_ASSERT(block_binned(set->bins[i], b));
    size_t purged = block_purged(b);
    counter_sub(&a->purged_bytes, purged);
    if (block_dirty(b, purged))
        dirty_unlink(a, b);
    if (prev)
        link_store(&block_links(prev)->next_link, next);
    else
        set->bins[i] = next;
    if (next)
        link_store(&block_links(next)->prev_link, prev);
    if (set->bins[i] == NULL)
        set->bitmap[i / 64] &= ~(1ull << (i % 64));
    counter_sub(&a->free_bytes, (size_t)b->units << UNIT_SHIFT);
}

/* The first non-empty bin at or above i, or BIN_COUNT. */
static unsigned bin_search(const struct bin_set *set, unsigned i)
{
    for (unsigned word = i / 64; word < BIN_WORDS; word++) {
        uint64_t bits = set->bitmap[word];
        if (word == i / 64)
            bits &= ~0ull << (i % 64);
        if (bits)
            return word * 64 + (unsigned)__builtin_ctzll(bits);
    }
    return BIN_COUNT;
}

/* A free block of at least units in a chunk of the request's kind, off
 * its bin, or NULL. */
static struct block *bin_take(struct arena *a, uint32_t units)
{
    struct bin_set *set = &a->sets[use_of_units(units)];
    unsigned i = bin_index(units);
    struct block *b = set->bins[i];
    for (int tries = 0; b != NULL && tries < FIT_SCAN; tries++, b = link_follow(b, &block_links(b)->next_link))
        if (b->units >= units)
            goto found;
    i = bin_search(set, i + 1);
    if (i == BIN_COUNT)
        return NULL;
    b = set->bins[i];
found:
    bin_remove(a, b);
    return b;
}

/* ---- blocks ------------------------------------------------------------- */

/* Cut b down to units; the tail becomes a free block, merged with a free
 * block above it.  runs: b's purged runs (b just left its bin; none for a
 * block in use).  The tail keeps what of b's first run lies past its own
 * header and record, and the last run of b, or of the block above. */
static void block_split(struct arena *a, struct block *b, uint32_t units, struct purged_runs runs)
{
    HMM_ASSERT(block_linked(b) && units <= b->units);
    uint32_t rest_units = b->units - units;
    if (rest_units < MIN_BLOCK_UNITS || chunk_dedicated(block_chunk(b)))
        return;
    uintptr_t head_end = runs.head > 0 ? (uintptr_t)purgeable_start(b) + runs.head : 0;
    struct block *rest = (struct block *)((char *)b + ((size_t)units << UNIT_SHIFT));
    struct block *above = block_next(b);
    if (block_state(above) == BLOCK_FREE) {
        bin_remove(a, above);
        runs.tail = block_runs(above).tail;
        rest_units += above->units;
        block_set_state(above, 0);
        above = block_next(above);
    }
    b->units = units;
    block_format(rest, rest_units, units, b->chunk_units + units, BLOCK_FREE);
    if (rest_units >= PURGE_UNITS) {
        uintptr_t rest_start = (uintptr_t)purgeable_start(rest);
        runs.head = head_end > rest_start ? head_end - rest_start : 0;
    }
    block_set_purged(rest, runs);
    above->prev_units = rest_units;
    bin_insert(a, rest);
    HMM_ASSERT(block_linked(b) && block_binned(block_set(a, rest)->bins[bin_index(rest->units)], rest));
}

static bool block_spans_chunk(struct block *b)
{
    return b->prev_units == 0 && block_state(block_next(b)) == BLOCK_FENCE;
}

/* c holds one free block, its whole.  The state first: the first block
 * may be in a cache, whose fast path flips its header without the lock
 * (a read of its units raced with the flip); a free one is the lock
 * holder's. */
static bool chunk_wholly_free(struct chunk *c)
{
    struct block *first = chunk_first_block(c);
    return block_state(first) == BLOCK_FREE && block_spans_chunk(first);
}

static void canary_write(struct block *b)
{
    if (canary_units())
        memset((char *)block_next(b) - UNIT, CANARY_BYTE, UNIT);
}

void canary_broken(struct block *b, const char *call)
{
    fatal("%s(): heap overflow past the block at %p (usable %zu bytes): canary overwritten", call,
          block_payload(b), block_usable(b));
}

/* A block the program frees, when frees_scrubbed() (block_scrub). */
void arena_scrub(struct block *b, const char *call)
{
    block_scrub(b, usable_bytes(b), call);
}

/* ---- chunks ------------------------------------------------------------- */

static void central_flush(struct arena *a);

/* Take c into a's list as one free block, of the given kind or dedicated to
 * one large block; the block is not binned. */
static struct block *chunk_adopt(struct arena *a, struct chunk *c, enum chunk_use use, bool purged)
{
    c->use = use;
    c->slack_units = 0;
    c->prev = NULL;
    c->next = a->chunks;
    if (a->chunks)
        a->chunks->prev = c;
    a->chunks = c;
    counter_add(&a->chunk_count, 1);
    counter_add(&a->chunk_bytes, c->size);
    ck_pr_add_64(&held_bytes, c->size);
    uint32_t units = (uint32_t)((c->size - CHUNK_HEADER - BLOCK_HEADER) >> UNIT_SHIFT);
    struct block *first = chunk_first_block(c);
    block_format(first, units, 0, CHUNK_HEADER >> UNIT_SHIFT, BLOCK_FREE);
    block_set_purged(first, (struct purged_runs){ purged ? SIZE_MAX : 0, 0 });
    struct block *fence = chunk_fence(c);
    block_format(fence, 0, units, (uint32_t)((c->size - BLOCK_HEADER) >> UNIT_SHIFT), BLOCK_FENCE);
    HMM_ASSERT(chunk_owned(a, c));
    return first;
}

/* The whole granules of a dedicated chunk that its block never used: the
 * reserve realloc gave it (a plain malloc's slack is less than a granule). */
static size_t chunk_reserve(const struct chunk *c)
{
    return chunk_dedicated(c) ? ((size_t)c->slack_units << UNIT_SHIFT) & ~(GRANULE - 1) : 0;
}

/* Give a wholly free chunk back to the region; binned says whether its one
 * free block is in a bin. */
static void chunk_release(struct arena *a, struct chunk *c, bool binned)
{
    HMM_ASSERT(chunk_owned(a, c));
    if (binned)
        bin_remove(a, chunk_first_block(c));
    if (c->prev)
        c->prev->next = c->next;
    else
        a->chunks = c->next;
    if (c->next)
        c->next->prev = c->prev;
    counter_sub(&a->chunk_count, 1);
    counter_sub(&a->chunk_bytes, c->size);
    ck_pr_sub_64(&held_bytes, c->size);
    if (a->spare == c)
        a->spare = NULL;
    size_t purged = chunk_wholly_free(c) ? block_purged(chunk_first_block(c)) : 0;
    region_give_used(c, c->size - chunk_reserve(c), purged);
}

/* The spare serves either use: turn it to the request's. */
static void spare_reuse(struct arena *a, enum chunk_use use)
{
    struct chunk *c = a->spare;
    bin_remove(a, chunk_first_block(c));
    c->use = use;
    bin_insert(a, chunk_first_block(c));
    a->spare = NULL;
}

/* The chunk bytes a block of units needs alone: the chunk header, the
 * block, and the fence header at the chunk's end. */
static size_t chunk_need(uint64_t units)
{
    return ((size_t)units << UNIT_SHIFT) + CHUNK_HEADER + BLOCK_HEADER;
}

/* Bounds units_for(size) from above (size rounded up a unit, its header,
 * a canary), without its 32-bit count. */
bool arena_needs_dedicated(size_t size)
{
    return chunk_need(((size + UNIT - 1) >> UNIT_SHIFT) + 2) > hmm_tunables.chunk_size;
}

/* A new chunk for a block of units.  A block larger than a standard chunk
 * gets a chunk of its own, handed out whole, never split and never binned,
 * so that small blocks never pin the big chunk after the big block is freed. */
static struct block *arena_grow(struct arena *a, uint32_t units)
{
    size_t need = chunk_need(units);
    bool dedicated = need > hmm_tunables.chunk_size;
    enum chunk_use use = dedicated ? CHUNK_DEDICATED : use_of_units(units);
    if (!dedicated && a->spare != NULL) {
        spare_reuse(a, use);
        return bin_take(a, units);
    }
    size_t size = dedicated ? need : hmm_tunables.chunk_size;
    if (size - CHUNK_HEADER - BLOCK_HEADER > ((size_t)MAX_UNITS << UNIT_SHIFT))
        return NULL;
    if (a->central_bytes != 0) {
        central_flush(a);
        struct block *merged = bin_take(a, units);
        if (merged != NULL || (!dedicated && a->spare != NULL))
            return merged != NULL ? merged : arena_grow(a, units);
    }
    bool purged;
    struct chunk *c = region_take_purged(size, a, &purged);
    if (c == NULL)
        return NULL;
    struct block *whole = chunk_adopt(a, c, use, purged);
    if (dedicated)
        return whole;
    bin_insert(a, whole);
    return bin_take(a, units);
}

/* A chunk whose one block just became free (not binned): keep the first
 * standard one as the spare, give the rest back.  An orphan keeps none: no
 * thread will grow it. */
static void chunk_emptied(struct arena *a, struct chunk *c)
{
    if (a->spare == NULL && !chunk_dedicated(c) && c->size == hmm_tunables.chunk_size &&
        !arena_orphan(a)) {
        bin_insert(a, chunk_first_block(c));
        a->spare = c;
        return;
    }
    chunk_release(a, c, false);
}

/* ---- purging ------------------------------------------------------------ */

static size_t free_resident(const struct arena *a)
{
    return a->free_bytes - a->purged_bytes;
}

/* Whether the dirty block b is purged in a pass that keeps target bytes
 * of free memory resident (resident now, of which the pass already asked
 * to purge asked), and purges what went dirty at or before aged. */
static bool purge_due(struct block *b, size_t resident, size_t asked, size_t target, uint64_t aged)
{
    return (resident > asked && resident - asked > target) || purge_record(b)->dirty_since <= aged;
}

static struct block *dirty_newer(struct block *b)
{
    return link_follow(b, &purge_record(b)->newer_link);
}

/* Purge the pages between the purged runs of the oldest dirty free blocks
 * that are due, PURGE_BATCH at most in one call (one TLB shootdown where
 * the kernel takes a vector); the bytes purged, 0 when none was due or the
 * kernel refused them all (they stay dirty: a later pass tries again). */
static size_t purge_batch(struct arena *a, size_t resident, size_t target, uint64_t aged)
{
    struct os_range ranges[PURGE_BATCH];
    struct block *blocks[PURGE_BATCH];
    unsigned count = 0;
    size_t asked = 0;
    struct block *b = a->dirty_oldest;
    for (; b != NULL && count < PURGE_BATCH && purge_due(b, resident, asked, target, aged); b = dirty_newer(b)) {
        size_t len = purgeable_len(b);
        struct purge_record *r = purge_record_vetted(b, len);
        size_t dirty = len - r->purged_head - r->purged_tail;
        HMM_ASSERT(dirty > 0);
        blocks[count] = b;
        ranges[count++] = (struct os_range){ purgeable_start(b) + r->purged_head, dirty };
        asked += dirty;
    }
    size_t purged = region_purge_ranges(ranges, count);
    for (unsigned i = 0; i < count; i++) {
        if (ranges[i].size == 0)
            continue;
        dirty_unlink(a, blocks[i]);
        block_set_purged(blocks[i], (struct purged_runs){ SIZE_MAX, 0 });
    }
    return purged;
}

/* Purge free blocks, the oldest first, while more than target bytes of free
 * memory stay resident or the oldest went dirty at or before aged. */
static size_t purge_locked(struct arena *a, size_t target, uint64_t aged)
{
    size_t purged = 0, done;
    while ((done = purge_batch(a, free_resident(a) - purged, target, aged)) != 0)
        purged += done;
    counter_add(&a->purged_bytes, purged);
    counter_add(&a->purged_total, purged);
    a->purge_mark = free_resident(a);
    return purged;
}

/* Free pages unused for a tenth of decay_ms are purged: long enough for a
 * churning program to reuse what it frees, short enough that its resident
 * size follows its live set closely instead of swinging with the passes. */
static uint64_t purge_delay_ms(void)
{
    return hmm_tunables.decay_ms / 10;
}

/* The free bytes an arena keeps resident before its frees purge: as many
 * as its live bytes up to PURGE_LIVE_FULL, half of them past twice that,
 * and never fewer than PURGE_FLOOR.  Live bytes count what the program
 * asked for, touched or not: under steady churn of blocks written in their
 * first 256 bytes (soak, 200 MiB asked for) free memory as large as that
 * made the footprint half again as large (RSS 302 MiB; 250 now, for 1-2 %
 * of the time), while a small live set cycled by large blocks (churn,
 * 7 MiB) pays for each purge in faults (half of it: 23 % slower). */
static size_t purge_trigger(size_t live)
{
    size_t trigger = live < PURGE_LIVE_FULL ? live : PURGE_LIVE_FULL;
    if (live / 2 > trigger)
        trigger = live / 2;
    return trigger > PURGE_FLOOR ? trigger : PURGE_FLOOR;
}

/* After frees, at most once a PURGE_TICK_MS: purge the free blocks dirty
 * for longer than the delay.  And at once when the free memory kept
 * resident is more than the live bytes: purge it down to half of that,
 * at least a granule at a time.  The mark (what the last pass could not
 * purge, as small free blocks hold no whole page) keeps a busy arena from
 * purging on every free. */
static void purge_if_due(struct arena *a)
{
    uint64_t now = region_now_ms();
    if (now - a->purge_clock >= PURGE_TICK_MS) {
        a->purge_clock = now;
        uint64_t delay = purge_delay_ms();
        if (a->dirty_oldest != NULL && now >= delay)
            purge_locked(a, SIZE_MAX, now - delay);
    }
    size_t resident = free_resident(a), live = a->used_bytes - a->slack_bytes;   /* slack: untouched */
    size_t trigger = purge_trigger(live);
    if (resident < a->purge_mark)
        a->purge_mark = resident;
    if (resident <= trigger || resident <= a->purge_mark + GRANULE)
        return;
    central_flush(a);
    purge_locked(a, trigger / 2, 0);
}

/* ---- allocation and free under the lock --------------------------------- */

static uint32_t units_for(size_t size)
{
    if (size < UNIT)
        size = UNIT;
    return (uint32_t)(((size + UNIT - 1) >> UNIT_SHIFT) + 1u + canary_units());
}

static struct block *alloc_locked(struct arena *a, uint32_t units)
{
    struct block *b = bin_take(a, units);
    if (b == NULL && (b = arena_grow(a, units)) == NULL)
        return NULL;
    block_split(a, b, units, block_runs(b));
    slack_mark(a, b, units);
    if (a->spare != NULL && block_chunk(b) == a->spare)
        a->spare = NULL;
    block_set_state(b, BLOCK_INUSE);
    counter_add(&a->used_bytes, (size_t)b->units << UNIT_SHIFT);
    counter_add(&a->used_blocks, 1);
    counter_add(&a->mallocs, 1);
    canary_write(b);
    return b;
}

/* Merge a block that just stopped being used with its free neighbours and
 * bin the result.  It keeps the first purged run of the block below and
 * the last of the block above: b's own pages (resident) lie between them,
 * and the last run of the block below is counted resident until a purge
 * madvises it again. */
static void coalesce_locked(struct arena *a, struct block *b)
{
    HMM_ASSERT(block_linked(b));
    struct block *above = block_next(b);
    struct purged_runs runs = { 0, 0 };
    if (block_state(above) == BLOCK_FREE) {
        bin_remove(a, above);
        runs.tail = block_runs(above).tail;
        b->units += above->units;
        block_set_state(above, 0);
    }
    if (b->prev_units != 0) {
        struct block *below = block_prev(b);
        if (block_state(below) == BLOCK_FREE) {
            bin_remove(a, below);
            runs.head = block_runs(below).head;
            below->units += b->units;
            block_set_state(b, 0);
            b = below;
        }
    }
    block_next(b)->prev_units = b->units;
    block_set_state(b, BLOCK_FREE);
    b->cls = 0;
    HMM_ASSERT(block_coalesced(b));
    block_set_purged(b, runs);
    if (block_spans_chunk(b))
        chunk_emptied(a, block_chunk(b));
    else
        bin_insert(a, b);
}

/* b's header, whose last 8 bytes (chunk_units, prev_units) no fast path
 * read, overwritten by an underflow of b or an overflow of the block below. */
static HMM_COLD __attribute__((noreturn)) void header_broken(struct block *b)
{
    fatal("%s(): corrupted block header at %p (overwritten by an underflow of the block or an overflow of the one "
          "below)",
          hmm_call ? hmm_call : "free", block_payload(b));
}

void cached_link_broken(const struct cache_entry *entry)
{
    fatal("%s(): corrupted list of cached blocks: the free block at %p was overwritten (write after free?)",
          hmm_call ? hmm_call : "free", (const void *)entry);
}

struct arena *cached_block_arena(struct block *b)
{
    struct chunk *c = block_chunk_readable(b);
    if (HMM_UNLIKELY(c == NULL))
        header_broken(b);
    return c->arena;
}

/* Before a merge trusts b's header: the chunk it names is an arena's
 * chunk that holds b, and the block below is where prev_units says (its
 * units read inside one atomic load of its key, which another thread's
 * fast path may flip) and names the same chunk (else its own header is
 * the broken one). */
static void block_vet(struct block *b)
{
    struct chunk *c = block_chunk_readable(b);
    if (c == NULL || !chunk_valid(c) || c->state != CHUNK_ARENA || b < chunk_first_block(c) ||
        block_next(b) > chunk_fence(c))
        header_broken(b);
    if (b->prev_units == 0) {
        if (b != chunk_first_block(c))
            header_broken(b);
        return;
    }
    struct block *below = block_prev(b);
    if (below < chunk_first_block(c) ||
        (uint32_t)(__atomic_load_n(&below->key, __ATOMIC_RELAXED) >> 32) != b->prev_units)
        header_broken(b);
    if (block_chunk(below) != c)
        header_broken(below);
}

static void free_locked(struct arena *a, struct block *b)
{
    block_vet(b);
    slack_mark(a, b, 0);
    counter_sub(&a->used_bytes, (size_t)b->units << UNIT_SHIFT);
    counter_sub(&a->used_blocks, 1);
    counter_add(&a->frees, 1);
    coalesce_locked(a, b);
}

/* ---- merges fetched ahead ----------------------------------------------- */

/* A merge stalls on cold lines one after another: the headers above and
 * below the block, then, of a free neighbour, its bin neighbours' links
 * (bin_remove's safe unlink) and its dirty neighbours' records.  A loop
 * over a batch fetches them MERGE_AHEAD blocks ahead in two steps, the
 * headers first and the links once the headers have come, so that the
 * misses of several merges overlap (hmm-bench burst, whose scrambled frees
 * merge nearly every block: bin_remove was a third of its user time).
 * Only hints: a header a merge in between changed gives a useless
 * prefetch, never a wrong merge, and only the loop's own arena's chunks
 * are read (under its lock). */
#define MERGE_AHEAD 4

/* The block of a cached entry ahead, if its chunk is readable and a's. */
static inline struct block *merge_own_block(struct arena *a, struct cache_entry *entry)
{
    struct block *b = block_of(entry);
    struct chunk *c = block_chunk_readable(b);
    return c != NULL && c->arena == a ? b : NULL;
}

static inline void merge_fetch_headers(struct arena *a, struct cache_entry *entry)
{
    struct block *b = merge_own_block(a, entry);
    if (b == NULL)
        return;
    __builtin_prefetch(block_next(b));
    __builtin_prefetch(block_prev(b));
}

/* The links of the block a link names: what bin_remove and dirty_unlink
 * load of it. */
static inline void link_fetch(const uintptr_t *field, size_t field_at)
{
    __builtin_prefetch((char *)link_decode(field, *field) + BLOCK_HEADER + field_at);
}

static inline void neighbour_fetch(struct block *b)
{
    if (block_state(b) != BLOCK_FREE)
        return;
    struct free_links *links = block_links(b);
    link_fetch(&links->prev_link, offsetof(struct free_links, next_link));
    link_fetch(&links->next_link, offsetof(struct free_links, prev_link));
    if (b->units >= PURGE_UNITS) {
        struct purge_record *r = purge_record(b);
        link_fetch(&r->newer_link, sizeof(struct free_links) + offsetof(struct purge_record, older_link));
        link_fetch(&r->older_link, sizeof(struct free_links) + offsetof(struct purge_record, newer_link));
    }
}

/* The block below is read only where it is readable: its header's
 * prev_units is vetted by the merge, which comes later. */
static inline void merge_fetch_links(struct arena *a, struct cache_entry *entry)
{
    struct block *b = merge_own_block(a, entry);
    if (b == NULL)
        return;
    neighbour_fetch(block_next(b));
    if (b->prev_units != 0 && heap_holds_header(block_prev(b)))
        neighbour_fetch(block_prev(b));
}

/* The entries MERGE_AHEAD and twice that ahead of the one a loop merges. */
struct merge_ahead {
    struct cache_entry *near, *far;
};

/* The entry steps past entry, or NULL past the end or past left entries. */
static inline struct cache_entry *entry_skip(struct cache_entry *entry, size_t steps, size_t left)
{
    if (steps >= left)
        return NULL;
    for (; entry != NULL && steps > 0; steps--)
        entry = cached_next(entry);
    return entry;
}

/* For a loop that merges at most left blocks from entry on. */
static inline struct merge_ahead merge_ahead_start(struct arena *a, struct cache_entry *entry, size_t left)
{
    struct merge_ahead ahead = { entry_skip(entry, MERGE_AHEAD, left), NULL };
    ahead.far = left > MERGE_AHEAD ? entry_skip(ahead.near, MERGE_AHEAD, left - MERGE_AHEAD) : NULL;
    for (size_t n = 0; entry != ahead.far && n < left; entry = cached_next(entry), n++)
        merge_fetch_headers(a, entry);
    return ahead;
}

/* One step of the loop: fetch for the entries ahead, and move them on. */
static inline void merge_ahead_step(struct arena *a, struct merge_ahead *ahead)
{
    if (ahead->near == NULL)
        return;
    merge_fetch_links(a, ahead->near);
    ahead->near = cached_next(ahead->near);
    if (ahead->far != NULL) {
        merge_fetch_headers(a, ahead->far);
        ahead->far = cached_next(ahead->far);
    }
}

/* ---- central lists ------------------------------------------------------ */

/* A quarter of cache_size in blocks of class cls (256 KiB at the
 * default): room for many flushes of a thread cache's bin and for the
 * blocks a producer has in flight to its consumers.  Every cached class,
 * up to 64 KiB: a random-size churn flushes and refills the large classes
 * most (a bin of 64 KiB blocks holds one), and merging each of them with
 * its neighbours only to split it off again cost a tenth of its time;
 * under a steady churn of 16 B..96 KiB over 200 MiB live (hmm-bench soak)
 * the peak footprint fell by a sixth.  What the lists hold together is
 * bounded by the live bytes too (central_open). */
static uint32_t central_limit(unsigned cls)
{
    return (uint32_t)(hmm_tunables.cache_size / 4 / class_size(cls));
}

/* What a batch of central pushes adds up to, for the counters, which are
 * updated once a batch, and the bytes the batch may add. */
struct central_tally {
    size_t bytes;
    size_t blocks;
    size_t room;
};

/* A run of count blocks from first down to last was spliced on top of
 * list: when the list remembers as many as it can, its bottom two runs
 * become one. */
static void central_run_push(struct central_list *list, struct cache_entry *first, struct cache_entry *last,
                             size_t count)
{
    if (list->nruns == CENTRAL_RUNS) {
        list->runs[1].last = list->runs[0].last;
        list->runs[1].count += list->runs[0].count;
        memmove(&list->runs[0], &list->runs[1], (CENTRAL_RUNS - 1) * sizeof(list->runs[0]));
        list->nruns--;
    }
    list->runs[list->nruns++] = (struct central_run){ first, last, (uint32_t)count };
}

/* Park a block that left the program (cached or remote) on its class's
 * central list, if it has room; false when it has none, or when the block
 * is a unit longer than its class (a split left too little to cut): a
 * central block has its class's units exactly, so that a walk over the
 * list need not sum them. */
static inline bool central_push(struct arena *a, struct block *b, struct central_tally *tally)
{
    unsigned cls = block_class(b);
    struct central_list *list = &a->central[cls];
    size_t bytes = (size_t)b->units << UNIT_SHIFT;
    if (list->count >= list->limit || tally->bytes + bytes > tally->room || b->units != class_units(cls))
        return false;
    HMM_ASSERT(block_linked(b) && block_chunk(b)->arena == a);
    if (canary_units())
        canary_check(b, "free");
    block_set_state(b, BLOCK_CACHED);   /* a remote block's was REMOTE */
    struct cache_entry *entry = block_payload(b);
    entry->next = list->head;
    list->head = entry;
    list->count++;
    if (list->nruns == 0) {
        central_run_push(list, entry, entry, 1);
    } else {
        list->runs[list->nruns - 1].first = entry;   /* the top run's last stays */
        list->runs[list->nruns - 1].count++;
    }
    tally->bytes += bytes;
    tally->blocks++;
    return true;
}

/* A run cut off the head of a cache's list: owner's blocks of the first
 * block's class, linked as the bin held them (a handoff's relinked: last
 * is then its first); lead is the step between the first two neighbours
 * met, in the bin's order (0: none met). */
struct run {
    struct cache_entry *first, *last;
    size_t count, units;
    intptr_t lead;
};

/* The stretch of neighbours a walk for a chain given back is on: the
 * step from each to the next (0: none yet) and how many. */
struct stretch {
    intptr_t step;
    size_t length;
};

/* Whether a block gap bytes past the last one walked ends the chain: it
 * does not go on a stretch of HANDOFF_RUN_MIN neighbours.  Otherwise it
 * joins, on the stretch or starting another (shorter stretches join the
 * chain, which goes on: a scrambled bin stays one chain). */
static inline bool stretch_ends(struct stretch *s, intptr_t gap, intptr_t stride)
{
    if (gap == s->step) {
        s->length++;
        return false;
    }
    if (s->length >= HANDOFF_RUN_MIN)
        return true;
    s->step = gap == stride || gap == -stride ? gap : 0;
    s->length = s->step != 0 ? 2 : 1;
    return false;
}

/* The run off the head of *list (not empty), up to most blocks, each
 * cached, of the first block's class and cut exactly (one compare of its
 * key: its units are the class's, not summed), left cached (a central
 * list holds them so too); *list goes on past it: one walk, no push.  A
 * block a unit longer ends the run.  For a chain given back (handoff),
 * so does the end of a stretch of neighbours (stretch_ends), and the run
 * is relinked as it is walked, the first freed first (the bin held them
 * the last freed first). */
static inline __attribute__((always_inline)) struct run run_cut(struct cache_entry **list, struct arena *owner,
                                                                size_t most, bool handoff)
{
    struct run run = { *list, NULL, 0, 0, 0 };
    uint8_t cls = block_of(run.first)->cls;
    uint32_t units = class_units(cls);
    uint64_t key = block_key(BLOCK_CACHED, cls, units);
    struct stretch stretch = { 0, 1 };
    struct cache_entry *entry = run.first, *older = NULL;
    for (; entry != NULL && run.count < most; run.count++) {
        struct block *b = block_of(entry);
        if (b->key != key || cached_block_arena(b) != owner)
            break;
        HMM_ASSERT(block_cached(b));
        if (handoff && run.count != 0) {
            if (stretch_ends(&stretch, (char *)entry - (char *)run.last, (intptr_t)units << UNIT_SHIFT))
                break;
            if (run.lead == 0)
                run.lead = stretch.step;
        }
        run.last = entry;
        entry = cached_next(entry);
        if (handoff) {
            run.last->next = older;
            older = run.last;
        }
    }
    run.units = run.count * units;
    *list = entry;
    return run;
}

/* A cache's overflow in one splice: the blocks off the head of *list that
 * are a's and of the first block's class, up to count and to what the
 * class's list and the batch have room for, go on the list as they come,
 * linked already.  check=full checks each canary in central_push, which
 * takes the rest.  Returns how many it took. */
static size_t central_push_run(struct arena *a, struct cache_entry **list, size_t count,
                               struct central_tally *tally)
{
    struct cache_entry *first = *list;
    if (first == NULL || canary_units())
        return 0;
    struct central_list *central = &a->central[block_class(block_of(first))];
    size_t room = tally->bytes < tally->room ? (tally->room - tally->bytes) >> UNIT_SHIFT : 0;
    size_t fits = room / (block_of(first)->units + 1u);   /* a unit to spare a block: a bound, not exact */
    size_t most = central->limit - central->count < count ? central->limit - central->count : count;
    struct run run = run_cut(list, a, most < fits ? most : fits, false);
    if (run.count == 0)
        return 0;
    run.last->next = central->head;
    central->head = run.first;
    central->count += (uint32_t)run.count;
    central_run_push(central, run.first, run.last, run.count);
    tally->bytes += run.units << UNIT_SHIFT;
    tally->blocks += run.count;
    return run.count;
}

/* The start of a batch: the central lists of all classes together may hold
 * an eighth of the live bytes (and CENTRAL_FLOOR), so that they never keep
 * much more than the live set needs; nothing while the arena is being
 * emptied or is an orphan, whose lists no thread refills from and whose
 * every block would pin its chunk: they are merged at once. */
static struct central_tally central_open(struct arena *a)
{
    struct central_tally tally = { 0, 0, 0 };
    if (arena_sparse(a) || arena_orphan(a)) {
        central_flush(a);
        return tally;
    }
    size_t budget = a->used_bytes / 8 > CENTRAL_FLOOR ? a->used_bytes / 8 : CENTRAL_FLOOR;
    tally.room = budget > a->central_bytes ? budget - a->central_bytes : 0;
    return tally;
}

static void central_settle(struct arena *a, const struct central_tally *tally)
{
    counter_sub(&a->used_bytes, tally->bytes);
    counter_sub(&a->used_blocks, tally->blocks);
    counter_add(&a->frees, tally->blocks);
    counter_add(&a->free_bytes, tally->bytes);
    counter_add(&a->central_bytes, tally->bytes);
}

/* The last of count blocks of class cls's central list from first on. */
static struct cache_entry *central_last_of(struct arena *a, unsigned cls, struct cache_entry *first, size_t count)
{
    struct cache_entry *last = first;
    HMM_ASSERT(block_central(a, cls, block_of(first)));
    for (size_t left = count; --left != 0;) {
        last = cached_next(last);
        HMM_ASSERT(last != NULL && block_central(a, cls, block_of(last)));
    }
    return last;
}

/* The last block of what central_take takes: whole runs from the top
 * while they add up to at most twice want, so that no walk looks for a
 * cut inside one; a cut in a run much longer, or in the blocks below the
 * runs, walks to it (idle, whose threads wake to cold lists: a fifth of
 * its time was that walk).  NULL: the whole list.  *taken: how many. */
static struct cache_entry *central_cut(struct arena *a, unsigned cls, size_t want, size_t *taken)
{
    struct central_list *list = &a->central[cls];
    struct cache_entry *last = NULL;
    size_t got = 0;
    while (list->nruns != 0 && got < want && got + list->runs[list->nruns - 1].count <= 2 * want) {
        struct central_run *top = &list->runs[--list->nruns];
        HMM_ASSERT(block_central(a, cls, block_of(top->last)));
        last = top->last;
        got += top->count;
    }
    if (got >= want) {
        *taken = got;
        return last;
    }
    if (list->count <= want) {
        *taken = list->count;
        return NULL;
    }
    *taken = want;
    if (list->nruns == 0)
        return central_last_of(a, cls, last != NULL ? cached_next(last) : list->head, want - got);
    struct central_run *top = &list->runs[list->nruns - 1];
    struct cache_entry *cut = central_last_of(a, cls, top->first, want - got);
    top->first = cached_next(cut);
    top->count -= (uint32_t)(want - got);
    return cut;
}

/* Up to want blocks of class cls (or twice as many, whole runs) off its
 * central list as *out's list (the refill's empty one) in one splice,
 * cached as they lie there (their bytes from the class's units).  How
 * many. */
static size_t central_take(struct arena *a, unsigned cls, struct cache_entry **out, size_t want)
{
    struct central_list *list = &a->central[cls];
    if (list->count == 0 || want == 0)
        return 0;
    struct cache_entry *first = list->head;
    size_t taken;
    struct cache_entry *last = central_cut(a, cls, want, &taken);
    if (taken == list->count) {
        HMM_ASSERT(central_last_of(a, cls, first, taken)->next == NULL);
        list->head = NULL;
        list->nruns = 0;
    } else {
        list->head = list->nruns != 0 ? list->runs[list->nruns - 1].first : cached_next(last);
        HMM_ASSERT(list->head == last->next);
        last->next = NULL;
    }
    *out = first;
    list->count -= (uint32_t)taken;
    size_t bytes = (taken * class_units(cls)) << UNIT_SHIFT;
    counter_sub(&a->central_bytes, bytes);
    counter_sub(&a->free_bytes, bytes);
    counter_add(&a->used_bytes, bytes);
    counter_add(&a->used_blocks, taken);
    counter_add(&a->mallocs, taken);
    return taken;
}

static void handoffs_release(struct arena *a, struct central_tally *tally);

/* Merge every central block with its free neighbours into the bins: before
 * the arena grows, purges or gives chunks back, and when a cache is
 * flushed whole (its thread exits, or its arena is being emptied). */
static void central_flush(struct arena *a)
{
    struct central_tally none = { 0, 0, 0 };
    handoffs_release(a, &none);
    for (unsigned cls = 1; cls < CLASS_COUNT && a->central_bytes != 0; cls++) {
        struct central_list *list = &a->central[cls];
        struct merge_ahead ahead = merge_ahead_start(a, list->head, list->count);
        while (list->head != NULL) {
            struct block *b = block_of(list->head);
            HMM_ASSERT(block_central(a, cls, b));
            list->head = cached_next(list->head);
            merge_ahead_step(a, &ahead);
            block_vet(b);
            counter_sub(&a->central_bytes, (size_t)b->units << UNIT_SHIFT);
            counter_sub(&a->free_bytes, (size_t)b->units << UNIT_SHIFT);
            coalesce_locked(a, b);
        }
        list->count = 0;
        list->nruns = 0;
    }
}

/* A block that left the program: onto its central list, or merged into the
 * bins when the list is full or the arena is being emptied. */
static inline void release_locked(struct arena *a, struct block *b, struct central_tally *tally)
{
    if (!central_push(a, b, tally))
        free_locked(a, b);
}

/* The bytes a chain of blocks handed off whole holds, as its pusher and
 * its taker count them (run_cut cuts only blocks of the class's units). */
static size_t handoff_bytes(const struct handoff *chain)
{
    return chain->count * ((size_t)block_of((void *)chain)->units << UNIT_SHIFT);
}

/* The chain after chain on a stack or queue of chains handed back: its
 * first block's payload holds the link, vetted as a cached block's is. */
static struct handoff *handoff_next(const struct handoff *chain)
{
    return cached_link(chain->next_chain, &chain->entry);
}

/* ---- the index of queued chains (struct handoff_slot), the lock holder's */

static unsigned slot_home(const void *chain)
{
    return (uint32_t)((uintptr_t)chain >> UNIT_SHIFT) * 2654435761u >> (32u - HANDOFF_SLOT_BITS);
}

static unsigned slot_after(unsigned slot)
{
    return (slot + 1u) & (HANDOFF_SLOTS - 1u);
}

/* The slot of the queued chain whose first block's payload is at key, or
 * NULL (a free slot ends each probe: at most HANDOFF_INDEXED are used). */
static struct handoff_slot *index_find(struct arena *a, uintptr_t key)
{
    for (unsigned i = slot_home((void *)key);; i = slot_after(i)) {
        struct handoff_slot *slot = &a->handoff_index[i];
        if ((uintptr_t)slot->chain == key)
            return slot;
        if (slot->chain == NULL)
            return NULL;
    }
}

static void index_add(struct arena *a, struct handoff *chain, struct handoff *pred)
{
    if (a->handoff_indexed >= HANDOFF_INDEXED)
        return;
    unsigned i = slot_home(chain);
    while (a->handoff_index[i].chain != NULL)
        i = slot_after(i);
    a->handoff_index[i] = (struct handoff_slot){ chain, pred };
    a->handoff_indexed++;
}

/* Empty slot and close the gap: each later slot of the probe moves back
 * into it unless its home lies between the gap and it. */
static void index_remove(struct arena *a, struct handoff_slot *slot)
{
    unsigned gap = (unsigned)(slot - a->handoff_index);
    for (unsigned i = slot_after(gap); a->handoff_index[i].chain != NULL; i = slot_after(i)) {
        unsigned home = slot_home(a->handoff_index[i].chain);
        if (((i - home) & (HANDOFF_SLOTS - 1u)) >= ((i - gap) & (HANDOFF_SLOTS - 1u))) {
            a->handoff_index[gap] = a->handoff_index[i];
            gap = i;
        }
    }
    a->handoff_index[gap] = (struct handoff_slot){ NULL, NULL };
    a->handoff_indexed--;
}

/* ---- the queues of chains handed back ---------------------------------- */

/* Class cls's whole stack of chains, off it in one exchange (no ABA, as
 * pushers only add on top), onto the end of its queue oldest first, each
 * indexed with the chain before it. */
static void handoff_queue_stack(struct arena *a, unsigned cls)
{
    struct handoff *stack = __atomic_exchange_n(&a->handoffs[cls], NULL, __ATOMIC_ACQUIRE), *oldest = NULL;
    while (stack != NULL) {
        struct handoff *next = handoff_next(stack);
        stack->next_chain = oldest;
        oldest = stack;
        stack = next;
    }
    while (oldest != NULL) {
        struct handoff *last = a->handoff_queue_last[cls], *next = oldest->next_chain;
        if (last != NULL)
            last->next_chain = oldest;
        else
            a->handoff_queue[cls] = oldest;
        a->handoff_queue_last[cls] = oldest;
        index_add(a, oldest, last);
        oldest = next;
    }
}

/* The queued chain of class cls that the last one taken's follow names,
 * or NULL: its slot.  A neighbour of that class's chain may head a chain
 * of another class. */
static struct handoff_slot *handoff_follower(struct arena *a, unsigned cls)
{
    uintptr_t follow = a->handoff_follow[cls];
    struct handoff_slot *slot = follow != 0 ? index_find(a, follow) : NULL;
    return slot != NULL && block_class(block_of(slot->chain)) == cls ? slot : NULL;
}

/* chain off class cls's queue, with its slot (NULL: not indexed, so it
 * heads the queue); the next chain's slot learns its new pred. */
static void handoff_unlink(struct arena *a, unsigned cls, struct handoff *chain, struct handoff_slot *slot)
{
    struct handoff *pred = slot != NULL ? slot->pred : NULL, *next = handoff_next(chain);
    if (pred != NULL)
        pred->next_chain = next;
    else
        a->handoff_queue[cls] = next;
    if (a->handoff_queue_last[cls] == chain)
        a->handoff_queue_last[cls] = pred;
    struct handoff_slot *after = next != NULL ? index_find(a, (uintptr_t)next) : NULL;
    if (after != NULL)
        after->pred = pred;   /* moves no slot: slot still holds chain */
    if (slot != NULL)
        index_remove(a, slot);
}

/* The chain of class cls a refill takes: the one that goes on from the
 * last one's end if it is queued, else the oldest (the stack joins the
 * queue first, so that a follower just pushed is found). */
static struct handoff *handoff_pop(struct arena *a, unsigned cls)
{
    struct handoff_slot *slot = handoff_follower(a, cls);
    if (slot == NULL && (a->handoff_follow[cls] != 0 || a->handoff_queue[cls] == NULL) &&
        __atomic_load_n(&a->handoffs[cls], __ATOMIC_RELAXED) != NULL) {
        handoff_queue_stack(a, cls);
        slot = handoff_follower(a, cls);
    }
    struct handoff *chain = slot != NULL ? slot->chain : a->handoff_queue[cls];
    if (chain == NULL)
        return NULL;
    if (chain->count == 0 || chain->count > HANDOFF_COUNT_MAX)
        cached_link_broken(&chain->entry);   /* the count after the links, written after free */
    if (slot == NULL)
        slot = index_find(a, (uintptr_t)chain);
    handoff_unlink(a, cls, chain, slot);
    a->handoff_follow[cls] = chain->follow;
    ck_pr_sub_64((uint64_t *)&a->chained_bytes, handoff_bytes(chain));
    counter_add(&a->remote_frees, chain->count);
    return chain;
}

/* A refill of class cls takes a chain another thread gave back and hangs
 * it on the bin as it is: its blocks are cached already, no walk.  The
 * one that follows the last (handoff_pop), else the oldest.  Not the
 * newest: that one holds the blocks the freeing thread touched last,
 * whose lines its core still holds, beside the ones it is freeing now,
 * and every pop waited for a transfer (hmm-bench xmalloc -t 1 took twice
 * mimalloc's time).  How many blocks. */
static size_t handoff_take(struct arena *a, unsigned cls, struct cache_entry **out)
{
    if (a->handoff_queue[cls] == NULL && __atomic_load_n(&a->handoffs[cls], __ATOMIC_RELAXED) == NULL)
        return 0;
    struct handoff *chain = handoff_pop(a, cls);
    if (chain == NULL)
        return 0;
    *out = &chain->entry;
    counter_add(&a->frees, chain->count);
    counter_add(&a->mallocs, chain->count);
    return chain->count;
}

/* Every chain handed off goes to the central lists (or the bins): they
 * held too much for the refills to take, or the arena is being emptied. */
static void handoffs_release(struct arena *a, struct central_tally *tally)
{
    if (__atomic_load_n(&a->chained_bytes, __ATOMIC_RELAXED) == 0)
        return;
    for (unsigned cls = HANDOFF_MIN_CLASS; cls < CLASS_COUNT; cls++)
        for (struct handoff *chain; (chain = handoff_pop(a, cls)) != NULL;)
            for (struct cache_entry *entry = &chain->entry, *next; entry != NULL; entry = next) {
                next = cached_next(entry);
                HMM_ASSERT(block_cached(block_of(entry)));
                release_locked(a, block_of(entry), tally);
            }
}

/* The chains hold more than HANDOFF_BOUND, or any while no thread is
 * bound to refill from them. */
static bool handoffs_due(struct arena *a)
{
    size_t chained = __atomic_load_n(&a->chained_bytes, __ATOMIC_RELAXED);
    return chained >= HANDOFF_BOUND || (chained != 0 && arena_orphan(a));
}

/* Take the whole remote-free stack: cacheable blocks go on the central
 * lists, where the owner's next refill finds them, the rest to the bins;
 * and the chains handed off, when due.  Out of line, so that the check
 * of drain_locked stays a few instructions. */
static HMM_NOINLINE void drain_all(struct arena *a, bool due)
{
    ck_stack_entry_t *entry = ck_stack_batch_pop_upmc(&a->remote);
    __atomic_store_n(&a->remote_pending, 0, __ATOMIC_RELEASE);
    struct central_tally tally = central_open(a);
    if (due)
        handoffs_release(a, &tally);
    size_t drained = 0;
    while (entry != NULL) {
        ck_stack_entry_t *next = entry->next;
        struct block *b = block_of(entry);
        /* A remote block's tag is a valid header's: only its size is left to check. */
        if (!link_readable(entry) || block_state(b) != BLOCK_REMOTE || b->units < MIN_BLOCK_UNITS)
            fatal("free(): corrupted remote-free stack of arena %u at %p", a->id, (void *)entry);
        HMM_ASSERT(block_header_valid(b) && block_linked(b) && block_chunk(b)->arena == a);
        release_locked(a, b, &tally);
        drained++;
        entry = next;
    }
    counter_add(&a->remote_frees, drained);
    central_settle(a, &tally);
}

static void drain_locked(struct arena *a)
{
    bool due = handoffs_due(a);
    if (__atomic_load_n(&a->remote.head, __ATOMIC_ACQUIRE) != NULL || due)
        drain_all(a, due);
}

/* ---- the arena API ------------------------------------------------------ */

/* Under the registry lock; the first arena sets the links' secret, before
 * any link is stored. */
void arena_init(struct arena *a, unsigned id)
{
    if (hmm_link_secret == 0)
        link_secret_init();
    memset(a, 0, sizeof(*a));
    __atomic_store_n(&page_size, region_page_size(), __ATOMIC_RELAXED);
    ck_stack_init(&a->remote);
    a->id = id;
    for (unsigned cls = 1; cls < CLASS_COUNT; cls++)
        a->central[cls].limit = central_limit(cls);
}

void *arena_malloc(struct arena *a, size_t size)
{
    if (size > ((size_t)MAX_UNITS << UNIT_SHIFT) / 2) {
        errno = ENOMEM;
        return NULL;
    }
    spin_lock(&a->lock);
    drain_locked(a);
    struct block *b = alloc_locked(a, units_for(size));
    spin_unlock(&a->lock);
    if (b == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    return block_payload(b);
}

/* Blocks of class cls for a thread cache, linked through their payloads,
 * in state BLOCK_CACHED: up to want from the class's central list (after
 * the remote stack is drained onto it); when it is empty, the newest
 * chain handed back whole, however long; else fresh new ones (fresh <=
 * want).  Returns how many. */
size_t arena_fill(struct arena *a, unsigned cls, struct cache_entry **list, size_t want, size_t fresh)
{
    uint32_t units = class_units(cls);
    struct cache_entry *head = NULL;
    spin_lock(&a->lock);
    drain_locked(a);
    size_t got = central_take(a, cls, &head, want);
    if (got == 0)
        got = handoff_take(a, cls, &head);
    for (fresh = got == 0 ? fresh : 0; got < fresh; got++) {
        struct block *b = alloc_locked(a, units);
        if (b == NULL)
            break;
        b->cls = (uint8_t)cls;
        block_set_state(b, BLOCK_CACHED);
        struct cache_entry *entry = block_payload(b);
        entry->next = head;
        head = entry;
    }
    spin_unlock(&a->lock);
    *list = head;
    return got;
}

void *arena_memalign(struct arena *a, size_t alignment, size_t size)
{
    size_t slack = alignment + ((size_t)MIN_BLOCK_UNITS << UNIT_SHIFT);
    if (size > ((size_t)MAX_UNITS << UNIT_SHIFT) / 2 - slack) {
        errno = ENOMEM;
        return NULL;
    }
    uint32_t units = units_for(size);
    spin_lock(&a->lock);
    drain_locked(a);
    struct block *b = alloc_locked(a, units_for(size + slack));
    if (b == NULL) {
        spin_unlock(&a->lock);
        errno = ENOMEM;
        return NULL;
    }
    uintptr_t payload = (uintptr_t)block_payload(b);
    uintptr_t aligned = (payload + alignment - 1) & ~(uintptr_t)(alignment - 1);
    if (aligned != payload && aligned - payload < ((uintptr_t)MIN_BLOCK_UNITS << UNIT_SHIFT))
        aligned += alignment;
    if (aligned != payload) {
        uint32_t front = (uint32_t)((aligned - payload) >> UNIT_SHIFT);
        struct block *moved = block_of((void *)aligned);
        block_format(moved, b->units - front, front, b->chunk_units + front, BLOCK_INUSE);
        block_next(moved)->prev_units = moved->units;
        b->units = front;
        counter_sub(&a->used_bytes, (size_t)front << UNIT_SHIFT);
        coalesce_locked(a, b);
        b = moved;
    }
    size_t before = b->units;
    block_split(a, b, units, (struct purged_runs){ 0, 0 });
    counter_sub(&a->used_bytes, (before - b->units) << UNIT_SHIFT);
    canary_write(b);
    spin_unlock(&a->lock);
    return block_payload(b);
}

void arena_free(struct arena *a, struct block *b)
{
    spin_lock(&a->lock);
    drain_locked(a);
    free_locked(a, b);
    purge_if_due(a);
    spin_unlock(&a->lock);
}

/* A thread that gives blocks back to an arena not its own pins it from
 * before the push (it holds a block of a then, so a is not empty and
 * cannot be retired) until its last access after: in between another
 * thread's drain may take the blocks, empty an orphan and retire it, and
 * the registry reuses no pinned arena (arena_pinned).  The pin's add comes
 * before the push's release, which the drain's acquire sees. */
static void arena_pin(struct arena *a)
{
    ck_pr_inc_uint(&a->pins);
}

static void arena_unpin(struct arena *a)
{
    __atomic_fetch_sub(&a->pins, 1, __ATOMIC_RELEASE);
}

bool arena_pinned(const struct arena *a)
{
    return __atomic_load_n(&a->pins, __ATOMIC_ACQUIRE) != 0;
}

/* count blocks were pushed on a's remote stack.  Past REMOTE_BOUND pending
 * blocks the freer drains the stack itself if the lock is free, and an
 * orphan's stack is always drained at once. */
static void remote_pushed(struct arena *a, unsigned count)
{
    bool orphan = arena_orphan(a);
    if (ck_pr_faa_uint(&a->remote_pending, count) + count < REMOTE_BOUND && !orphan && !handoffs_due(a))
        return;
    if (orphan)
        spin_lock(&a->lock);
    else if (!spin_trylock(&a->lock))
        return;
    drain_locked(a);
    purge_if_due(a);
    bool empty = a->used_bytes == 0;
    spin_unlock(&a->lock);
    if (empty && orphan)
        __atomic_load_n(&orphan_emptied, __ATOMIC_RELAXED)(a);
}

/* A block of a's freed by a thread not bound to a.  Claim it first, so
 * that of two threads freeing it only one gets through. */
void arena_free_remote(struct arena *a, struct block *b)
{
    if (!ck_pr_cas_16(&b->state, BLOCK_INUSE, BLOCK_REMOTE))
        fatal("free(): double free of %p (block of %zu bytes)", block_payload(b), block_usable(b));
    arena_pin(a);
    ck_stack_push_upmc(&a->remote, (ck_stack_entry_t *)block_payload(b));
    remote_pushed(a, 1);
    arena_unpin(a);
}

/* Push the chain first..last onto a's remote stack in one compare and
 * swap, as ck_stack_push_upmc does for one entry. */
static void remote_push_chain(struct arena *a, struct cache_entry *first, struct cache_entry *last)
{
    ck_stack_entry_t *head = __atomic_load_n(&a->remote.head, __ATOMIC_RELAXED);
    do
        last->next = (struct cache_entry *)head;
    while (!__atomic_compare_exchange_n(&a->remote.head, &head, (ck_stack_entry_t *)first, true,
                                        __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

/* A cached block of class cls travels back to its owner as part of a
 * whole chain: its payload holds a handoff's fields, and no profiler
 * counts the bins. */
static bool class_travels_whole(unsigned cls)
{
    return cls >= HANDOFF_MIN_CLASS && !handoffs_off;
}

/* Blocks of one owner and one class on their way back to it, chained as
 * a cache gives them back: pushed and counted once.  A whole chain stays
 * cached and goes on the class's stack of handoffs, for the owner's next
 * refill to take as it is; the others (the smallest class, whose blocks
 * have no room for a handoff's fields, and all with sampling on) on the
 * remote stack. */
struct remote_chain {
    struct arena *owner;
    struct cache_entry *first, *last;
    unsigned count;
    uint8_t cls;
    bool whole;
    uintptr_t follow;   /* a handoff's (struct handoff) */
};

/* Chain b, a cached block of owner's, if the chain is empty or owner's
 * and of b's class; false for another's block.  The cache owns b, so a
 * store marks it. */
static inline bool chain_add(struct remote_chain *chain, struct arena *owner, struct block *b)
{
    struct cache_entry *entry = block_payload(b);
    if (chain->first == NULL) {
        chain->owner = owner;
        chain->last = entry;
        chain->cls = b->cls;
        chain->whole = class_travels_whole(block_class(b));
    } else if (owner != chain->owner || b->cls != chain->cls) {
        return false;
    }
    if (!chain->whole)
        block_set_state(b, BLOCK_REMOTE);
    entry->next = chain->first;
    chain->first = entry;
    chain->count++;
    return true;
}

/* Whole chains of class cls, first to last linked through next_chain
 * and holding bytes, onto a's stack of handoffs in one compare and swap
 * (the caller pins a); past HANDOFF_BOUND chained, or to an orphan, the
 * pusher collects them as it drains a remote stack. */
static void handoff_push(struct arena *a, unsigned cls, struct handoff *first, struct handoff *last, size_t bytes)
{
    struct handoff **stack = &a->handoffs[cls];
    ck_pr_add_64((uint64_t *)&a->chained_bytes, bytes);   /* before the chains show */
    struct handoff *head = __atomic_load_n(stack, __ATOMIC_RELAXED);
    do
        last->next_chain = head;
    while (!__atomic_compare_exchange_n(stack, &head, first, true, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
    if (handoffs_due(a))
        remote_pushed(a, 0);
}

/* A whole chain's fields, in its first block. */
static struct handoff *handoff_seal(const struct remote_chain *chain)
{
    struct handoff *first = (struct handoff *)chain->first;
    first->count = chain->count;
    first->follow = chain->follow;
    return first;
}

static void chain_push(const struct remote_chain *chain)
{
    if (chain->first == NULL)
        return;
    arena_pin(chain->owner);
    if (chain->whole) {
        struct handoff *first = handoff_seal(chain);
        handoff_push(chain->owner, chain->cls, first, first, handoff_bytes(first));
    } else {
        remote_push_chain(chain->owner, chain->first, chain->last);
        remote_pushed(chain->owner, chain->count);
    }
    arena_unpin(chain->owner);
}

/* A cached block of another arena: on the chain, or on rest when the
 * chain is another owner's. */
static inline void send_foreign(struct remote_chain *chain, struct cache_entry **rest, struct arena *owner,
                                struct block *b)
{
    struct cache_entry *entry = block_payload(b);
    if (chain_add(chain, owner, b))
        return;
    entry->next = *rest;
    *rest = entry;
}

/* Cached blocks of other arenas go to their owners, one chain each. */
static void push_foreign(struct cache_entry *list)
{
    while (list != NULL) {
        struct remote_chain chain = { NULL, NULL, NULL, 0, 0, false, 0 };
        struct cache_entry *rest = NULL;
        while (list != NULL) {
            struct cache_entry *next = cached_next(list);
            send_foreign(&chain, &rest, cached_block_arena(block_of(list)), block_of(list));
            list = next;
        }
        chain_push(&chain);
        list = rest;
    }
}

/* The run off the head of *list (whose first block is another arena's)
 * of blocks of one owner and class, as a whole chain, the first freed
 * first, its follow past the last freed.  How many; 0 when the class does
 * not travel whole. */
static size_t handoff_run(struct arena *mine, struct remote_chain *chain, struct cache_entry **list, size_t left)
{
    struct arena *owner = cached_block_arena(block_of(*list));
    if (owner == mine || !class_travels_whole(block_class(block_of(*list))))
        return 0;
    uint8_t cls = block_of(*list)->cls;
    struct run run = run_cut(list, owner, left, true);
    if (run.count == 0)
        return 0;
    uintptr_t follow = run.lead != 0 ? (uintptr_t)run.first - (uintptr_t)run.lead : 0;
    *chain = (struct remote_chain){ owner, run.last, run.first, (unsigned)run.count, cls, true, follow };
    return run.count;
}

/* Whole chains set aside to push once the lock is dropped, sealed,
 * linked through next_chain in the order they were cut (the last freed
 * first, as a stack holds them). */
struct run_list {
    struct handoff *first, *last;
};

static void handoff_stash(const struct remote_chain *chain, struct run_list *runs)
{
    struct handoff *first = handoff_seal(chain);
    first->next_chain = NULL;
    if (runs->last != NULL)
        runs->last->next_chain = first;
    else
        runs->first = first;
    runs->last = first;
}

/* chain goes on owner's stack of class cls. */
static bool on_stack(struct handoff *chain, struct arena *owner, uint8_t cls)
{
    return block_of(chain)->cls == cls && cached_block_arena(block_of(chain)) == owner;
}

/* Each stretch of the runs that goes to one stack goes on it in one push. */
static void push_runs(struct handoff *runs)
{
    while (runs != NULL) {
        struct arena *owner = cached_block_arena(block_of(runs));
        uint8_t cls = block_of(runs)->cls;
        struct handoff *last = runs;
        size_t bytes = handoff_bytes(runs);
        while (last->next_chain != NULL && on_stack(last->next_chain, owner, cls)) {
            last = last->next_chain;
            bytes += handoff_bytes(last);
        }
        struct handoff *after = last->next_chain;
        arena_pin(owner);
        handoff_push(owner, cls, runs, last, bytes);
        arena_unpin(owner);
        runs = after;
    }
}

/* The rest of a cache's batch, up to left blocks from its first block of
 * another arena on, under mine's lock: the runs off its head whole (all
 * but the last set aside on *runs), then mine's blocks on its central
 * lists and the others chained by owner as they come (a consumer's all to
 * one owner), pushed once mine's lock is dropped.  Out of line: a batch of
 * mine alone pays nothing for the chain.  Returns how many it took. */
static HMM_NOINLINE size_t sort_foreign(struct arena *mine, struct cache_entry **list, size_t left,
                                        struct central_tally *tally, struct remote_chain *chain,
                                        struct cache_entry **rest, struct run_list *runs)
{
    struct remote_chain after = { NULL, NULL, NULL, 0, 0, false, 0 };
    *chain = after;
    size_t taken = handoff_run(mine, chain, list, left), more;
    while (taken != 0 && taken < left && *list != NULL &&
           (more = handoff_run(mine, &after, list, left - taken)) != 0) {
        handoff_stash(chain, runs);
        *chain = after;
        taken += more;
    }
    for (struct cache_entry *entry = *list; entry != NULL && taken < left; taken++) {
        struct cache_entry *next = cached_next(entry);
        struct block *b = block_of(entry);
        struct arena *owner = cached_block_arena(b);
        if (owner == mine)
            release_locked(mine, b, tally);
        else
            send_foreign(chain, rest, owner, b);
        *list = entry = next;
    }
    return taken;
}

/* A thread cache's overflow or flush, in one walk: up to count blocks off
 * the head of *list, which keeps the rest; blocks of the thread's own
 * arena go on its central lists under one lock (or, while it is being
 * emptied, back to the bins); the others to their owners' remote stacks.
 * Returns how many left the list. */
size_t arena_free_cached(struct arena *mine, struct cache_entry **list, size_t count)
{
    struct remote_chain chain;
    struct run_list runs = { NULL, NULL };
    struct cache_entry *rest = NULL, *entry = *list;
    size_t taken = 0;
    spin_lock(&mine->lock);
    struct central_tally tally = central_open(mine);
    taken = central_push_run(mine, &entry, count, &tally);
    struct merge_ahead ahead = merge_ahead_start(mine, entry, count - taken);
    for (; entry != NULL && taken < count && cached_block_arena(block_of(entry)) == mine; taken++) {
        struct cache_entry *next = cached_next(entry);
        merge_ahead_step(mine, &ahead);
        release_locked(mine, block_of(entry), &tally);
        entry = next;
    }
    bool foreign = entry != NULL && taken < count;
    if (foreign)
        taken += sort_foreign(mine, &entry, count - taken, &tally, &chain, &rest, &runs);
    *list = entry;
    central_settle(mine, &tally);
    drain_locked(mine);
    purge_if_due(mine);
    spin_unlock(&mine->lock);
    if (foreign) {
        if (chain.whole)
            handoff_stash(&chain, &runs);
        else
            chain_push(&chain);
        push_runs(runs.first);
        push_foreign(rest);
    }
    return taken;
}

/* The heap profiler's bins hold only blocks counted ahead, so a refill
 * must not take a chain whole: called before any thread binds. */
void arena_handoffs_stop(void)
{
    handoffs_off = true;
}

void arena_merge_central(struct arena *a)
{
    spin_lock(&a->lock);
    central_flush(a);
    spin_unlock(&a->lock);
}

void arena_drain_remote(struct arena *a)
{
    spin_lock(&a->lock);
    drain_locked(a);
    purge_if_due(a);
    spin_unlock(&a->lock);
}

/* A block alone in a dedicated chunk grows with its chunk: the region
 * extends the chunk in place and the fence moves to the new end. */
static void dedicated_grow(struct arena *a, struct block *b, uint32_t units)
{
    struct chunk *c = block_chunk(b);
    size_t old = c->size;
    if (!block_spans_chunk(b) || !chunk_dedicated(c) ||
        !region_grow_chunk(c, chunk_need(units)))
        return;
    counter_add(&a->chunk_bytes, c->size - old);
    ck_pr_add_64(&held_bytes, c->size - old);
    b->units = (uint32_t)((c->size - CHUNK_HEADER - BLOCK_HEADER) >> UNIT_SHIFT);
    block_format(chunk_fence(c), 0, b->units, (uint32_t)((c->size - BLOCK_HEADER) >> UNIT_SHIFT),
                 BLOCK_FENCE);
}

/* Grow or shrink b in place to hold size bytes; false when it cannot. */
bool arena_resize(struct arena *a, struct block *b, size_t size)
{
    if (size > ((size_t)MAX_UNITS << UNIT_SHIFT) / 2)
        return false;
    uint32_t units = units_for(size);
    if (units < b->units - block_slack_units(b) && chunk_dedicated(block_chunk(b)))
        return false;
    spin_lock(&a->lock);
    uint32_t before = b->units;
    struct block *above = block_next(b);
    if (units > before && block_state(above) == BLOCK_FREE && before + above->units >= units) {
        bin_remove(a, above);
        b->units += above->units;
        block_set_state(above, 0);
        block_next(b)->prev_units = b->units;
    }
    if (units > b->units)
        dedicated_grow(a, b, units);
    bool done = b->units >= units;
    if (done) {
        block_split(a, b, units, (struct purged_runs){ 0, 0 });
        slack_mark(a, b, units);
        b->cls = 0;
        canary_write(b);
    }
    counter_add(&a->used_bytes, ((size_t)b->units - before) << UNIT_SHIFT);
    spin_unlock(&a->lock);
    return done;
}

/* b, just allocated alone in its dedicated chunk, holds size bytes: the rest
 * of the chunk is slack, a reserve that its growth takes in place. */
void arena_hold(struct block *b, size_t size)
{
    struct arena *a = block_chunk(b)->arena;
    spin_lock(&a->lock);
    slack_mark(a, b, units_for(size));
    spin_unlock(&a->lock);
}

/* Give back the spare and every wholly free chunk; returns bytes released. */
size_t arena_release(struct arena *a, bool keep_spare)
{
    size_t released = 0;
    spin_lock(&a->lock);
    drain_locked(a);
    central_flush(a);
    struct chunk *c = a->chunks;
    while (c != NULL) {
        struct chunk *next = c->next;
        if (chunk_wholly_free(c) && !(keep_spare && c == a->spare)) {
            released += c->size;
            chunk_release(a, c, true);
        }
        c = next;
    }
    spin_unlock(&a->lock);
    return released;
}

/* An arena whose chunks hold far more than its live blocks (counted
 * without the lock: a hint) is being emptied. */
bool arena_sparse(const struct arena *a)
{
    size_t used = counter_read(&a->used_bytes), held = counter_read(&a->chunk_bytes);
    return held > used + SPARSE_SLACK && used < held / SPARSE_RATIO;
}

/* Of an orphan: what its thread's last drain parked on the central lists
 * after the thread flushed its cache is merged too. */
bool arena_empty(struct arena *a)
{
    spin_lock(&a->lock);
    drain_locked(a);
    central_flush(a);
    bool empty = a->used_bytes == 0;
    spin_unlock(&a->lock);
    return empty;
}

/* Give the whole pages inside free blocks back to the kernel: the chunks
 * stay, their resident size shrinks.  For malloc_trim and the maintenance
 * thread.  Returns the bytes purged. */
size_t arena_purge(struct arena *a)
{
    spin_lock(&a->lock);
    drain_locked(a);
    central_flush(a);
    size_t purged = purge_locked(a, 0, 0);
    spin_unlock(&a->lock);
    return purged;
}

/* ---- the checker -------------------------------------------------------- */

static int block_check(struct arena *a, struct chunk *c, struct block *b, struct block *below,
                       size_t *used, size_t *used_blocks)
{
    uint16_t state = block_state(b);
    if (!block_header_valid(b) || block_chunk(b) != c)
        return warn("hmm_check: arena %u: block header at %p is broken", a->id, (void *)b), -1;
    if (b->prev_units != (below ? block_units_seen(below) : 0u))
        return warn("hmm_check: arena %u: block %p does not know the block below it", a->id,
                    block_payload(b)), -1;
    if (state == BLOCK_FREE && below && block_state(below) == BLOCK_FREE)
        return warn("hmm_check: arena %u: free blocks %p and %p are adjacent", a->id,
                    block_payload(below), block_payload(b)), -1;
    if (state != BLOCK_FREE && state != BLOCK_INUSE && state != BLOCK_CACHED && state != BLOCK_REMOTE)
        return warn("hmm_check: arena %u: block %p has unknown state 0x%x", a->id,
                    block_payload(b), (unsigned)state), -1;
    if (state != BLOCK_FREE) {   /* the central lists' are taken off in arena_check */
        *used += (size_t)block_units_seen(b) << UNIT_SHIFT;
        (*used_blocks)++;
    }
    return 0;
}

static int chunk_check(struct arena *a, struct chunk *c, size_t *used, size_t *used_blocks,
                       size_t *free_blocks)
{
    if (!chunk_valid(c) || c->arena != a || c->state != CHUNK_ARENA || map_lookup(c) != c)
        return warn("hmm_check: arena %u: chunk %p has a broken header", a->id, (void *)c), -1;
    struct block *below = NULL, *b = chunk_first_block(c), *fence = chunk_fence(c);
    while (b < fence) {
        if (block_check(a, c, b, below, used, used_blocks) != 0)
            return -1;
        *free_blocks += block_state(b) == BLOCK_FREE;
        below = b;
        b = block_next_seen(b);
    }
    if (b != fence || block_state(fence) != BLOCK_FENCE ||
        fence->prev_units != (below ? block_units_seen(below) : 0u))
        return warn("hmm_check: arena %u: blocks of chunk %p do not add up to it", a->id, (void *)c), -1;
    return 0;
}

static int bins_check(struct arena *a, unsigned use, size_t *binned)
{
    struct bin_set *set = &a->sets[use];
    for (unsigned i = 0; i < BIN_COUNT; i++) {
        bool bit = (set->bitmap[i / 64] >> (i % 64)) & 1;
        if (bit != (set->bins[i] != NULL))
            return warn("hmm_check: arena %u: bitmap disagrees with bin %u", a->id, i), -1;
        for (struct block *b = set->bins[i]; b != NULL; b = free_next(b), (*binned)++)
            if (!free_block_at(b) || bin_index(b->units) != i || block_set(a, b) != set ||
                chunk_dedicated(block_chunk(b)))
                return warn("hmm_check: arena %u: block %p in bin %u is not a free block of its size",
                            a->id, block_payload(b), i), -1;
    }
    return 0;
}

/* The runs a central list remembers start and end where they say, each
 * as many blocks long as it counts, the top one first. */
static int central_runs_check(struct arena *a, unsigned cls)
{
    const struct central_list *list = &a->central[cls];
    const struct cache_entry *e = list->head;
    for (uint32_t run = list->nruns; run-- != 0;) {
        const struct central_run *r = &list->runs[run];
        bool starts = e == r->first;
        for (uint32_t left = r->count; left > 1 && e != NULL; left--)
            e = e->next;
        if (r->count == 0 || !starts || e == NULL || e != r->last)
            return warn("hmm_check: arena %u: run %u of central list %u is not its %u blocks from %p to %p",
                        a->id, run, cls, r->count, (void *)r->first, (void *)r->last), -1;
        e = e->next;
    }
    return 0;
}

/* Each central list holds as many cached blocks of its class, of this
 * arena, as it counts, and their bytes add up to central_bytes. */
static int central_check(struct arena *a, size_t *listed)
{
    size_t bytes = 0;
    for (unsigned cls = 0; cls < CLASS_COUNT; cls++) {
        uint32_t count = 0;
        for (struct cache_entry *e = a->central[cls].head; e != NULL && count <= a->central[cls].limit;
             e = e->next, count++) {
            struct block *b = block_of(e);
            if (map_lookup(b) == NULL || block_chunk(b)->arena != a || block_state(b) != BLOCK_CACHED ||
                block_class(b) != cls || !block_class_valid(b) || b->units != class_units(cls))
                return warn("hmm_check: arena %u: block %p on central list %u is not a central block "
                            "of its class", a->id, (void *)e, cls), -1;
            bytes += (size_t)b->units << UNIT_SHIFT;
        }
        if (central_runs_check(a, cls) != 0)
            return -1;
        if (count != a->central[cls].count)
            return warn("hmm_check: arena %u: central list %u holds %u blocks, counts %u", a->id, cls,
                        count, a->central[cls].count), -1;
        *listed += count;
    }
    if (bytes != a->central_bytes)
        return warn("hmm_check: arena %u: central blocks add up to %zu bytes, the arena counts %zu",
                    a->id, bytes, a->central_bytes), -1;
    return 0;
}

/* Each class's queue of chains handed back holds cached blocks of the
 * class, of this arena, and ends at its last; each chain the index holds
 * is queued, after the chain its slot names. */
static int handoffs_check(struct arena *a)
{
    unsigned indexed = 0;
    size_t most = __atomic_load_n(&a->chained_bytes, __ATOMIC_RELAXED) / class_size(HANDOFF_MIN_CLASS);
    for (unsigned cls = HANDOFF_MIN_CLASS; cls < CLASS_COUNT; cls++) {
        struct handoff *pred = NULL;
        size_t walked = 0;
        for (struct handoff *chain = a->handoff_queue[cls]; chain != NULL && walked <= most;
             pred = chain, chain = chain->next_chain, walked++) {
            struct block *b = block_of(chain);
            if (map_lookup(b) == NULL || block_chunk(b)->arena != a || block_state(b) != BLOCK_CACHED ||
                block_class(b) != cls)
                return warn("hmm_check: arena %u: chain %p queued for class %u is not a cached block of it",
                            a->id, (void *)chain, cls), -1;
            struct handoff_slot *slot = index_find(a, (uintptr_t)chain);
            if (slot != NULL && slot->pred != pred)
                return warn("hmm_check: arena %u: the index has chain %p after %p, its queue after %p", a->id,
                            (void *)chain, (void *)slot->pred, (void *)pred), -1;
            indexed += slot != NULL;
        }
        if (walked > most || pred != a->handoff_queue_last[cls])
            return warn("hmm_check: arena %u: the queue of chains of class %u does not end at its last, %p",
                        a->id, cls, (void *)a->handoff_queue_last[cls]), -1;
    }
    if (indexed != a->handoff_indexed)
        return warn("hmm_check: arena %u: %u queued chains are indexed, the index counts %u", a->id, indexed,
                    a->handoff_indexed), -1;
    return 0;
}

/* Every chunk tiled by valid blocks, the bins holding exactly the free
 * blocks, the central lists exactly the central ones, the queues of
 * chains as their index has them, and the used bytes adding up. */
int arena_check(struct arena *a)
{
    size_t used = 0, used_blocks = 0, free_blocks = 0, binned = 0, listed = 0;
    int broken = 0;
    spin_lock(&a->lock);
    for (struct chunk *c = a->chunks; c != NULL && !broken; c = c->next)
        broken = chunk_check(a, c, &used, &used_blocks, &free_blocks);
    for (unsigned use = 0; use < BIN_SETS && !broken; use++)
        broken = bins_check(a, use, &binned);
    if (!broken && binned != free_blocks) {
        warn("hmm_check: arena %u: %zu free blocks but %zu in bins", a->id, free_blocks, binned);
        broken = -1;
    }
    if (!broken)
        broken = central_check(a, &listed);
    if (!broken)
        broken = handoffs_check(a);
    /* the walk counted the central lists' cached blocks as used: they are free */
    if (!broken && (used - a->central_bytes != a->used_bytes || used_blocks - listed != a->used_blocks)) {
        warn("hmm_check: arena %u: %zu blocks in use add up to %zu bytes, the arena counts %zu in %zu",
             a->id, used_blocks - listed, used - a->central_bytes, a->used_bytes, a->used_blocks);
        broken = -1;
    }
    spin_unlock(&a->lock);
    return broken;
}
