/* A thread that frees blocks other threads allocated, and does not
 * allocate that size itself, gives them back all at once when their bin
 * fills, and from then on as soon as a quarter of it fills (hmm(3),
 * cache_size): its cache keeps few blocks it will never use, which their
 * owner would replace with new ones.  The main thread mallocs 400 blocks
 * of 256 B (a bin of 128 blocks with the default budget); a second
 * thread, bound to an arena of its own, frees them one by one and after
 * each free counts the blocks its cache holds (hmm_stats): 1 to 128, then
 * 1 again, then never more than 33, a quarter of the bin and the block
 * just freed, which it does reach.  Of 400 blocks of 512 B, a size it
 * mallocs too, it keeps half of each full bin (64 to 128).
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

static void *blocks[BLOCKS], *own_size_blocks[BLOCKS];

static size_t cached_bytes(void)
{
    struct hmm_stats s;
    CHECK(hmm_stats(&s) == 0, "hmm_stats failed");
    return s.cached_bytes;
}

/* Frees the blocks of size one by one; the most the cache then holds of
 * them once it first gave some back.  With check_fill, the bin keeps
 * every block until it is full, then gives all of them back. */
static size_t most_held_after_first_give_back(void **freed, size_t size, int check_fill)
{
    size_t before = cached_bytes(), last = 0, most = 0;
    int gave_back = 0;
    for (int i = 0; i < BLOCKS; i++) {
        hmm_free(freed[i]);
        size_t held = (cached_bytes() - before) / size;
        if (check_fill && i < BIN)
            CHECK(held == (size_t)i + 1, "after %d frees the consumer's cache holds %zu blocks", i + 1, held);
        if (check_fill && i == BIN)
            CHECK(held == 1, "the consumer's full bin kept %zu blocks of the %d freed", held, BIN + 1);
        gave_back |= held < last;
        if (gave_back && held > most)
            most = held;
        last = held;
    }
    CHECK(gave_back, "the cache gave no block of %zu B back", size);
    return most;
}

static void *consumer(void *arg)
{
    (void)arg;
    hmm_free(hmm_malloc(OWN_SIZE));      /* binds the thread to an arena of its own */
    size_t most = most_held_after_first_give_back(blocks, SIZE, 1);
    printf("after its bin first filled the consumer's cache held at most %zu blocks of %d B\n", most, SIZE);
    CHECK(most >= BIN / 4 && most <= BIN / 4 + 1, "the consumer held up to %zu blocks of others, not a quarter "
          "of %d", most, BIN);
    most = most_held_after_first_give_back(own_size_blocks, OWN_SIZE, 0);
    printf("and at most %zu blocks of %d B, a size it allocates\n", most, OWN_SIZE);
    CHECK(most >= BIN / 2, "a size the consumer allocates kept only %zu blocks, not half of %d", most, BIN);
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
