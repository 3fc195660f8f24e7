/* An arena whose threads have all exited (an orphan) keeps no blocks on
 * its central lists: no thread will refill from them, and each one pins
 * the chunk it lies in.  A worker's blocks freed by another thread after
 * it exited go back to its arena in batches (the freer's cache flushes
 * them as chains); a batch found the orphan not yet sparse (an arena of
 * under 8 MiB more than its live bytes never is) and parked up to 1 MiB on
 * the central lists, scattered over every chunk.  Then all its chunks stay
 * while a single block lives: make check saw an orphan of 67 chunks
 * (70 MB, 55 MB resident) holding 288 bytes in use.
 *
 * Thread A allocates 6,000 blocks of 256 B..2 KiB (6 MiB) and one block it
 * keeps, then exits; thread B, bound to its own arena before A exits (a
 * new thread would adopt the orphan), frees A's blocks in scrambled order
 * and exits.  A's orphan must then hold the keeper's chunk alone (an
 * orphan keeps no spare either).  Links libhmm.la; calls the hmm_* names. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>

#include "hmm.h"
#include "testutil.h"

#define BLOCKS 6000
#define KEEPER 100
#define MiB ((size_t)1 << 20)
#define ORPHAN_MAX_CHUNK_BYTES MiB      /* the keeper's chunk (chunk_size 1M) */

static void *blocks[BLOCKS];
static void *keeper;
static pthread_barrier_t bound;

static void *owner(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&bound);
    for (int i = 0; i < BLOCKS; i++)
        CHECK((blocks[i] = hmm_malloc((size_t)256 << (i % 4))) != NULL, "malloc failed");
    CHECK((keeper = hmm_malloc(KEEPER)) != NULL, "malloc failed");
    return NULL;
}

static void *freer(void *arg)
{
    pthread_t *owner_thread = arg;
    hmm_free(hmm_malloc(1));           /* binds this thread to an arena of its own */
    pthread_barrier_wait(&bound);
    CHECK(pthread_join(*owner_thread, NULL) == 0, "pthread_join");
    uint64_t rng = test_seed(0x0f0a);
    for (int i = BLOCKS - 1; i > 0; i--) {
        int j = (int)rng_range(&rng, 0, (size_t)i);
        void *t = blocks[i];
        blocks[i] = blocks[j];
        blocks[j] = t;
    }
    for (int i = 0; i < BLOCKS; i++)
        hmm_free(blocks[i]);
    return NULL;
}

static const struct hmm_arena_stats *keeper_arena(const struct hmm_stats *s)
{
    const struct hmm_arena_stats *found = NULL;
    for (unsigned i = 0; i < s->arena_count && i < HMM_STATS_ARENAS; i++)
        if (s->arenas[i].orphaned && s->arenas[i].in_use_bytes >= KEEPER)
            found = &s->arenas[i];
    return found;
}

int main(void)
{
    hmm_free(hmm_malloc(1));
    pthread_t a, b;
    pthread_barrier_init(&bound, NULL, 2);
    CHECK(pthread_create(&a, NULL, owner, NULL) == 0, "pthread_create");
    CHECK(pthread_create(&b, NULL, freer, &a) == 0, "pthread_create");
    CHECK(pthread_join(b, NULL) == 0, "pthread_join");
    struct hmm_stats s;
    CHECK(hmm_stats(&s) == 0, "hmm_stats failed");
    const struct hmm_arena_stats *orphan = keeper_arena(&s);
    CHECK(orphan != NULL, "no orphaned arena holds the keeper");
    printf("the orphan holds %zu chunks (%zu bytes) for %zu bytes in use, %zu free\n", orphan->chunks,
           orphan->chunk_bytes, orphan->in_use_bytes, orphan->free_bytes);
    CHECK(orphan->chunk_bytes <= ORPHAN_MAX_CHUNK_BYTES,
          "the orphan holds %zu chunks (%zu bytes) for %zu bytes in use", orphan->chunks, orphan->chunk_bytes,
          orphan->in_use_bytes);
    hmm_free(keeper);
    CHECK(hmm_check() == 0, "hmm_check");
    return 0;
}
