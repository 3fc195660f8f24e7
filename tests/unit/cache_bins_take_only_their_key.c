/* The thread cache's fast paths: a bound cache's bin takes back (push) an
 * in-use block of its class and hands it out again (pop, last in first
 * out); it refuses a block whose header does not match its key (a double
 * free, an overwritten size or class) and a pointer outside the sbrk
 * heap; and it takes no more blocks than it has room for: a full bin
 * sends half back to the arena before it takes the next. */
#include "internal.h"
#include "testutil.h"

static struct arena owner;

int main(void)
{
    arena_init(&owner, 1);
    owner.threads = 1;
    CHECK(cache_pop(32) == NULL, "an unbound cache hands out a block");
    cache_bind(&hmm_thread_cache, &owner);
    CHECK(cache_bound(), "cache_bind did not bind the cache");
    void *p = cache_fill(&hmm_thread_cache, 32);
    CHECK(p != NULL, "cache_fill failed");
    struct block *b = block_of(p);
    CHECK(block_state(b) == BLOCK_INUSE && block_class(b) == size_class(32), "the block is not an in-use class-2 block");

    CHECK(cache_push(p), "the bin refused its own class's block");
    CHECK(block_state(b) == BLOCK_CACHED, "a pushed block is not marked cached");
    CHECK(!cache_push(p), "a double free was taken into the bin");
    CHECK(cache_pop(32) == p, "the bin did not hand back the block it took last");
    CHECK(block_state(b) == BLOCK_INUSE, "a popped block is not marked in use");

    b->units += 2;
    CHECK(!cache_push(p), "a block with an overwritten size was taken");
    b->units -= 2;
    b->cls = (uint8_t)size_class(48);
    CHECK(!cache_push(p), "a block with another class was taken");
    for (unsigned forged = CLASS_COUNT; forged < CACHE_KEYS; forged++) {
        b->cls = (uint8_t)forged;
        CHECK(!cache_push(p), "a block with class %u, past the classes, was taken", forged);
    }
    b->cls = (uint8_t)size_class(32);
    long on_stack[4] = { 0 };
    CHECK(!cache_push(&on_stack[2]), "a pointer outside the heap was taken");

    unsigned cls = size_class(32);
    intptr_t room = hmm_thread_cache.rooms[cls];
    CHECK(room > 0 && room <= (intptr_t)cache_limit(&hmm_thread_cache, size_class(32)), "room %zd", room);
    struct cache_entry *fresh;
    arena_fill(&owner, size_class(32), &fresh, (size_t)room, (size_t)room);
    for (intptr_t i = 0; i < room; i++) {
        CHECK(fresh != NULL, "arena_fill gave %zd blocks, not %zd", i, room);
        struct cache_entry *next = fresh->next;
        block_set_state(block_of(fresh), BLOCK_INUSE);
        CHECK(cache_push(fresh), "push %zd of %zd refused", i, room);
        fresh = next;
    }
    CHECK(cache_push(p), "a full bin did not make room for one more block");
    size_t held = 0;
    for (struct cache_entry *e = hmm_thread_cache.heads[cls]; e != NULL; e = e->next)
        held++;
    uint32_t limit = cache_limit(&hmm_thread_cache, cls);
    room = hmm_thread_cache.rooms[cls];
    CHECK(hmm_thread_cache.heads[cls] == (struct cache_entry *)p && room >= 0 && held + (size_t)room == limit,
          "a full bin took a block without sending some back: %zu held, room %zd", held, room);
    return 0;
}
