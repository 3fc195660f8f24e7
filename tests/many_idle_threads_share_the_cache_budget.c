/* Threads that sleep keep what their caches hold, so with many threads the
 * caches together must stay small: past 4 threads, every thread's cache
 * gets a share of 4 x cache_size (cache.c, CACHE_TOTAL_SHARES).  33 threads
 * each free 200 blocks of each of 8 sizes (128 B..16 KiB) and then wait, as
 * the idle workers of a server do; the blocks their caches kept count as
 * in use in hmm_stats (only the calling thread's cache is told apart), and
 * an exiting thread empties its cache, so the bytes in use then, less
 * those in use after the threads have gone, are what the caches held.
 * Each class may take a sixteenth of a thread's budget: 8 of them half of
 * it, 2 MiB for all the threads together (1.0 MiB measured: a full bin
 * gives half back), and at least 16 KiB each (with cache_size=0,
 * nothing).  With a share of 8 x cache_size the caches kept 2.3 MiB,
 * with 32 x 9 MiB. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>

#include "hmm.h"
#include "testutil.h"

#define THREADS 33
#define SIZES 8
#define BLOCKS 200
#define MiB ((size_t)1 << 20)
#define MIN_SHARE_HELD ((size_t)16 << 10)

static pthread_barrier_t bound, freed, done;

static void *worker(void *arg)
{
    (void)arg;
    void *first = hmm_malloc(1);        /* binds the thread: all count from here */
    pthread_barrier_wait(&bound);
    static __thread void *blocks[BLOCKS];
    for (int s = 0; s < SIZES; s++) {
        for (int i = 0; i < BLOCKS; i++)
            CHECK((blocks[i] = hmm_malloc((size_t)128 << s)) != NULL, "malloc failed");
        for (int i = 0; i < BLOCKS; i++)
            hmm_free(blocks[i]);
    }
    pthread_barrier_wait(&freed);
    pthread_barrier_wait(&done);
    hmm_free(first);
    return NULL;
}

static size_t in_use(void)
{
    struct hmm_stats s;
    CHECK(hmm_stats(&s) == 0, "hmm_stats failed");
    return s.in_use_bytes;
}

int main(void)
{
    pthread_t threads[THREADS];
    pthread_barrier_init(&bound, NULL, THREADS + 1);
    pthread_barrier_init(&freed, NULL, THREADS + 1);
    pthread_barrier_init(&done, NULL, THREADS + 1);
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&threads[i], NULL, worker, NULL) == 0, "pthread_create failed");
    pthread_barrier_wait(&bound);
    pthread_barrier_wait(&freed);
    size_t idle = in_use();
    pthread_barrier_wait(&done);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    size_t after = in_use();
    CHECK(after <= idle, "%.1f MiB in use after the threads have gone, more than the %.1f MiB with them",
          (double)after / MiB, (double)idle / MiB);
    size_t cached = idle - after;
    printf("%d idle threads' caches hold %.1f MiB\n", THREADS, (double)cached / MiB);
    CHECK(cached <= 2 * MiB, "%d idle threads' caches hold %.1f MiB, more than 2", THREADS,
          (double)cached / MiB);
    /* and each still has a cache worth the name: a share, not nothing */
    CHECK(cached >= THREADS * MIN_SHARE_HELD, "%d idle threads' caches hold %.2f MiB, less than %zu KiB each",
          THREADS, (double)cached / MiB, MIN_SHARE_HELD >> 10);
    return 0;
}
