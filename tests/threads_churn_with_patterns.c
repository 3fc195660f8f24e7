/* Eight threads allocate blocks of random sizes, fill every byte with a
 * pattern derived from (address, size, seed), and swap blocks through a
 * mutex-protected handoff queues (one inbox per thread), so that about half of the frees (and some
 * reallocs) happen in a thread that did not allocate the block.  Every block
 * is verified before it is freed or reallocated.  A checker thread runs
 * hmm_check() while the churn goes on, and the heap must be sound at the
 * end.  A second wave of threads frees the blocks the first wave (whose
 * threads have exited) left in their inboxes.
 *
 * Uses the hmm_* names only, so it runs on --disable-override builds too.
 * HMM_TEST_SEED=<n> changes the seed; HMM_TEST_ITERS=<n> the length. */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "hmm.h"
#include "testutil.h"

#define NTHREADS 8
#define LOCAL 128        /* blocks a thread keeps for itself */
#define QCAP 4096        /* handoff queue capacity */

struct item {
    unsigned char *p;
    size_t size;
    int owner;           /* thread that allocated it */
};

/* One inbox per thread: others push blocks into it, only its thread (or
 * main at the very end) pops them, so every block taken from an inbox was
 * allocated by another thread. */
struct inbox {
    pthread_mutex_t lock;
    struct item ring[QCAP];
    size_t head, count;
};
static struct inbox inbox[NTHREADS];

