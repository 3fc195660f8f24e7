/* A consumer's bin of another thread's blocks goes back to their owner
 * whole, and the owner's next refill of the class takes it whole: the
 * blocks travel as the bin held them (still cached, on a stack of chains
 * per class in the owner's arena), and the owner's malloc finds them all
 * in its bin, not a refill batch cut off a central list.  The main
 * thread mallocs 64 B blocks until its cache holds none, then a second
 * thread, bound to an arena of its own, mallocs and frees one block of
 * the size (so that its bin holds the class's 128 blocks, not a
 * consumer's quarter) and frees 128 of the main thread's, in address
 * order (a chain given back ends where the frees stop being neighbours,
 * and the refill batches that carved them ran the other way): the 128th
 * overflows its bin, which gives the 64 freed last back.  While that
 * thread lives (its cache keeps the rest), the main thread mallocs one
 * block: its cache then holds the other 63 (a refill batch is at most 33),
 * hmm_check finds the arenas sound before and after, and every block
 * it hands out is one the consumer freed.
 * Calls the hmm_* names; links libhmm.la. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>

#include "hmm.h"
#include "testutil.h"

#define SIZE 64
#define FREED 128
#define HANDED (FREED / 2)
#define BLOCKS 1000

static void *blocks[BLOCKS];
static pthread_barrier_t freed, checked;

static void *consumer(void *arg)
{
    (void)arg;
    hmm_free(hmm_malloc(SIZE));          /* binds the thread to an arena of its own */
    for (int i = 0; i < FREED; i++)
        hmm_free(blocks[i]);
    pthread_barrier_wait(&freed);
    pthread_barrier_wait(&checked);
    return NULL;
}

static size_t cached_blocks(void)
{
    return cached_bytes() / SIZE;
}

static int was_freed(void *p)
{
    for (int i = 0; i < FREED; i++)
        if (blocks[i] == p)
            return 1;
    return 0;
}

int main(void)
{
    malloc_until_cache_empty(blocks, FREED, BLOCKS, SIZE);
    sort_by_address(blocks, FREED);
    pthread_barrier_init(&freed, NULL, 2);
    pthread_barrier_init(&checked, NULL, 2);
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, consumer, NULL) == 0, "pthread_create failed");
    pthread_barrier_wait(&freed);
    CHECK(hmm_check() == 0, "hmm_check failed with the consumer's bin on its way back");
    void *p = hmm_malloc(SIZE);
    size_t kept = cached_blocks();
    printf("after one malloc the main thread's cache holds %zu blocks of %d B\n", kept, SIZE);
    CHECK(kept == HANDED - 1, "the refill took %zu blocks of the %d handed back, not all", kept + 1, HANDED);
    CHECK(was_freed(p), "the malloc's block %p is not one the consumer freed", p);
    for (size_t i = 0; i < kept; i++)
        CHECK(was_freed(hmm_malloc(SIZE)), "a block of the refill is not one the consumer freed");
    CHECK(hmm_check() == 0, "hmm_check failed after the refill");
    pthread_barrier_wait(&checked);
    pthread_join(thread, NULL);
    return 0;
}
