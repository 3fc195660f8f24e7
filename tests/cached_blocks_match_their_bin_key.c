/* Every block the thread cache hands out matches its bin's key, so that its
 * free takes the fast path: the key (internal.h) is computed from the class
 * in cache.c, the block is cut in arena.c, and if the two drift apart every
 * free silently takes the slow path.  For each cached class, a few blocks
 * of exactly the class's size and of one byte more than the class below:
 * the header's first word must equal the class's key or key_long, and the
 * block must be in use, in the sbrk heap, with the class in its header. */
#include "config.h"

#include "hmm.h"
#include "internal.h"
#include "testutil.h"

static void check_block(void *p, size_t size)
{
    CHECK(p != NULL, "malloc(%zu)", size);
    struct block *b = block_of(p);
    unsigned cls = size_class(size);
    CHECK(heap_holds_header(p), "malloc(%zu) = %p is outside the published heap", size, p);
    CHECK(block_state(b) == BLOCK_INUSE && block_class(b) == cls, "malloc(%zu): state %#x, class %u",
          size, block_state(b), block_class(b));
    uint64_t key = hmm_thread_cache.keys[cls], key_long = hmm_thread_cache.keys_long[cls];
    CHECK(b->key == key || b->key == key_long,
          "malloc(%zu): header key %#llx, bin keys %#llx %#llx (units %u, class_units %u)", size,
          (unsigned long long)b->key, (unsigned long long)key, (unsigned long long)key_long,
          b->units, class_units(cls));
}

int main(void)
{
    void *held[CLASS_COUNT][4];
    for (unsigned cls = 1; cls < CLASS_COUNT; cls++) {
        size_t size = class_size(cls), smallest = class_size(cls - 1) + 1;
        for (int i = 0; i < 4; i++) {
            held[cls][i] = hmm_malloc(i % 2 ? size : smallest);
            check_block(held[cls][i], i % 2 ? size : smallest);
        }
    }
    for (unsigned cls = 1; cls < CLASS_COUNT; cls++)
        for (int i = 0; i < 4; i++)
            hmm_free(held[cls][i]);
    printf("%u classes: every block matches its bin's key\n", CLASS_COUNT - 1);
    return 0;
}