static uint64_t seed;
static unsigned long iters;
static int churning;
static unsigned long long total_frees, remote_frees, remote_reallocs, checks_run;
static pthread_mutex_t totals_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t key_of(const void *p, size_t size)
{
    return (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull ^ (uint64_t)size * 0xD6E8FEB86659FD93ull ^ seed;
}

static int q_push(int to, struct item it)
{
    struct inbox *q = &inbox[to];
    int ok = 0;
    pthread_mutex_lock(&q->lock);
    if (q->count < QCAP) {
        q->ring[(q->head + q->count++) % QCAP] = it;
        ok = 1;
    }
    pthread_mutex_unlock(&q->lock);
    return ok;
}

static int q_pop(int from, struct item *it)
{
    struct inbox *q = &inbox[from];
    int ok = 0;
    pthread_mutex_lock(&q->lock);
    if (q->count) {
        *it = q->ring[q->head];
        q->head = (q->head + 1) % QCAP;
        q->count--;
        ok = 1;
    }
    pthread_mutex_unlock(&q->lock);
    return ok;
}

static size_t queued(void)
{
    size_t n = 0;
    int i;
    for (i = 0; i < NTHREADS; i++) {
        pthread_mutex_lock(&inbox[i].lock);
        n += inbox[i].count;
        pthread_mutex_unlock(&inbox[i].lock);
    }
    return n;
}

static size_t random_size(uint64_t *r)
{
    static const struct size_band mix[] = {
        { 700, 0, 512 }, { 250, 513, 8192 }, { 48, 8193, 128 << 10 }, { 2, (128 << 10) + 1, 2 << 20 },
    };
    return rng_mix_size(r, mix, sizeof(mix) / sizeof(mix[0]));
}

static void verify(const struct item *it, int self, const char *when)
{
    size_t bad = pattern_check(it->p, it->size, key_of(it->p, it->size));
    CHECK(bad == (size_t)-1,
          "thread %d, %s: block %p of %zu bytes allocated by thread %d corrupted at offset %zu",
          self, when, (void *)it->p, it->size, it->owner, bad);
}

static struct item make(uint64_t *r, int self)
{
    struct item it;
    size_t size = random_size(r);
    unsigned how = (unsigned)rng_range(r, 0, 9);
    if (how == 0) {
        size_t i;
        it.p = hmm_calloc(1, size);
        CHECK(it.p != NULL, "thread %d: calloc(1, %zu) failed", self, size);
        for (i = 0; i < size; i++)
            CHECK(it.p[i] == 0, "thread %d: calloc(%zu) byte %zu is 0x%02x", self, size, i,
                  it.p[i]);
    } else if (how == 1) {
        it.p = hmm_memalign((size_t)64 << rng_range(r, 0, 6), size);
        CHECK(it.p != NULL, "thread %d: memalign(.., %zu) failed", self, size);
    } else {
        it.p = hmm_malloc(size);
        CHECK(it.p != NULL, "thread %d: malloc(%zu) failed", self, size);
    }
    CHECK(is_aligned(it.p, 16), "thread %d: got %p for %zu bytes", self, (void *)it.p, size);
    CHECK(hmm_malloc_usable_size(it.p) >= size, "thread %d: usable %zu < %zu", self,
          hmm_malloc_usable_size(it.p), size);
    it.size = size;
    it.owner = self;
    pattern_fill(it.p, size, key_of(it.p, size));
    return it;
}

static void drop(struct item *it, int self, unsigned long *frees, unsigned long *remote)
{
    verify(it, self, "before free");
    if (it->size % 3 == 0)
        hmm_free_sized(it->p, it->size);
    else
        hmm_free(it->p);
    (*frees)++;
    if (it->owner != self)
        (*remote)++;
    it->p = NULL;
}

/* realloc of a block that may belong to another thread's arena */
static void resize(uint64_t *r, struct item *it, int self, unsigned long *remote_re)
{
    size_t nsize = random_size(r) + 1, keep = it->size < nsize ? it->size : nsize, bad;
    unsigned char *np;
    verify(it, self, "before realloc");
    np = hmm_realloc(it->p, nsize);
    CHECK(np != NULL, "thread %d: realloc(%zu -> %zu) failed", self, it->size, nsize);
    bad = pattern_check(np, keep, key_of(it->p, it->size));
    CHECK(bad == (size_t)-1, "thread %d: realloc(%zu -> %zu) of a block from thread %d "
          "lost the contents at offset %zu", self, it->size, nsize, it->owner, bad);
    if (it->owner != self)
        (*remote_re)++;
    it->p = np;
    it->size = nsize;
    it->owner = self;
    pattern_fill(np, nsize, key_of(np, nsize));
}

static void *churn(void *arg)
{
    int self = (int)(intptr_t)arg;
    uint64_t r = seed * 1000003u + (uint64_t)self;
    struct item local[LOCAL];
    unsigned long i, frees = 0, remote = 0, remote_re = 0;
    size_t n = 0, k;

    for (i = 0; i < iters; i++) {
        struct item it;
        unsigned what = (unsigned)rng_range(&r, 0, 99);

        if (what < 45) {
            /* Allocate; hand about half of the new blocks to others. */
            it = make(&r, self);
            if (rng_range(&r, 0, 1) &&
                q_push((self + 1 + (int)rng_range(&r, 0, NTHREADS - 2)) % NTHREADS, it))
                continue;
            if (n == LOCAL) {
                k = rng_range(&r, 0, LOCAL - 1);
                drop(&local[k], self, &frees, &remote);
                local[k] = it;
            } else {
                local[n++] = it;
            }
        } else if (what < 85) {
            /* Take a block another thread allocated. */
            if (!q_pop(self, &it))
                continue;
            if (rng_range(&r, 0, 7) == 0) {
                resize(&r, &it, self, &remote_re);
                if (n < LOCAL) {
                    local[n++] = it;
                    continue;
                }
            }
            drop(&it, self, &frees, &remote);
        } else if (what < 95) {
            if (n) {
                k = rng_range(&r, 0, n - 1);
                drop(&local[k], self, &frees, &remote);
                local[k] = local[--n];
            }
        } else {
            if (n) {
                k = rng_range(&r, 0, n - 1);
                resize(&r, &local[k], self, &remote_re);
            }
        }
    }
    while (n)
        drop(&local[--n], self, &frees, &remote);

    pthread_mutex_lock(&totals_lock);
    total_frees += frees;
    remote_frees += remote;
    remote_reallocs += remote_re;
    pthread_mutex_unlock(&totals_lock);
    return NULL;
}

static void *checker(void *arg)
{
    struct timespec ms = { 0, 2000000 };
    (void)arg;
    while (__atomic_load_n(&churning, __ATOMIC_ACQUIRE)) {
        int rc = hmm_check();
        CHECK(rc == 0, "hmm_check() returned %d during the churn", rc);
        checks_run++;
        nanosleep(&ms, NULL);
    }
    return NULL;
}

static void wave(const char *name)
{
    pthread_t t[NTHREADS], c;
    int i, rc;

    __atomic_store_n(&churning, 1, __ATOMIC_RELEASE);
    rc = pthread_create(&c, NULL, checker, NULL);
    CHECK(rc == 0, "pthread_create: %d", rc);
    for (i = 0; i < NTHREADS; i++) {
        rc = pthread_create(&t[i], NULL, churn, (void *)(intptr_t)i);
        CHECK(rc == 0, "pthread_create: %d", rc);
    }
    for (i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    __atomic_store_n(&churning, 0, __ATOMIC_RELEASE);
    pthread_join(c, NULL);
    printf("%s: %llu frees so far, %llu by another thread, %llu remote reallocs, "
           "%zu blocks left in the queue, %llu concurrent checks\n", name, total_frees,
           remote_frees, remote_reallocs, queued(), checks_run);
    fflush(stdout);
    rc = hmm_check();
    CHECK(rc == 0, "hmm_check() returned %d after %s", rc, name);
}

int main(void)
{
    const char *it_env = getenv("HMM_TEST_ITERS");
    struct item it;
    unsigned long left = 0, lf = 0, lr = 0;
    int rc, i;

    seed = test_seed(7);
    alarm(TEST_TIMEOUT);   /* a hang (deadlock) fails instead of blocking make check */
    for (i = 0; i < NTHREADS; i++)
        pthread_mutex_init(&inbox[i].lock, NULL);
    iters = it_env && *it_env ? strtoul(it_env, NULL, 0) : 40000;

    /* Wave 1 leaves blocks in the queue when its threads exit; wave 2's
     * threads free them (their owners are gone by then). */
    wave("wave 1");
    wave("wave 2");

    for (i = 0; i < NTHREADS; i++)
        while (q_pop(i, &it)) {
            drop(&it, -1, &lf, &lr);
            left++;
        }
    total_frees += lf;
    remote_frees += lr;
    rc = hmm_check();
    CHECK(rc == 0, "hmm_check() returned %d at the end", rc);

    /* The test must really have freed across threads. */
    CHECK(remote_frees * 4 >= total_frees,
          "only %llu of %llu frees were by another thread", remote_frees, total_frees);
    CHECK(remote_reallocs > 0, "no realloc of another thread's block happened");
    printf("%llu frees, %llu (%.0f%%) by a thread that did not allocate the block; heap sound\n",
           total_frees, remote_frees, 100.0 * (double)remote_frees / (double)total_frees);
    return 0;
}
