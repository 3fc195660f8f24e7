/* A thread that frees and mallocs a few blocks of a large class in turn
 * (sizes up to 64 KiB, as a random mix of sizes does) soon finds them in
 * its cache: a bin of a large class, which a sixteenth of the cache budget
 * holds one or two of, grows to CACHE_CLASS_MIN blocks once it overflowed
 * and then ran empty, out of an allowance of its own, so that the growth
 * of small classes is not spent on it.  Before, the growth allowance of all
 * classes (a sixteenth of the budget) let one large class double once, and
 * every other malloc or free of the class went to the arena.  The bin
 * still holds no more than its limit, and a flush of the cache shrinks it
 * back.
 *
 * Test build (libhmm_test): reads the cache and the arena through
 * internal.h. */
#include "config.h"

#include "hmm.h"
#include "internal.h"
#include "testutil.h"

#define HELD 8
#define ROUNDS 6

static void *held[HELD];

static size_t arena_mallocs(void)
{
    return counter_read(&hmm_thread_cache.arena->mallocs);
}

/* Free n blocks of size, then malloc n again; the blocks the arena
 * handed out for the second half. */
static size_t cycle(size_t size, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hmm_free(held[i]);
    size_t before = arena_mallocs();
    for (size_t i = 0; i < n; i++)
        CHECK((held[i] = hmm_malloc(size)) != NULL, "malloc(%zu)", size);
    return arena_mallocs() - before;
}

static void check_size(size_t size)
{
    unsigned cls = size_class(size);
    for (size_t i = 0; i < HELD; i++)
        CHECK((held[i] = hmm_malloc(size)) != NULL, "malloc(%zu)", size);
    size_t fetched = 0;
    for (int round = 0; round < ROUNDS; round++)
        fetched = cycle(size, CACHE_CLASS_MIN);
    uint32_t limit = cache_limit(&hmm_thread_cache, cls);
    CHECK(fetched == 0, "size %zu, round %d: %zu of %u blocks came from the arena (class limit %u)", size, ROUNDS,
          fetched, CACHE_CLASS_MIN, limit);
    size_t before = cached_bytes();
    for (size_t i = 0; i < HELD; i++)
        hmm_free(held[i]);
    size_t cached = cached_bytes() - before;
    CHECK(cached <= limit * class_size(cls), "size %zu: %zu bytes cached after %d frees (limit %u blocks)", size,
          cached, HELD, limit);
    CHECK(hmm_thread_cache.grown_large_bytes <= hmm_thread_cache.budget * CACHE_LARGE_GROWTH_BUDGETS,
          "large classes grew by %zu bytes, past their allowance", hmm_thread_cache.grown_large_bytes);
}

int main(void)
{
    hmm_free(hmm_malloc(1));
    CHECK(hmm_thread_cache.budget / 16 / CLASS_MAX < CACHE_CLASS_MIN, "the test needs a class the sixteenth starves");
    size_t small_growth = hmm_thread_cache.grown_bytes;
    check_size(40 * 1024);
    check_size(CLASS_MAX);
    CHECK(hmm_thread_cache.grown_bytes == small_growth, "large classes spent %zu bytes of the small classes' growth",
          hmm_thread_cache.grown_bytes - small_growth);
    cache_flush(&hmm_thread_cache);
    CHECK(cache_limit(&hmm_thread_cache, size_class(CLASS_MAX)) < CACHE_CLASS_MIN,
          "a flush left the 64 KiB class at %u blocks", cache_limit(&hmm_thread_cache, size_class(CLASS_MAX)));
    CHECK(hmm_check() == 0, "hmm_check");
    printf("ok\n");
    return 0;
}
