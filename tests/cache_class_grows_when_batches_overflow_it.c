/* A cache class that overflows and then runs empty, round after round
 * (glibc's malloc-simple batches of 1,600 16-byte blocks), grows its limit
 * until a round stays in the cache: the arena is not called at all.  All
 * classes together grow by no more than their share of the cache budget, a class that
 * overflows without running empty (a thread that mostly frees) keeps its
 * limit, and a flush of the whole cache shrinks every class back.
 *
 * Test build (libhmm_test): reads the cache and the arena through
 * internal.h. */
#include "config.h"

#include "hmm.h"
#include "internal.h"
#include "testutil.h"

#define SIZE 16
#define BATCH 1600
#define ROUNDS 8

static void *held[BATCH];

/* Allocate n blocks, free the first half oldest first and the rest newest
 * first; how many blocks the arena handed out meanwhile. */
static size_t batch_round(size_t n)
{
    struct arena *a = hmm_thread_cache.arena;
    size_t before = a ? counter_read(&a->mallocs) : 0;
    for (size_t i = 0; i < n; i++)
        CHECK((held[i] = hmm_malloc(SIZE)) != NULL, "malloc(%d)", SIZE);
    for (size_t i = 0; i < n / 2; i++)
        hmm_free(held[i]);
    for (size_t i = n; i-- > n / 2;)
        hmm_free(held[i]);
    return counter_read(&hmm_thread_cache.arena->mallocs) - before;
}

static uint32_t limit_of(unsigned cls)
{
    return cache_limit(&hmm_thread_cache, cls);
}

int main(void)
{
    unsigned cls = size_class(SIZE);
    size_t fetched = 0;
    for (int round = 0; round < ROUNDS; round++)
        fetched = batch_round(BATCH);
    CHECK(fetched == 0, "round %d still took %zu blocks from the arena (class limit %u)", ROUNDS, fetched,
          limit_of(cls));
    CHECK(limit_of(cls) >= BATCH, "class limit %u below the batch of %d", limit_of(cls), BATCH);
    CHECK(hmm_thread_cache.grown_bytes <= hmm_thread_cache.budget / CACHE_GROWTH_SHARE,
          "the classes grew by %zu bytes, past their share of the budget (%zu bytes)", hmm_thread_cache.grown_bytes,
          hmm_thread_cache.budget);
    CHECK(hmm_check() == 0, "hmm_check with a grown class");

    unsigned other = size_class(64);
    static void *kept[1000], *taken[200];
    for (size_t i = 0; i < 1000; i++)
        CHECK((kept[i] = hmm_malloc(64)) != NULL, "malloc(64)");
    for (size_t round = 0; round < 4; round++) {
        for (size_t i = 0; i < 200; i++)
            hmm_free(kept[round * 200 + i]);
        for (size_t i = 0; i < 50; i++)
            CHECK((taken[round * 50 + i] = hmm_malloc(64)) != NULL, "malloc(64)");
    }
    CHECK(limit_of(other) == CACHE_CLASS_MAX, "a class that never ran empty grew to %u", limit_of(other));
    for (size_t i = 800; i < 1000; i++)
        hmm_free(kept[i]);
    for (size_t i = 0; i < 200; i++)
        hmm_free(taken[i]);

    cache_flush(&hmm_thread_cache);
    CHECK(limit_of(cls) == CACHE_CLASS_MAX, "a flush left the class limit at %u", limit_of(cls));
    CHECK(hmm_check() == 0, "hmm_check after the flush");
    printf("ok\n");
    return 0;
}
