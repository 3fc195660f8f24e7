/* Issue 9, point 2: calloc returns zeroed memory whatever another thread
 * does to the mmap threshold meanwhile.  Whether calloc must clear a block
 * has to come from the block (a fresh mapping is already zero), not from a
 * second look at mallopt(M_MMAP_THRESHOLD), which may have changed since
 * malloc chose where the block comes from.
 *
 * One thread flips the threshold between 64 KiB and 1 MiB as fast as it
 * can; the main thread, many times over, dirties a 100000-byte block (from
 * the arena or its own mapping, as the threshold of the moment says), frees
 * it, and callocs the same size: every byte must read zero.  Uses the hmm_*
 * names. */
#include "config.h"

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "hmm.h"
#include "testutil.h"

#define ROUNDS 20000
#define SIZE 100000

static int stop;

static void *flip_threshold(void *unused)
{
    (void)unused;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        hmm_mallopt(M_MMAP_THRESHOLD, 64 * 1024);
        hmm_mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
    }
    return NULL;
}

/* The offset of the first byte that is not zero, or -1. */
static long first_dirty(const unsigned char *p, size_t size)
{
    for (size_t i = 0; i < size; i++)
        if (p[i] != 0)
            return (long)i;
    return -1;
}

int main(void)
{
    pthread_t flipper;
    alarm(TEST_TIMEOUT);
    setvbuf(stdout, NULL, _IOLBF, 0);
    CHECK(pthread_create(&flipper, NULL, flip_threshold, NULL) == 0, "pthread_create");
    int dirty_rounds = 0;
    for (int round = 0; round < ROUNDS; round++) {
        unsigned char *junk = hmm_malloc(SIZE);
        CHECK(junk != NULL, "malloc(%d)", SIZE);
        memset(junk, 0xff, SIZE);
        hmm_free(junk);
        unsigned char *p = hmm_calloc(1, SIZE);
        CHECK(p != NULL, "calloc(1, %d)", SIZE);
        long dirty = first_dirty(p, SIZE);
        if (dirty >= 0 && dirty_rounds++ == 0)
            printf("FAIL: round %d: calloc(1, %d) = %p has byte %ld = %#x\n", round, SIZE, (void *)p,
                   dirty, p[dirty]);
        hmm_free(p);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    CHECK(pthread_join(flipper, NULL) == 0, "pthread_join");
    printf("%d of %d callocs returned dirty memory\n", dirty_rounds, ROUNDS);
    return dirty_rounds ? 1 : 0;
}
