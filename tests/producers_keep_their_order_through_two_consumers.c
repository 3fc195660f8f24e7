/* Two producers malloc 64 B blocks and hand them in bundles through one
 * queue to two consumers, which free them (hmm-bench xmalloc's shape):
 * every block goes back to its owner through a consumer's cache, and
 * each producer's run of consecutive blocks is split between the two
 * consumers at the bundles' ends and cut again where their bins
 * overflow.  A producer's mallocs must still come back in the order it
 * mallocked them, each block the neighbour of the one before (at most a
 * block and its header away): the chains a consumer gives back are cut
 * where its frees stop being neighbours, and a refill takes the chain
 * that goes on from the last one.  Taken oldest first as they came,
 * the chains cut the runs shorter every cycle and they never joined
 * again: a producer's neighbours fell from 88 % to 2 %, and each malloc
 * waited for a line from the other core (xmalloc -t 2 twice mimalloc's
 * time).  Over the last third of each producer's mallocs, at least
 * three in five must be neighbours.
 * Calls the hmm_* names; links libhmm.la. */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "hmm.h"
#include "testutil.h"

#define SIZE 64
#define NEAR (SIZE + 2 * 16)   /* a block, its header and one unit a block may have more */
#define BUNDLE 64
#define QUEUED 64
#define PRODUCERS 2
#define BLOCKS 600000          /* per producer */

struct bundle {
    struct bundle *next;
    size_t count;
    void *block[BUNDLE];
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct bundle *head, *tail;
    unsigned queued, producing;
} queue = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, PRODUCERS };

static void put(struct bundle *b)
{
    pthread_mutex_lock(&queue.lock);
    while (queue.queued >= QUEUED)
        pthread_cond_wait(&queue.changed, &queue.lock);
    b->next = NULL;
    if (queue.tail)
        queue.tail->next = b;
    else
        queue.head = b;
    queue.tail = b;
    queue.queued++;
    pthread_cond_broadcast(&queue.changed);
    pthread_mutex_unlock(&queue.lock);
}

/* The next bundle, or NULL once the producers are done and it is empty. */
static struct bundle *get(void)
{
    pthread_mutex_lock(&queue.lock);
    while (queue.head == NULL && queue.producing > 0)
        pthread_cond_wait(&queue.changed, &queue.lock);
    struct bundle *b = queue.head;
    if (b) {
        queue.head = b->next;
        if (queue.head == NULL)
            queue.tail = NULL;
        queue.queued--;
        pthread_cond_broadcast(&queue.changed);
    }
    pthread_mutex_unlock(&queue.lock);
    return b;
}

/* Neighbours among the mallocs of the last third. */
static void *produce(void *arg)
{
    size_t *neighbours = arg;
    uintptr_t previous = 0;
    for (size_t done = 0; done < BLOCKS;) {
        struct bundle *b = hmm_malloc(sizeof *b);
        CHECK(b != NULL, "a bundle's malloc failed");
        for (b->count = 0; b->count < BUNDLE && done < BLOCKS; b->count++, done++) {
            unsigned char *p = hmm_malloc(SIZE);
            CHECK(p != NULL, "malloc failed");
            memset(p, (int)done, SIZE);
            uintptr_t at = (uintptr_t)p;
            if (done >= BLOCKS - BLOCKS / 3)
                *neighbours += (at > previous ? at - previous : previous - at) <= NEAR;
            previous = at;
            b->block[b->count] = p;
        }
        put(b);
    }
    pthread_mutex_lock(&queue.lock);
    queue.producing--;
    pthread_cond_broadcast(&queue.changed);
    pthread_mutex_unlock(&queue.lock);
    return NULL;
}

static void *consume(void *arg)
{
    unsigned *sum = arg;
    for (struct bundle *b; (b = get()) != NULL; hmm_free(b))
        for (size_t i = 0; i < b->count; i++) {
            *sum += ((unsigned char *)b->block[i])[SIZE - 1];
            hmm_free(b->block[i]);
        }
    return NULL;
}

int main(void)
{
    pthread_t producer[PRODUCERS], consumer[PRODUCERS];
    size_t neighbours[PRODUCERS] = { 0 };
    unsigned sum[PRODUCERS] = { 0 };
    for (int i = 0; i < PRODUCERS; i++)
        CHECK(pthread_create(&producer[i], NULL, produce, &neighbours[i]) == 0 &&
                  pthread_create(&consumer[i], NULL, consume, &sum[i]) == 0,
              "a thread did not start");
    for (int i = 0; i < PRODUCERS; i++)
        CHECK(pthread_join(producer[i], NULL) == 0 && pthread_join(consumer[i], NULL) == 0,
              "a thread did not finish");
    size_t counted = BLOCKS / 3;
    for (int i = 0; i < PRODUCERS; i++) {
        printf("producer %d: %zu of its last %zu mallocs were the neighbour of the one before\n", i, neighbours[i],
               counted);
        CHECK(neighbours[i] * 5 >= counted * 3,
              "producer %d: only %zu of its last %zu mallocs were the neighbour of the one before: the chains "
              "handed back scattered its runs",
              i, neighbours[i], counted);
    }
    CHECK(hmm_check() == 0, "hmm_check failed");
    return 0;
}
