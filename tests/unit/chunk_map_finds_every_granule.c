/* The chunk map: a chunk set in it is found from every address of every
 * granule it covers and from none outside; cleared, from none; an address
 * beyond 48 bits is never a chunk; and a leaf that cannot be mapped makes
 * map_prepare fail (os.c failure injection) without harm. */
#include "internal.h"
#include "testutil.h"

int main(void)
{
    size_t size = 3 * GRANULE;
    struct chunk *c = os_map_aligned(size, GRANULE);
    CHECK(c != NULL, "no aligned mapping for the chunk");
    c->magic = CHUNK_MAGIC ^ (uintptr_t)c;
    c->size = size;
    c->state = CHUNK_ARENA;
    CHECK(map_lookup(c) == NULL, "an unset chunk is found");

    CHECK(map_set(c), "map_set failed");
    for (size_t offset = 0; offset < size; offset += GRANULE / 4)
        CHECK(map_lookup((char *)c + offset) == c, "offset %zu of the chunk is not found", offset);
    CHECK(map_lookup((char *)c + size - 1) == c, "the chunk's last byte is not found");
    CHECK(map_lookup((char *)c - 1) == NULL, "the byte below the chunk is found");
    CHECK(map_lookup((char *)c + size) == NULL, "the byte above the chunk is found");
    CHECK(map_lookup((void *)((uintptr_t)1 << 48)) == NULL, "an address beyond 48 bits is found");
    CHECK(map_lookup((void *)UINTPTR_MAX) == NULL, "the last address is found");

    map_clear(c);
    for (size_t offset = 0; offset < size; offset += GRANULE / 4)
        CHECK(map_lookup((char *)c + offset) == NULL, "offset %zu is found after map_clear", offset);

    /* Far from every leaf made so far: the next leaf's mapping fails. */
    void *far = (void *)((uintptr_t)c ^ ((uintptr_t)1 << 46));
    hmm_test_os_fail(OS_MAP_NODE, 0, 1);
    CHECK(!map_prepare(far, GRANULE), "map_prepare succeeded without its leaf");
    CHECK(map_lookup(far) == NULL, "a failed map_prepare left a chunk behind");
    CHECK(map_prepare(far, GRANULE), "map_prepare failed once mappings work again");
    os_unmap(c, size);
    return 0;
}
