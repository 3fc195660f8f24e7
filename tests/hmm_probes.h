/* Pieces of the programs that probe hmm through its hmm_* names (the probe
 * children of the options, mallopt and diagnostics tests): threads that
 * hold blocks while the statistics are read, a 64 MiB burst, and how much
 * of a freed block reads as junk. */
#ifndef HMM_PROBES_H
#define HMM_PROBES_H

#include <pthread.h>
#include <string.h>

#include "hmm.h"
#include "testutil.h"

#define HOLDERS_MAX 64

static pthread_barrier_t holders_held, holders_release;
static size_t holder_big_bytes;

static inline void *holder(void *arg)
{
    void *p = hmm_malloc(1000), *q = hmm_malloc(holder_big_bytes);
    CHECK(p && q, "malloc");
    (void)arg;
    pthread_barrier_wait(&holders_held);
    pthread_barrier_wait(&holders_release);
    hmm_free(p);
    hmm_free(q);
    return NULL;
}

/* hmm_stats while n threads each hold a 1000-byte and a big_bytes block
 * and this one holds a mine_bytes block: each thread has its arena. */
static inline struct hmm_stats stats_while_threads_hold(int n, size_t big_bytes, size_t mine_bytes)
{
    pthread_t t[HOLDERS_MAX];
    struct hmm_stats s;
    CHECK(n > 0 && n <= HOLDERS_MAX, "1 to %d threads", HOLDERS_MAX);
    holder_big_bytes = big_bytes;
    void *mine = hmm_malloc(mine_bytes);
    CHECK(pthread_barrier_init(&holders_held, NULL, (unsigned)n + 1) == 0, "barrier");
    CHECK(pthread_barrier_init(&holders_release, NULL, (unsigned)n + 1) == 0, "barrier");
    for (int i = 0; i < n; i++)
        CHECK(pthread_create(&t[i], NULL, holder, NULL) == 0, "pthread_create");
    pthread_barrier_wait(&holders_held);
    CHECK(hmm_stats(&s) == 0, "hmm_stats");
    pthread_barrier_wait(&holders_release);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&holders_held);
    pthread_barrier_destroy(&holders_release);
    hmm_free(mine);
    return s;
}

/* 64 MiB of 96 KiB blocks (above the largest cached class, so that no
 * thread cache keeps one), every byte written, then freed. */
static inline void burst_64mib(void)
{
    static void *blocks[683];
    for (int i = 0; i < 683; i++) {
        blocks[i] = hmm_malloc(96 << 10);
        CHECK(blocks[i] != NULL, "malloc");
        memset(blocks[i], 0x77, 96 << 10);
    }
    for (int i = 0; i < 683; i++)
        hmm_free(blocks[i]);
}

/* Frees a written 100-byte block between two live ones and counts the
 * bytes that then read as junk (0xdf) of the *of after the first 16 (where
 * the bin links, or the cache's link, live). */
static inline size_t junk_after_free(size_t *of)
{
    unsigned char *a = hmm_malloc(100), *p = hmm_malloc(100), *c = hmm_malloc(100);
    CHECK(a && p && c, "malloc");
    size_t usable = hmm_malloc_usable_size(p), junk = 0;
    memset(p, 0x55, usable);
    hmm_free(p);
    for (size_t i = 16; i < usable; i++)
        junk += p[i] == 0xdf;
    *of = usable - 16;
    hmm_free(a);
    hmm_free(c);
    return junk;
}

#endif
