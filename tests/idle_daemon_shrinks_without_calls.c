/* An idle daemon shrinks without calling the allocator (issue 8).  A worker
 * thread allocates a 256 MiB burst (blocks of 64 B..64 KiB, half of the
 * bytes below 1 KiB), writes it, frees it in a scrambled order but keeps one
 * block in 4096 (a daemon's few long-lived objects, scattered), and goes to
 * sleep.  From then on nothing calls the allocator: the main thread only
 * reads /proc/self/statm every 100 ms.  With default options except
 * decay_ms=1000 -- never background_thread=true -- the resident set must be
 * back within 16 MiB of where it was before the burst within 2 x decay_ms
 * (and a second of grace for a loaded machine).
 *
 * The test re-executes itself with HMM_OPTIONS=decay_ms=1000 (the options
 * are read at the first allocation).  Uses the hmm_* names. */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diag_child.h"
#include "hmm.h"
#include "testutil.h"

#define MiB ((size_t)1 << 20)
#define BURST (256 * MiB)
#define MAX_BLOCKS 500000       /* about 382,000 at this size */
#define STRIDE 7919u            /* a prime: the walk visits every block once */
#define KEEP_EVERY 4096u        /* blocks that stay live: ~90 of them */
#define DECAY_MS 1000
#define GRACE_MS 1000
#define POLL_MS 100
#define SLACK (16 * MiB)

static unsigned char *block[MAX_BLOCKS];
static size_t blocks;
static size_t burst_peak;          /* RSS with the whole burst live */
static pthread_barrier_t burst_done, may_exit;

static void burst(void)
{
    uint64_t rng = 8;
    size_t small = 0, large = 0;
    while (small + large < BURST) {
        size_t size = small <= large ? rng_log_size(&rng, 64, 1024) : rng_log_size(&rng, 1024, 65536);
        CHECK(blocks < MAX_BLOCKS, "more than %d blocks", MAX_BLOCKS);
        block[blocks] = hmm_malloc(size);
        CHECK(block[blocks] != NULL, "malloc(%zu) failed", size);
        memset(block[blocks++], 0x1d, size);
        *(size < 1024 ? &small : &large) += size;
    }
    burst_peak = resident_bytes();
    CHECK(blocks % STRIDE != 0, "the stride divides the block count");
    for (size_t i = 0, at = 0; i < blocks; i++, at = (at + STRIDE) % blocks)
        if (at % KEEP_EVERY != 0)
            hmm_free(block[at]);
}

/* The worker: the burst, then asleep (still alive) until the test ends. */
static void *worker(void *arg)
{
    (void)arg;
    burst();
    pthread_barrier_wait(&burst_done);
    pthread_barrier_wait(&may_exit);
    for (size_t at = 0; at < blocks; at += KEEP_EVERY)
        hmm_free(block[at]);
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec pause = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&pause, &pause) != 0)
        ;
}

/* In the re-executed child: baseline, burst, then watch without calls. */
static int idle_daemon(void)
{
    pthread_t t;
    size_t series[(2 * DECAY_MS + GRACE_MS) / POLL_MS + 1];
    int polls = 0, back = -1;

    pthread_barrier_init(&burst_done, NULL, 2);
    pthread_barrier_init(&may_exit, NULL, 2);
    void *warm = hmm_malloc(64);   /* hmm reads its options here */
    hmm_free(warm);
    size_t rss0 = resident_bytes();
    CHECK(pthread_create(&t, NULL, worker, NULL) == 0, "pthread_create");
    pthread_barrier_wait(&burst_done);
    size_t peak = resident_bytes();
    while (polls < (int)(sizeof(series) / sizeof(series[0]))) {
        series[polls] = resident_bytes();
        if (series[polls++] <= rss0 + SLACK) {
            back = (polls - 1) * POLL_MS;
            break;
        }
        sleep_ms(POLL_MS);
    }
    printf("RSS before the burst %.1f MiB, at its peak %.1f MiB, after its frees %.1f MiB (%zu blocks, %zu kept)\n",
           (double)rss0 / MiB, (double)burst_peak / MiB, (double)peak / MiB, blocks,
           (blocks + KEEP_EVERY - 1) / KEEP_EVERY);
    /* the burst was resident: the shrink below is not of memory never touched */
    CHECK(burst_peak >= rss0 + BURST - SLACK, "the burst raised RSS only to %.1f MiB (from %.1f)",
          (double)burst_peak / MiB, (double)rss0 / MiB);
    for (int i = 0; i < polls; i++)
        printf("idle %5d ms: RSS %.1f MiB\n", i * POLL_MS, (double)series[i] / MiB);
    pthread_barrier_wait(&may_exit);
    pthread_join(t, NULL);
    CHECK(back >= 0, "still %.1f MiB resident after %d ms idle (%.1f MiB before the burst)",
          (double)series[polls - 1] / MiB, (polls - 1) * POLL_MS, (double)rss0 / MiB);
    printf("back within %zu MiB of the start after %d ms idle\n", SLACK / MiB, back);
    return 0;
}

int main(int argc, char **argv)
{
    static struct child c;
    char options[64];

    if (argc == 2 && !strcmp(argv[1], "idle"))
        return idle_daemon();
    snprintf(options, sizeof(options), "decay_ms=%d", DECAY_MS);
    child_self(&c, options, "idle", NULL, NULL);
    child_show(&c, options);
    CHECK(child_exited(&c, 0), "the idle daemon ended with %s", child_how(&c));
    return 0;
}
