/* Huge blocks: above the mmap threshold a block is its own mapping, aligned
 * to a granule so the chunk map knows it.  The mapping starts with a chunk
 * header (state CHUNK_HUGE); the payload starts a page (or the alignment, at
 * most a granule) in, right after its block header.  The free fast path
 * never reads that header: it lies outside the sbrk heap.  For an alignment
 * above the granule the mapping starts a granule below a multiple of it.
 * Every huge block is a fresh mapping, already zero, which calloc counts
 * on.  Its usable bytes are what it asked for, rounded to a unit; the
 * slack after them (to the mapping's end) starts with a canary, which its
 * free and realloc check (huge_slack_intact).  The last few freed
 * payloads are remembered to name a double free.
 * realloc moves the pages with mremap instead of copying them (a moved
 * block keeps only granule alignment). */
#include "internal.h"

#include <errno.h>

#define FREED_RING 64

static uint64_t huge_count, huge_bytes, huge_usable_bytes;
static uintptr_t freed_payload[FREED_RING];
static size_t freed_size[FREED_RING];
static unsigned freed_next;

static size_t payload_offset(size_t alignment)
{
    if (alignment > GRANULE)
        return GRANULE;
    return alignment > os_page_size() ? alignment : os_page_size();
}

/* Only the slack the placement needs is reserved, and it is cut off: a
 * 1 GiB alignment does not keep a gigabyte mapped. */
static struct chunk *map_huge(size_t map_size, size_t alignment)
{
    if (alignment <= GRANULE)
        return os_map_aligned(map_size, GRANULE);
    return os_map_placed(map_size, alignment, GRANULE);
}

/* Whole granules holding the headers and at least a unit of payload. */
static size_t mapping_size(size_t offset, size_t size)
{
    if (size > SIZE_MAX / 2 - offset - GRANULE)
        return 0;
    if (size < UNIT)
        size = UNIT;
    return (offset + size + GRANULE - 1) & ~(GRANULE - 1);
}

static void *huge_format(struct chunk *c, size_t map_size, size_t offset, size_t size)
{
    c->magic = CHUNK_MAGIC ^ (uintptr_t)c;
    c->size = map_size;
    c->prev_size = 0;
    c->arena = NULL;
    c->next = c->prev = NULL;
    c->state = CHUNK_HUGE;
    c->flags = CHUNK_MAPPED;
    c->huge_size = size;
    struct block *b = (struct block *)((char *)c + offset - BLOCK_HEADER);
    block_format(b, 0, 0, (uint32_t)((offset - BLOCK_HEADER) >> UNIT_SHIFT), BLOCK_HUGE);
    return block_payload(b);
}

static size_t block_offset(const struct block *b)
{
    return ((size_t)b->chunk_units << UNIT_SHIFT) + BLOCK_HEADER;
}

#define SLACK_BYTE 0x5c

size_t huge_usable(struct chunk *c, struct block *b)
{
    (void)b;
    size_t size = c->huge_size < UNIT ? UNIT : c->huge_size;   /* as mapping_size */
    return (size + UNIT - 1) & ~(size_t)(UNIT - 1);
}

/* The canary after the usable bytes, where the mapping has room for it. */
static uint64_t *slack_canary(struct chunk *c, struct block *b)
{
    size_t end = block_offset(b) + huge_usable(c, b);
    return end + UNIT <= c->size ? (uint64_t *)((char *)c + end) : NULL;
}

static void slack_mark(struct chunk *c, struct block *b)
{
    uint64_t *canary = slack_canary(c, b);
    if (canary != NULL)
        canary[0] = canary[1] = 0x0101010101010101ull * SLACK_BYTE;
}

bool huge_slack_intact(struct chunk *c, struct block *b)
{
    uint64_t *canary = slack_canary(c, b), intact = 0x0101010101010101ull * SLACK_BYTE;
    return canary == NULL || (canary[0] == intact && canary[1] == intact);
}

