/* A burst freed in scrambled order goes back to the kernel in few system
 * calls: the free blocks its frees leave between blocks still in use are
 * purged one by one only from 64 KiB (PURGE_UNITS), and smaller ones wait
 * for their chunk to empty and go back whole.  Each madvise of a process
 * with two running threads is a TLB shootdown of the other core; purging
 * from 16 KiB, a 512 MiB burst's free made 44,000 calls of 12-40 KiB.
 * One thread allocates BURST bytes in blocks of 64 B..64 KiB (half of the
 * bytes below 1 KiB), writes them and frees them in a stride walk; the
 * ranges its frees purge (a madvise call each, without a vector) stay
 * below one per MIN_BYTES_PER_CALL freed (about 35 KiB a range measured;
 * 12 KiB when blocks were purged from 16 KiB), and the memory still goes back (the scrambled-burst test
 * holds the resident set to its bound).  Where the kernel takes a vector
 * of ranges (process_madvise on itself), the system calls, one TLB
 * shootdown each, stay below one per MIN_BYTES_PER_SYSCALL freed (240
 * calls for 3,757 ranges measured; one call per range before) once a
 * second thread has allocated; a single-threaded process makes one call
 * per range (the shootdowns a vector saves are of other cores).
 *
 * Test build (libhmm_test): counts the system calls through os.c. */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "hmm.h"
#include "internal.h"
#include "testutil.h"

#define MiB ((size_t)1 << 20)
#define BURST (128 * MiB)
#define MAX_BLOCKS 400000
#define STRIDE 7919u
#define MIN_BYTES_PER_CALL ((size_t)24 << 10)
#define MIN_BYTES_PER_SYSCALL ((size_t)256 << 10)

static unsigned char *block[MAX_BLOCKS];

/* The burst, freed; the ranges purged meanwhile and the system calls that
 * purged them. */
static size_t burst(uint64_t *rng, unsigned *ranges, unsigned *syscalls)
{
    size_t small = 0, large = 0, n = 0;
    while (small + large < BURST) {
        size_t size = small <= large ? rng_log_size(rng, 64, 1024) : rng_log_size(rng, 1024, 65536);
        CHECK(n < MAX_BLOCKS, "more than %d blocks", MAX_BLOCKS);
        CHECK((block[n] = hmm_malloc(size)) != NULL, "malloc(%zu) failed after %zu blocks", size, n);
        memset(block[n++], 0xb5, size);
        *(size < 1024 ? &small : &large) += size;
    }
    CHECK(n % STRIDE != 0, "the stride divides the block count");
    unsigned ranges_before = hmm_test_os_calls(OS_MADVISE), calls_before = hmm_test_os_purge_calls();
    for (size_t i = 0, at = 0; i < n; i++, at = (at + STRIDE) % n)
        hmm_free(block[at]);
    *ranges = hmm_test_os_calls(OS_MADVISE) - ranges_before;
    *syscalls = hmm_test_os_purge_calls() - calls_before;
    struct hmm_stats s;
    CHECK(hmm_stats(&s) == 0, "hmm_stats");
    printf("%zu blocks, %.1f MiB freed in %u ranges purged (%.1f KiB a range) by %u system calls; "
           "%.1f MiB returned so far\n", n, (double)(small + large) / MiB, *ranges,
           (double)(small + large) / (*ranges ? *ranges : 1) / 1024, *syscalls, (double)s.returned_bytes / MiB);
    CHECK((small + large) / MIN_BYTES_PER_CALL >= *ranges, "%u ranges purged for %.1f MiB freed: more than one a %zu KiB",
          *ranges, (double)(small + large) / MiB, MIN_BYTES_PER_CALL >> 10);
    return small + large;
}

static void *allocate_once(void *arg)
{
    (void)arg;
    hmm_free(hmm_malloc(64));
    return NULL;
}

int main(void)
{
    uint64_t rng = test_seed(8);
    unsigned ranges, syscalls;
    printf("one thread: ");
    burst(&rng, &ranges, &syscalls);
    CHECK(syscalls == ranges, "a single-threaded process purged %u ranges in %u system calls, not one each",
          ranges, syscalls);

    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, allocate_once, NULL) == 0 && pthread_join(thread, NULL) == 0, "a thread");
    printf("after a second thread: ");
    size_t freed = burst(&rng, &ranges, &syscalls);
    printf("the kernel %s process_madvise\n", hmm_test_os_purge_vectored() ? "takes" : "refuses");
    CHECK(!hmm_test_os_purge_vectored() || freed / MIN_BYTES_PER_SYSCALL >= syscalls,
          "%u system calls purged %u ranges: more than one a %zu KiB freed although the kernel takes a vector",
          syscalls, ranges, MIN_BYTES_PER_SYSCALL >> 10);
    CHECK(hmm_check() == 0, "hmm_check");
    return 0;
}
