/* hmm_stats' process totals (slow mallocs and frees, bytes returned to the
 * kernel) count the whole life of the process: an arena retired when its
 * thread exited and its last block went takes none of them with it, so a
 * monitor that samples them as counters never sees one go down.
 *
 * A thread allocates and writes blocks too large for the thread cache
 * (each one a slow malloc and a slow free), frees every other one and
 * trims, so that its arena purges the holes between those still live,
 * frees the rest, then waits; the totals read then are the floor.  Once it has exited, its emptied arena is retired (the arena
 * count drops), and the totals must still be at least the floor.
 *
 * Links libhmm.la; calls the hmm_* names.  Built a second time against
 * the ThreadSanitizer library (--disable-override engine) when the
 * compiler has it. */
#include "config.h"

#include <pthread.h>

#include "hmm.h"
#include "testutil.h"

#define BLOCKS 200
#define SIZE 100000             /* past the cached classes, below the mmap threshold */

static pthread_barrier_t worked, read_floor;

static void *worker(void *arg)
{
    (void)arg;
    void *block[BLOCKS];
    for (int i = 0; i < BLOCKS; i++) {
        CHECK((block[i] = hmm_malloc(SIZE)) != NULL, "malloc(%d)", SIZE);
        memset(block[i], 0x5a, SIZE);
    }
    for (int i = 0; i < BLOCKS; i += 2)
        hmm_free(block[i]);
    hmm_malloc_trim(0);
    for (int i = 1; i < BLOCKS; i += 2)
        hmm_free(block[i]);
    pthread_barrier_wait(&worked);
    pthread_barrier_wait(&read_floor);
    return NULL;
}

int main(void)
{
    hmm_free(hmm_malloc(1));
    pthread_barrier_init(&worked, NULL, 2);
    pthread_barrier_init(&read_floor, NULL, 2);
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, worker, NULL) == 0, "pthread_create");
    pthread_barrier_wait(&worked);
    struct hmm_stats before, after;
    CHECK(hmm_stats(&before) == 0, "hmm_stats");
    pthread_barrier_wait(&read_floor);
    CHECK(pthread_join(thread, NULL) == 0, "pthread_join");
    CHECK(hmm_stats(&after) == 0, "hmm_stats");

    CHECK(before.slow_mallocs >= BLOCKS && before.slow_frees >= BLOCKS,
          "the worker's %d mallocs and frees were not counted (%llu, %llu)", BLOCKS,
          (unsigned long long)before.slow_mallocs, (unsigned long long)before.slow_frees);
    CHECK(after.arena_count < before.arena_count, "the worker's arena was not retired (%u arenas, then %u)",
          before.arena_count, after.arena_count);
    CHECK(after.slow_mallocs >= before.slow_mallocs && after.mallocs == after.slow_mallocs,
          "slow mallocs went from %llu to %llu when the worker's arena was retired",
          (unsigned long long)before.slow_mallocs, (unsigned long long)after.slow_mallocs);
    CHECK(after.slow_frees >= before.slow_frees && after.frees == after.slow_frees,
          "slow frees went from %llu to %llu when the worker's arena was retired",
          (unsigned long long)before.slow_frees, (unsigned long long)after.slow_frees);
    CHECK(after.returned_bytes >= before.returned_bytes,
          "bytes returned went from %zu to %zu when the worker's arena was retired", before.returned_bytes,
          after.returned_bytes);
    printf("ok: slow mallocs %llu -> %llu, slow frees %llu -> %llu, arenas %u -> %u\n",
           (unsigned long long)before.slow_mallocs, (unsigned long long)after.slow_mallocs,
           (unsigned long long)before.slow_frees, (unsigned long long)after.slow_frees, before.arena_count,
           after.arena_count);
    return 0;
}
