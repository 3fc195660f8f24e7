/* Two walks look at blocks that another thread's cache may hold, whose
 * fast path flips the header's state without any lock:
 *  - malloc_trim (and the maintenance thread) give back every wholly free
 *    chunk, looking at each chunk's first block under its arena's lock.
 *    It must read the state first (an atomic load) and the size only of a
 *    free block, which no cache holds: it read the size first, racing
 *    with the flips (ThreadSanitizer reported it in hmm-stress --scenario
 *    private, its maintenance thread beside the workers);
 *  - hmm_check walks every block of every chunk: it must read each size
 *    with an atomic load (block_units_seen).
 * A worker thread mallocs a 64-byte block, the first its new arena
 * carves (its first chunk's first block), and frees and mallocs it again
 * ROUNDS times, all on the fast path; meanwhile the main thread calls
 * hmm_malloc_trim and hmm_check in turn until the worker is done.  Built
 * with ThreadSanitizer as ..._tsan, a race fails it.
 * Calls the hmm_* names; links libhmm.la (libhmm_tsan.la). */
#include "config.h"

#include <pthread.h>
#include <stdio.h>

#include "hmm.h"
#include "testutil.h"

#define SIZE 64
#define ROUNDS 200000

static int done;

static void *cycle(void *arg)
{
    (void)arg;
    void *p = hmm_malloc(SIZE);
    CHECK(p != NULL, "malloc failed");
    for (int i = 0; i < ROUNDS; i++) {
        hmm_free(p);
        p = hmm_malloc(SIZE);
        CHECK(p != NULL, "malloc failed");
    }
    hmm_free(p);
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    return NULL;
}

int main(void)
{
    pthread_t worker;
    CHECK(pthread_create(&worker, NULL, cycle, NULL) == 0, "the worker did not start");
    unsigned walks = 0;
    while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
        hmm_malloc_trim(0);
        CHECK(hmm_check() == 0, "hmm_check failed while the worker cycled its block");
        walks++;
    }
    CHECK(pthread_join(worker, NULL) == 0, "the worker did not finish");
    printf("%u trims and checks while the worker cycled its block %d times\n", walks, ROUNDS);
    CHECK(hmm_check() == 0, "hmm_check failed");
    return 0;
}
