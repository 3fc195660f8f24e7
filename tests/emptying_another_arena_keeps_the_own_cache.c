/* A thread that empties another thread's arena keeps its own cache.  A
 * free whose bin is full while the block's arena is being emptied (it
 * holds four times its live bytes and 8 MiB more) sends the block
 * straight back; when that arena is the thread's own (the end of a
 * burst) the thread's cache closes too, as its cached blocks would pin
 * the chunks.  Another thread's arena says nothing about the cache: under
 * a steady churn over a live set the main thread allocated (hmm-bench
 * soak), closing it flushed every cached block of the thread's own, merged
 * its central lists, and the next mallocs split them off again.  The main
 * thread mallocs 48 MiB in 1 KiB blocks; a second thread caches 100
 * blocks of 128 B of its own arena, frees all of the main thread's blocks
 * in a scrambled order and still caches its own 100.  Calls the hmm_* names; links libhmm.la. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>

#include "hmm.h"
#include "testutil.h"

#define BURST_BLOCKS 49152
#define BURST_SIZE 1024
#define OWN_BLOCKS 100
#define OWN_SIZE 128
#define STRIDE 7919     /* a prime: the walk frees every block once, and no chunk empties early */

static void *burst[BURST_BLOCKS];

static void *emptier(void *arg)
{
    (void)arg;
    void *own[OWN_BLOCKS];
    for (int i = 0; i < OWN_BLOCKS; i++)
        CHECK((own[i] = hmm_malloc(OWN_SIZE)) != NULL, "malloc failed");
    for (int i = 0; i < OWN_BLOCKS; i++)
        hmm_free(own[i]);
    size_t before = cached_bytes();
    CHECK(before >= OWN_BLOCKS * OWN_SIZE, "the cache holds %zu bytes, not its %d blocks", before,
          OWN_BLOCKS);
    for (size_t i = 0, at = 0; i < BURST_BLOCKS; i++, at = (at + STRIDE) % BURST_BLOCKS)
        hmm_free(burst[at]);
    size_t after = cached_bytes();
    printf("the emptier's cache held %zu bytes before it freed the main thread's %d MiB, %zu after\n",
           before, BURST_BLOCKS * BURST_SIZE >> 20, after);
    CHECK(after >= OWN_BLOCKS * OWN_SIZE, "emptying the main thread's arena flushed the cache: "
          "%zu bytes left of %zu", after, before);
    return NULL;
}

int main(void)
{
    for (int i = 0; i < BURST_BLOCKS; i++)
        CHECK((burst[i] = hmm_malloc(BURST_SIZE)) != NULL, "malloc failed");
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, emptier, NULL) == 0, "pthread_create failed");
    pthread_join(thread, NULL);
    return 0;
}
