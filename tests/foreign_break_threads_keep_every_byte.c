/* Other code in the program moves the break while threads allocate, and
 * every byte survives.  Two threads malloc, fill, check and free blocks of
 * up to 1.5 MiB all along, with no trim threshold and no top pad, so that
 * hmm grows and lowers the break all the time.  Meanwhile, first the main
 * thread keeps growing the break with sbrk(+N), fills its piece, checks it
 * and lowers the break again while its piece is still the top; then the
 * main thread and another thread only grow it, at the same time.  At the
 * end every foreign piece kept and every block is intact, hmm_check()
 * passes, and a foreign sbrk or brk that would cut into hmm's heap fails
 * with ENOMEM and leaves the break where it was.
 *
 * Only libhmm's own sbrk and brk can make this safe (glibc's sbrk is not
 * atomic), so the test needs the override build: it skips without it. */
#include "config.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "hmm.h"
#include "testutil.h"

#define KiB ((size_t)1 << 10)
#define SLOTS 48
#define ROUNDS 1000
#define GROWER_PIECES 200

struct piece {
    char *start;
    size_t size;
    uint64_t key;
};

static struct piece grown[2][GROWER_PIECES];
static struct piece kept[ROUNDS];
static size_t kept_count;
static int stop;

static void piece_check(const struct piece *p, const char *who)
{
    size_t bad = pattern_check(p->start, p->size, p->key);
    CHECK(bad == (size_t)-1, "%s piece %p of %zu bytes changed at offset %zu", who,
          (void *)p->start, p->size, bad);
}

static void *allocator(void *arg)
{
    uint64_t r = (uintptr_t)arg, gen = 0;
    void *blocks[SLOTS] = { 0 };
    size_t sizes[SLOTS];
    uint64_t keys[SLOTS];
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        size_t i = rng_range(&r, 0, SLOTS - 1);
        if (blocks[i] != NULL) {
            size_t bad = pattern_check(blocks[i], sizes[i], keys[i]);
            CHECK(bad == (size_t)-1, "block %p of %zu bytes changed at offset %zu",
                  blocks[i], sizes[i], bad);
            hmm_free(blocks[i]);
        }
        sizes[i] = rng_range(&r, 1, 1536 * KiB);
        keys[i] = ++gen * 131 + (uintptr_t)arg;
        blocks[i] = hmm_malloc(sizes[i]);
        CHECK(blocks[i] != NULL, "malloc(%zu) failed", sizes[i]);
        pattern_fill(blocks[i], sizes[i], keys[i]);
    }
    for (size_t i = 0; i < SLOTS; i++)
        if (blocks[i] != NULL) {
            size_t bad = pattern_check(blocks[i], sizes[i], keys[i]);
            CHECK(bad == (size_t)-1, "block %p changed at offset %zu", blocks[i], bad);
            hmm_free(blocks[i]);
        }
    return NULL;
}

/* Only grows the break, a piece at a time, and never lowers it. */
static void *grower(void *arg)
{
    uintptr_t who = (uintptr_t)arg;
    uint64_t r = who;
    for (size_t i = 0; i < GROWER_PIECES; i++) {
        size_t size = rng_range(&r, 1, 64) * KiB;
        char *start = sbrk((intptr_t)size);
        CHECK(start != (void *)-1, "the grower's sbrk(%zu) failed", size);
        grown[who][i] = (struct piece){ start, size, 0x5000 + i + who * GROWER_PIECES };
        pattern_fill(start, size, grown[who][i].key);
        sched_yield();
    }
    return NULL;
}

/* One round of the main thread: grow, fill, check, and lower the break
 * again if the piece is still the top (else keep it for the end). */
static void foreign_round(uint64_t *r, size_t round)
{
    size_t size = rng_range(r, 1, 256) * KiB;
    struct piece p = { sbrk((intptr_t)size), size, 0x9000 + round };
    CHECK(p.start != (void *)-1, "sbrk(%zu) failed", size);
    pattern_fill(p.start, p.size, p.key);
    sched_yield();
    piece_check(&p, "main thread's");
    if ((char *)sbrk(0) == p.start + p.size && sbrk(-(intptr_t)size) != (void *)-1)
        return;
    kept[kept_count++] = p;
}

/* A foreign lowering that would cut into hmm's heap fails, whoever holds
 * the top (lowering below hmm's top segment would cut it). */
static void cutting_hmm_fails(void)
{
    struct hmm_stats s;
    void *block = hmm_malloc(1024 * KiB);
    CHECK(block != NULL && hmm_stats(&s) == 0, "malloc or hmm_stats failed");
    char *top = sbrk(0), *hmm_end = (char *)s.region_break;
    if (hmm_end == NULL) {
        printf("hmm's heap is not on the break: refusal not checked\n");
        hmm_free(block);
        return;
    }
    intptr_t cut = (intptr_t)(top - hmm_end) + (intptr_t)(4 * KiB);
    errno = 0;
    CHECK(sbrk(-cut) == (void *)-1 && errno == ENOMEM,
          "sbrk(-%zd) from %p, below hmm's top %p, did not fail with ENOMEM", (ssize_t)cut,
          (void *)top, (void *)hmm_end);
    errno = 0;
    CHECK(brk(hmm_end - 4 * KiB) == -1 && errno == ENOMEM,
          "brk(%p), below hmm's top %p, did not fail with ENOMEM", (void *)(hmm_end - 4 * KiB),
          (void *)hmm_end);
    CHECK(sbrk(0) == top, "a refused lowering moved the break");
    hmm_free(block);
}

int main(void)
{
#if !defined(HMM_OVERRIDE)
    printf("--disable-override build: libhmm does not export sbrk\n");
    return TEST_SKIP;
#else
    uint64_t r = test_seed(11);
    pthread_t threads[3];

    alarm(TEST_TIMEOUT);
    if (sbrk(4096) == (void *)-1) {
        printf("sbrk refused to move the break: nothing to test\n");
        return TEST_SKIP;
    }
    hmm_mallopt(M_TRIM_THRESHOLD, 0);
    hmm_mallopt(M_TOP_PAD, 0);
    cutting_hmm_fails();
    for (uintptr_t i = 0; i < 2; i++)
        CHECK(pthread_create(&threads[i], NULL, allocator, (void *)(r + i)) == 0, "pthread_create");
    for (size_t round = 0; round < ROUNDS; round++)
        foreign_round(&r, round);
    CHECK(pthread_create(&threads[2], NULL, grower, (void *)1) == 0, "pthread_create");
    grower((void *)0);
    CHECK(pthread_join(threads[2], NULL) == 0, "pthread_join");
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++)
        CHECK(pthread_join(threads[i], NULL) == 0, "pthread_join");

    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < GROWER_PIECES; i++) {
            piece_check(&grown[0][i], "main thread's grown");
            piece_check(&grown[1][i], "grower's");
        }
        for (size_t i = 0; i < kept_count; i++)
            piece_check(&kept[i], "main thread's kept");
        cutting_hmm_fails();
        CHECK(hmm_malloc_trim(0) >= 0, "malloc_trim");
    }
    int rc = hmm_check();
    CHECK(rc == 0, "hmm_check() returned %d", rc);
    printf("%zu foreign pieces kept, %d grown by two threads, every byte intact\n", kept_count,
           2 * GROWER_PIECES);
    return 0;
#endif
}
