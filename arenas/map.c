/* Which chunk covers an address: a two-level radix map over the 48-bit
 * address space at GRANULE granularity.  Writers own the granules they set
 * (a chunk is granted or released under the region lock; a huge mapping
 * belongs to one thread); readers need no lock. */
#include "internal.h"

#define ADDRESS_BITS 48
#define INDEX_BITS (ADDRESS_BITS - GRANULE_SHIFT)
#define LEAF_BITS 14
#define ROOT_BITS (INDEX_BITS - LEAF_BITS)
#define LEAF_ENTRIES ((size_t)1 << LEAF_BITS)

struct map_leaf {
    struct chunk *chunk[LEAF_ENTRIES];
};

static struct map_leaf *map_root[(size_t)1 << ROOT_BITS];

static struct map_leaf *leaf_for(uintptr_t index, bool create)
{
    struct map_leaf **slot = &map_root[index >> LEAF_BITS];
    struct map_leaf *leaf = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (leaf != NULL || !create)
        return leaf;
    struct map_leaf *fresh = os_map_node(sizeof(struct map_leaf));
    if (fresh == NULL)
        return NULL;
    if (!ck_pr_cas_ptr(slot, NULL, fresh)) {
        os_unmap(fresh, sizeof(struct map_leaf));
        return __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    }
    return fresh;
}

/* A granule is recorded for one chunk at a time: cleared before another
 * chunk covers it. */
static inline bool entry_free_for(struct chunk **entry, const struct chunk *chunk)
{
    struct chunk *now = __atomic_load_n(entry, __ATOMIC_RELAXED);
    return now == NULL || now == chunk;
}

static void map_store(struct chunk *chunk, struct chunk *value)
{
    uintptr_t first = (uintptr_t)chunk >> GRANULE_SHIFT;
    uintptr_t end = first + (chunk->size >> GRANULE_SHIFT);
    HMM_ASSERT(chunk_valid(chunk));
    for (uintptr_t index = first; index < end; index++) {
        struct map_leaf *leaf = leaf_for(index, false);
        if (leaf == NULL)
            continue;
        HMM_ASSERT(entry_free_for(&leaf->chunk[index & (LEAF_ENTRIES - 1)], chunk));
        __atomic_store_n(&leaf->chunk[index & (LEAF_ENTRIES - 1)], value, __ATOMIC_RELEASE);
    }
}

/* Make sure every leaf over [addr, addr + size) exists, so that a map_set
 * there cannot fail. */
bool map_prepare(const void *addr, size_t size)
{
    uintptr_t first = (uintptr_t)addr >> GRANULE_SHIFT;
    uintptr_t end = first + ((size + GRANULE - 1) >> GRANULE_SHIFT);
    if ((uintptr_t)addr + size > ((uintptr_t)1 << ADDRESS_BITS))
        return false;
    for (uintptr_t index = first; index < end; index = (index | (LEAF_ENTRIES - 1)) + 1)
        if (leaf_for(index, true) == NULL)
            return false;
    return true;
}

/* Every leaf first, so a failure leaves nothing half set. */
bool map_set(struct chunk *chunk)
{
    if (!map_prepare(chunk, chunk->size))
        return false;
    map_store(chunk, chunk);
    return true;
}

void map_clear(struct chunk *chunk)
{
    map_store(chunk, NULL);
}

struct chunk *map_lookup(const void *addr)
{
    uintptr_t index = (uintptr_t)addr >> GRANULE_SHIFT;
    if (index >> INDEX_BITS)
        return NULL;
    struct map_leaf *leaf = leaf_for(index, false);
    if (leaf == NULL)
        return NULL;
    return __atomic_load_n(&leaf->chunk[index & (LEAF_ENTRIES - 1)], __ATOMIC_ACQUIRE);
}
