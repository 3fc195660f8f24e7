/* The owner's refill takes the oldest chain another thread handed back,
 * not the newest: the newest holds the blocks the freeing thread touched
 * last, whose lines are still in its core's cache, next to the ones it is
 * freeing now (hmm-bench xmalloc -t 1 took twice mimalloc's time popping
 * them).  The main thread mallocs 64 B blocks until its cache holds none;
 * a second thread, bound to an arena of its own with a refilled bin of the
 * class (the class's 128 blocks, not a consumer's quarter), frees FREED of
 * them in order: its bin overflows every 64 frees or so, and each overflow
 * hands the 64 freed last back to the main thread's arena as one chain.
 * The first chain holds blocks of the first 128 freed; the last ones
 * (and what its cache gives back as it exits), blocks freed later.  Once
 * that thread is gone the main thread mallocs: the block must be one of
 * the first 128 freed, and every block of the refill one of the same
 * chain.
 * Calls the hmm_* names; links libhmm.la. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>

#include "hmm.h"
#include "testutil.h"

#define SIZE 64
#define FREED 512
#define FIRST 128
#define BLOCKS 2000

static void *blocks[BLOCKS];

static void *consumer(void *arg)
{
    (void)arg;
    hmm_free(hmm_malloc(SIZE));          /* binds the thread, refills its bin */
    for (int i = 0; i < FREED; i++)
        hmm_free(blocks[i]);
    return NULL;
}

/* Where p was in the order of the frees, or -1. */
static int freed_at(void *p)
{
    for (int i = 0; i < FREED; i++)
        if (blocks[i] == p)
            return i;
    return -1;
}

int main(void)
{
    malloc_until_cache_empty(blocks, FREED, BLOCKS, SIZE);
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, consumer, NULL) == 0 && pthread_join(thread, NULL) == 0,
          "the freeing thread did not run");
    void *p = hmm_malloc(SIZE);
    int at = freed_at(p);
    size_t kept = cached_bytes() / SIZE;
    printf("the refill's first block was the %dth freed (of %d); its chain left %zu more\n", at, FREED, kept);
    CHECK(at >= 0, "the malloc's block %p is not one the consumer freed", p);
    CHECK(at < FIRST, "the refill took a chain of the blocks freed last (the %dth of %d), not the oldest", at,
          FREED);
    for (size_t i = 0; i < kept; i++) {
        int next = freed_at(hmm_malloc(SIZE));
        CHECK(next >= 0 && next < FIRST, "a block of the refill was the %dth freed, not of the oldest chain",
              next);
    }
    CHECK(hmm_check() == 0, "hmm_check failed after the refill");
    return 0;
}
