/* A thread that frees blocks other threads allocated, and does not
 * allocate that size itself, gives them back as soon as a quarter of
 * their bin fills (hmm(3), cache_size), from its first free: all of them
 * at once, none before.  The main thread mallocs 400 blocks of 256 B (a
 * bin of 128 blocks with the default budget); a second thread, bound to
 * an arena of its own, frees them one by one and after each free counts
 * the blocks its cache holds (hmm_stats): 1 to 33, a quarter of the bin
 * and the block just freed, then 1 again, round after round
 * (consumer_cache_keeps_few_blocks_of_others bounds it over 1,000).  Of
 * 400 blocks of 512 B, a size it mallocs too, it keeps half of each full
 * bin (64 to 127).
 * Calls the hmm_* names; links libhmm.la. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>

#include "hmm.h"
#include "testutil.h"

#define BLOCKS 400
#define SIZE 256            /* the consumer never allocates it */
#define OWN_SIZE 512        /* the consumer allocates it too */
#define BIN 128
#define QUARTER (BIN / 4 + 1)   /* and the block just freed */

static void *blocks[BLOCKS], *own_size_blocks[BLOCKS];

/* Frees the blocks of size one by one: held[i] is how many of them the
 * cache holds after the (i+1)th free. */
static void free_counting(void **freed, size_t size, size_t *held)
{
    size_t before = cached_bytes();
    for (int i = 0; i < BLOCKS; i++) {
        hmm_free(freed[i]);
        held[i] = (cached_bytes() - before) / size;
    }
}

static void *consumer(void *arg)
{
    (void)arg;
    static size_t held[BLOCKS];
    hmm_free(hmm_malloc(OWN_SIZE));      /* binds the thread to an arena of its own */
    free_counting(blocks, SIZE, held);
    for (int i = 0; i < BLOCKS; i++)
        CHECK(held[i] == (size_t)i % QUARTER + 1, "after %d frees the consumer's cache holds %zu blocks of "
              "others, not %d", i + 1, held[i], i % QUARTER + 1);
    printf("the consumer's cache held 1 to %d blocks of %d B, round after round\n", QUARTER, SIZE);
    free_counting(own_size_blocks, OWN_SIZE, held);
    size_t most_after_give_back = 0;
    for (int i = BIN; i < BLOCKS; i++)
        most_after_give_back = held[i] > most_after_give_back ? held[i] : most_after_give_back;
    printf("and up to %zu blocks of %d B, a size it allocates\n", most_after_give_back, OWN_SIZE);
    CHECK(held[BIN] >= BIN / 2, "a size the consumer allocates kept %zu blocks of a full bin, not half of %d",
          held[BIN], BIN);
    CHECK(most_after_give_back >= BIN - 1, "a size the consumer allocates held at most %zu blocks, not its bin",
          most_after_give_back);
    return NULL;
}

int main(void)
{
    for (int i = 0; i < BLOCKS; i++)
        CHECK((blocks[i] = hmm_malloc(SIZE)) != NULL && (own_size_blocks[i] = hmm_malloc(OWN_SIZE)) != NULL,
              "malloc failed");
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, consumer, NULL) == 0, "pthread_create failed");
    pthread_join(thread, NULL);
    return 0;
}
