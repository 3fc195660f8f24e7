/* Issue 9: a free never waits for a walk of the registry (stats, check,
 * malloc_trim, the maintenance thread) or for a grace period.
 *
 * A walker stops inside registry_foreach (its visitor blocks until the test
 * lets it go).  Meanwhile threads retire arenas on free paths: a thread
 * frees the last block of an orphaned arena and exits (its cache flush
 * pushes the block to the orphan, which is retired there), and its own
 * arena, now empty, is retired as it exits; more threads allocate, free and
 * exit.  Each of them must finish while the walk is still stopped.  Once
 * the walk ends, a new thread gets one of the retired arenas back: retiring
 * without waiting does not leak them.
 *
 * Test build (libhmm_test): reaches into the engine through internal.h. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include "hmm.h"
#include "internal.h"
#include "testutil.h"

#define EXITERS 3
#define JOIN_SECONDS 60   /* a thread still running after this is stuck */

static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_moved = PTHREAD_COND_INITIALIZER;
static bool walk_stopped, walk_released, orphan_ready;
static void *orphan_block;
static struct arena *retired[2 + EXITERS];
static unsigned retired_count;

static void wait_for(bool *flag)
{
    pthread_mutex_lock(&gate);
    while (!*flag)
        pthread_cond_wait(&gate_moved, &gate);
    pthread_mutex_unlock(&gate);
}

static void set(bool *flag)
{
    pthread_mutex_lock(&gate);
    *flag = true;
    pthread_cond_broadcast(&gate_moved);
    pthread_mutex_unlock(&gate);
}

static void stop_in_walk(struct arena *a, void *ctx)
{
    (void)a;
    (void)ctx;
    if (!walk_stopped) {
        set(&walk_stopped);
        wait_for(&walk_released);
    }
}

static void *walk(void *arg)
{
    (void)arg;
    registry_foreach(stop_in_walk, NULL);
    return NULL;
}

static struct arena *my_arena(void)
{
    CHECK(hmm_thread_cache.arena != NULL, "the thread has no arena");
    return hmm_thread_cache.arena;
}

static void *leave_a_block(void *arg)
{
    (void)arg;
    orphan_block = hmm_malloc(100);
    CHECK(orphan_block != NULL, "hmm_malloc failed");
    retired[retired_count++] = my_arena();
    return NULL;
}

/* Bound before the orphan exists, so that it cannot adopt it. */
static void *free_the_orphans_block(void *arg)
{
    (void)arg;
    hmm_free(hmm_malloc(100));
    retired[retired_count++] = my_arena();
    set(&orphan_ready);
    wait_for(&walk_stopped);
    hmm_free(orphan_block);
    return NULL;
}

static void *allocate_free_and_exit(void *arg)
{
    (void)arg;
    hmm_free(hmm_malloc(200));
    retired[retired_count++] = my_arena();
    return NULL;
}

static void *which_arena(void *arg)
{
    hmm_free(hmm_malloc(300));
    *(struct arena **)arg = my_arena();
    return NULL;
}

static pthread_t start(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fn, arg) == 0, "pthread_create");
    return t;
}

static void join_within(pthread_t t, const char *what)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += JOIN_SECONDS;
    int err = pthread_timedjoin_np(t, NULL, &deadline);
    CHECK(err != ETIMEDOUT, "%s waited for the walk to end", what);
    CHECK(err == 0, "pthread_join: %d", err);
}

int main(void)
{
    alarm(4 * JOIN_SECONDS);
    pthread_t freer = start(free_the_orphans_block, NULL);
    wait_for(&orphan_ready);
    pthread_join(start(leave_a_block, NULL), NULL);

    pthread_t walker = start(walk, NULL);
    wait_for(&walk_stopped);
    join_within(freer, "freeing an orphan's last block and exiting");
    for (int i = 0; i < EXITERS; i++)
        join_within(start(allocate_free_and_exit, NULL), "a thread exit");
    set(&walk_released);
    pthread_join(walker, NULL);

    struct arena *reused = NULL;
    pthread_join(start(which_arena, &reused), NULL);
    bool found = false;
    for (unsigned i = 0; i < retired_count; i++)
        found |= reused == retired[i];
    CHECK(found, "a new thread got a fresh arena (%p), none of the %u retired during the walk",
          (void *)reused, retired_count);
    printf("frees and thread exits finished during a walk; a retired arena was reused after it\n");
    return 0;
}