void *huge_malloc(size_t size, size_t alignment)
{
    size_t offset = payload_offset(alignment);
    size_t map_size = mapping_size(offset, size);
    struct chunk *c = map_size ? map_huge(map_size, alignment) : NULL;
    if (c == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    void *payload = huge_format(c, map_size, offset, size);
    if (!map_set(c)) {
        os_unmap(c, map_size);
        errno = ENOMEM;
        return NULL;
    }
    slack_mark(c, block_of(payload));
    ck_pr_inc_64(&huge_count);
    ck_pr_add_64(&huge_bytes, map_size);
    ck_pr_add_64(&huge_usable_bytes, huge_usable(c, block_of(payload)));
    return payload;
}

static void remember_freed(void *payload, size_t size)
{
    unsigned slot = ck_pr_faa_uint(&freed_next, 1) % FREED_RING;
    __atomic_store_n(&freed_size[slot], size, __ATOMIC_RELAXED);
    __atomic_store_n(&freed_payload[slot], (uintptr_t)payload, __ATOMIC_RELEASE);
}

/* The size of a huge block recently unmapped at payload, or 0. */
size_t huge_recently_freed(const void *payload)
{
    for (unsigned slot = 0; slot < FREED_RING; slot++)
        if (__atomic_load_n(&freed_payload[slot], __ATOMIC_ACQUIRE) == (uintptr_t)payload)
            return __atomic_load_n(&freed_size[slot], __ATOMIC_RELAXED);
    return 0;
}

void huge_free(struct chunk *c, struct block *b)
{
    remember_freed(block_payload(b), c->huge_size);
    size_t size = c->size;
    map_clear(c);
    c->magic = 0;
    ck_pr_dec_64(&huge_count);
    ck_pr_sub_64(&huge_bytes, size);
    ck_pr_sub_64(&huge_usable_bytes, huge_usable(c, b));
    os_unmap(c, size);
}

/* Move the pages to a fresh aligned place whose chunk map leaves exist,
 * both made first, so that a failure leaves the block where it was. */
static struct chunk *huge_move(struct chunk *c, size_t old_size, size_t map_size)
{
    void *target = os_map_aligned(map_size, GRANULE);
    if (target == NULL)
        return NULL;
    if (!map_prepare(target, map_size)) {
        os_unmap(target, map_size);
        return NULL;
    }
    return os_remap_onto(c, old_size, map_size, target) ? target : NULL;
}

/* Resize in place when the kernel can, else move the pages.  The map's
 * leaves for either place exist before the old entries are cleared. */
void *huge_realloc(struct chunk *c, struct block *b, size_t size)
{
    size_t offset = block_offset(b), old_size = c->size;
    size_t map_size = mapping_size(offset, size);
    if (map_size == 0 || !map_prepare(c, map_size)) {
        errno = ENOMEM;
        return NULL;
    }
    if (map_size != old_size) {
        map_clear(c);
        struct chunk *moved = c;
        if (!os_remap_in_place(c, old_size, map_size))
            moved = huge_move(c, old_size, map_size);
        if (moved == NULL) {
            map_set(c);
            errno = ENOMEM;
            return NULL;
        }
        c = moved;
        c->magic = CHUNK_MAGIC ^ (uintptr_t)c;
        c->size = map_size;
        if (!map_set(c))
            fatal("realloc(): cannot record the moved huge block at %p", (void *)c);
        ck_pr_add_64(&huge_bytes, map_size - old_size);
    }
    struct block *moved = (struct block *)((char *)c + offset - BLOCK_HEADER);
    ck_pr_sub_64(&huge_usable_bytes, huge_usable(c, moved));
    c->huge_size = size;
    ck_pr_add_64(&huge_usable_bytes, huge_usable(c, moved));
    slack_mark(c, moved);
    return (char *)c + offset;
}

/* For diagnostics: the payload of the huge block mapped at c, found by
 * trying each offset payload_offset gives, lowest first (the bytes below
 * the real header are zero), or NULL. */
void *huge_payload(struct chunk *c)
{
    for (size_t offset = os_page_size(); offset <= GRANULE; offset *= 2) {
        struct block *b = (struct block *)((char *)c + offset - BLOCK_HEADER);
        if (block_state(b) == BLOCK_HUGE && block_chunk(b) == c)
            return block_payload(b);
    }
    return NULL;
}

void huge_stats(size_t *count, size_t *bytes, size_t *usable)
{
    *count = __atomic_load_n(&huge_count, __ATOMIC_ACQUIRE);
    *bytes = __atomic_load_n(&huge_bytes, __ATOMIC_ACQUIRE);
    *usable = __atomic_load_n(&huge_usable_bytes, __ATOMIC_ACQUIRE);
}
