/* A new thread whose first call frees a block of an orphaned arena adopts
 * that arena, not merely the first orphan: a worker that takes over an
 * exited worker's objects (a thread pool recycling its threads, larson)
 * then frees them into its own arena instead of sending every one back
 * remotely.
 *
 * Two threads, alive together, each allocate a block and exit, leaving
 * two orphaned arenas, each holding one block.  A third thread's first
 * call frees the block of the arena orphaned second (the registry lists
 * it after the other, so the first orphan would be the wrong one): that
 * arena, where the freed block now waits in the thread's cache, is the one
 * bound to the thread; the other stays orphaned.
 *
 * Links libhmm.la; calls the hmm_* names.  Built a second time against
 * the ThreadSanitizer library (--disable-override engine) when the
 * compiler has it. */
#include "config.h"

#include <malloc.h>
#include <pthread.h>

#include "hmm.h"
#include "testutil.h"

#define BLOCK 1000

static void *blocks[2];
static pthread_barrier_t both_allocated;
static struct hmm_stats seen;

static void *allocate(void *arg)
{
    int which = (int)(intptr_t)arg;
    void *block = hmm_malloc(BLOCK);
    CHECK(block != NULL, "malloc");
    __atomic_store_n(&blocks[which], block, __ATOMIC_RELEASE);
    pthread_barrier_wait(&both_allocated);
    return NULL;
}

static void *take_over(void *arg)
{
    hmm_free(arg);
    CHECK(hmm_stats(&seen) == 0, "hmm_stats");
    return NULL;
}

static unsigned orphans(void)
{
    struct hmm_stats s;
    CHECK(hmm_stats(&s) == 0, "hmm_stats");
    unsigned count = 0;
    for (unsigned i = 0; i < s.arena_count && i < HMM_STATS_ARENAS; i++)
        count += s.arenas[i].orphaned != 0;
    return count;
}

static void run(void *(*start)(void *), void *arg)
{
    pthread_t t;
    CHECK(pthread_create(&t, NULL, start, arg) == 0, "pthread_create");
    CHECK(pthread_join(t, NULL) == 0, "pthread_join");
}

int main(void)
{
    CHECK(hmm_mallopt(M_ARENA_MAX, 8) == 1, "mallopt(M_ARENA_MAX)");
    void *mine = hmm_malloc(16);
    pthread_barrier_init(&both_allocated, NULL, 2);
    pthread_t first, second;
    CHECK(pthread_create(&first, NULL, allocate, (void *)0) == 0, "pthread_create");
    while (__atomic_load_n(&blocks[0], __ATOMIC_ACQUIRE) == NULL)
        sched_yield();
    CHECK(pthread_create(&second, NULL, allocate, (void *)1) == 0, "pthread_create");
    CHECK(pthread_join(first, NULL) == 0 && pthread_join(second, NULL) == 0, "pthread_join");
    CHECK(orphans() == 2, "two orphaned arenas, found %u", orphans());

    run(take_over, blocks[1]);
    unsigned holder = HMM_STATS_ARENAS, bound = 0;
    for (unsigned i = 0; i < seen.arena_count && i < HMM_STATS_ARENAS; i++) {
        if (seen.arenas[i].cached_bytes != 0)
            holder = i;
        bound += seen.arenas[i].orphaned == 0 && seen.arenas[i].threads == 1;
    }
    CHECK(holder < HMM_STATS_ARENAS, "the freed block is in the freeing thread's cache");
    CHECK(seen.arenas[holder].orphaned == 0 && seen.arenas[holder].threads == 1,
          "arena %u, which holds the freed block, is the freeing thread's (orphaned %d, threads %u)",
          seen.arenas[holder].id, seen.arenas[holder].orphaned, seen.arenas[holder].threads);
    CHECK(bound == 2, "main's arena and the adopted one are bound, found %u", bound);
    hmm_free(blocks[0]);
    hmm_free(mine);
    printf("PASS: the new thread adopted the orphan of the block it freed first\n");
    return 0;
}
