/* Issue 9: a program that uses liburcu itself can call hmm's walkers and
 * free from its registered threads, inside and outside its own read-side
 * sections, while it runs its own grace periods: hmm touches none of the
 * program's RCU state.
 *
 * Registered worker threads, each round: a short-lived thread allocates
 * blocks and exits (its arena is orphaned, still holding them); the worker,
 * inside its read-side section, frees them and calls malloc_trim(0) (which
 * flushes its cache to the orphan: the orphan is retired on that free path),
 * hmm_stats, hmm_stats_print, mallinfo2 and hmm_check; then the same outside
 * the section.  A registered thread runs synchronize_rcu in a loop all the
 * while, and at the end main calls malloc_stats and synchronize_rcu from a
 * registered thread.  Every thread unregisters itself at the end, which
 * liburcu refuses (assertion) if anyone unregistered it before.
 *
 * Built twice: with liburcu's memb flavour, and with -DAPP_RCU_QSBR with the
 * qsbr flavour.  The hmm_* names, so that it also runs in a
 * --disable-override build (they are malloc_trim... in an override build). */
#include "config.h"

#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

#include "hmm.h"
#include "testutil.h"

#ifdef APP_RCU_QSBR
#include <urcu/urcu-qsbr.h>
#define FLAVOUR "qsbr"
static void app_register(void) { urcu_qsbr_register_thread(); }
static void app_unregister(void) { urcu_qsbr_unregister_thread(); }
static void app_read_lock(void) { urcu_qsbr_read_lock(); }
static void app_read_unlock(void) { urcu_qsbr_read_unlock(); urcu_qsbr_quiescent_state(); }
static void app_synchronize(void) { urcu_qsbr_synchronize_rcu(); }
#else
#include <urcu/urcu-memb.h>
#define FLAVOUR "memb"
static void app_register(void) { urcu_memb_register_thread(); }
static void app_unregister(void) { urcu_memb_unregister_thread(); }
static void app_read_lock(void) { urcu_memb_read_lock(); }
static void app_read_unlock(void) { urcu_memb_read_unlock(); }
static void app_synchronize(void) { urcu_memb_synchronize_rcu(); }
#endif

#define WORKERS 3
#define ROUNDS 20
#define BLOCKS 64

static int devnull;
static bool workers_done;

struct leaver {
    void *blocks[BLOCKS];
    uint64_t seed;
};

static void *leave_blocks(void *arg)
{
    struct leaver *l = arg;
    for (int i = 0; i < BLOCKS; i++) {
        size_t size = rng_range(&l->seed, 16, 4096);
        l->blocks[i] = hmm_malloc(size);
        CHECK(l->blocks[i] != NULL, "hmm_malloc(%zu) failed", size);
        memset(l->blocks[i], 0xa5, size);
    }
    return NULL;
}

static void walk_everything(void)
{
    struct hmm_stats s;
    CHECK(hmm_malloc_trim(0) >= 0, "malloc_trim");
    CHECK(hmm_stats(&s) == 0, "hmm_stats failed");
    CHECK(hmm_stats_print(devnull, "text") == 0, "hmm_stats_print failed");
    (void)hmm_mallinfo2();
    CHECK(hmm_check() == 0, "hmm_check found the heap broken");
}

static void *work(void *arg)
{
    struct leaver l = { .seed = (uint64_t)(uintptr_t)arg };
    app_register();
    for (int round = 0; round < ROUNDS; round++) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, leave_blocks, &l) == 0, "pthread_create");
        CHECK(pthread_join(t, NULL) == 0, "pthread_join");
        app_read_lock();
        for (int i = 0; i < BLOCKS; i++)
            hmm_free(l.blocks[i]);
        walk_everything();
        app_read_unlock();
        walk_everything();
    }
    app_unregister();
    return NULL;
}

static void *synchronize_until_done(void *arg)
{
    (void)arg;
    app_register();
    while (!__atomic_load_n(&workers_done, __ATOMIC_ACQUIRE))
        app_synchronize();
    app_unregister();
    return NULL;
}

/* malloc_stats writes to stderr: send it to /dev/null for the call. */
static void malloc_stats_quietly(void)
{
    int saved = dup(2);
    CHECK(saved >= 0 && dup2(devnull, 2) == 2, "cannot redirect stderr");
    hmm_malloc_stats();
    CHECK(dup2(saved, 2) == 2, "cannot restore stderr");
    close(saved);
}

int main(void)
{
    pthread_t workers[WORKERS], syncer;
    alarm(120);
    devnull = open("/dev/null", O_WRONLY);
    CHECK(devnull >= 0, "cannot open /dev/null");
    CHECK(pthread_create(&syncer, NULL, synchronize_until_done, NULL) == 0, "pthread_create");
    for (uintptr_t i = 0; i < WORKERS; i++)
        CHECK(pthread_create(&workers[i], NULL, work, (void *)(i + 1)) == 0, "pthread_create");
    for (int i = 0; i < WORKERS; i++)
        CHECK(pthread_join(workers[i], NULL) == 0, "pthread_join");
    __atomic_store_n(&workers_done, true, __ATOMIC_RELEASE);
    CHECK(pthread_join(syncer, NULL) == 0, "pthread_join");

    app_register();
    app_read_lock();
    malloc_stats_quietly();
    walk_everything();
    app_read_unlock();
    app_synchronize();
    app_unregister();
    printf("liburcu %s: walkers and frees from registered threads, in and out of read-side sections: ok\n",
           FLAVOUR);
    return 0;
}
