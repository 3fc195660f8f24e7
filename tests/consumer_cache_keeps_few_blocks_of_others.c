/* A thread that frees what another thread allocated (a consumer) keeps few
 * of those blocks in its cache: it never mallocs them, so a bin of them
 * only holds memory in flight that the producer must replace with new
 * blocks.  A bin that overflows with another arena's blocks, in a class
 * no malloc of the thread ever refilled, goes back whole and gets a
 * quarter of its room
 * (cache.c, cache_make_room).  The main thread mallocs 1,000 blocks of
 * 256 B; a second thread, bound to an arena of its own, frees them all and
 * looks at its cache in hmm_stats after every tenth free: at most a
 * quarter of the class's 128 blocks and one more, where it used to keep
 * half to all of them (104).  The quarter holds from the first free, not
 * only after the bin first overflowed: a first fill of 128 of the
 * producer's blocks (100 kept after 100 frees, before the fix) doubled
 * prodcon's time and added a fifth to its peak RSS.
 * Calls the hmm_* names; links libhmm.la. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>

#include "hmm.h"
#include "testutil.h"

#define BLOCKS 1000
#define SIZE 256
#define KEPT_MAX (128 / 4 + 1)

static void *blocks[BLOCKS];

static void *consumer(void *arg)
{
    (void)arg;
    hmm_free(hmm_malloc(1));             /* binds the thread to an arena of its own */
    size_t most = 0;
    for (int i = 0; i < BLOCKS; i++) {
        hmm_free(blocks[i]);
        if (i % 10 != 9)
            continue;
        size_t kept = cached_bytes() / SIZE;
        most = kept > most ? kept : most;
        CHECK(kept <= KEPT_MAX, "after %d frees the consumer keeps %zu blocks of the producer's, more than %d",
              i + 1, kept, KEPT_MAX);
    }
    printf("the consumer's cache kept at most %zu blocks of %d B\n", most, SIZE);
    return NULL;
}

int main(void)
{
    for (int i = 0; i < BLOCKS; i++)
        CHECK((blocks[i] = hmm_malloc(SIZE)) != NULL, "malloc failed");
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, consumer, NULL) == 0, "pthread_create failed");
    pthread_join(thread, NULL);
    return 0;
}
