/* When the maintenance thread cannot be started, hmm says so once and goes
 * on without it; it does not try again (and warn again) on every malloc
 * that misses the cache.
 *
 * The test re-executes itself with the default background_thread=auto, so
 * the thread is wanted once the process has two threads and 64 MiB in its
 * arenas.  Before that, it makes every later pthread_create without
 * attributes fail: pthread_setattr_default_np with a 1 TiB stack, which no
 * mapping can give (a second thread of its own gets an explicit small
 * stack).  Then 2,000 mallocs of 100 KiB (uncached: each misses the cache)
 * grow the arenas past 64 MiB and on; stderr must hold exactly one line, the
 * warning, and every block must be usable. */
#include "config.h"

#define _GNU_SOURCE 1
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag_child.h"
#include "hmm.h"
#include "testutil.h"

#define BLOCKS 2000
#define BLOCK_SIZE (100 * 1024)
#define WARNING "hmm: background_thread: cannot start the maintenance thread"

static pthread_barrier_t grown;

/* Bound to an arena (a thread of the process's count) until the blocks grew. */
static void *second_thread_main(void *arg)
{
    void *p = hmm_malloc(64);
    pthread_barrier_wait(&grown);
    hmm_free(p);
    return arg;
}

/* A second thread, alive while the blocks grow, on a stack that can be had. */
static pthread_t second_thread(void)
{
    pthread_attr_t attr;
    pthread_t thread;
    CHECK(pthread_attr_init(&attr) == 0 && pthread_attr_setstacksize(&attr, 256 * 1024) == 0,
          "pthread_attr");
    CHECK(pthread_create(&thread, &attr, second_thread_main, NULL) == 0, "pthread_create (small stack)");
    pthread_attr_destroy(&attr);
    return thread;
}

static int grow(void)
{
    pthread_attr_t huge;
    CHECK(pthread_attr_init(&huge) == 0 && pthread_attr_setstacksize(&huge, (size_t)1 << 40) == 0 &&
              pthread_setattr_default_np(&huge) == 0,
          "pthread_setattr_default_np");
    CHECK(pthread_barrier_init(&grown, NULL, 2) == 0, "pthread_barrier_init");
    pthread_t thread = second_thread();
    static void *blocks[BLOCKS];
    for (int i = 0; i < BLOCKS; i++) {
        blocks[i] = hmm_malloc(BLOCK_SIZE);
        CHECK(blocks[i] != NULL, "malloc(%d) #%d failed", BLOCK_SIZE, i);
        memset(blocks[i], i & 0xff, BLOCK_SIZE);
    }
    pthread_barrier_wait(&grown);
    for (int i = 0; i < BLOCKS; i++) {
        CHECK(((unsigned char *)blocks[i])[BLOCK_SIZE - 1] == (i & 0xff), "block %d lost its bytes", i);
        hmm_free(blocks[i]);
    }
    pthread_join(thread, NULL);
    printf("grown %d\n", BLOCKS);
    return 0;
}

int main(int argc, char **argv)
{
    alarm(TEST_TIMEOUT);
    if (argc > 1 && !strcmp(argv[1], "grow"))
        return grow();
    struct child c;
    child_self(&c, NO_OPTIONS, "grow", NULL, NULL);
    if (!child_exited(&c, 0) || child_value(&c, "grown", 0) != BLOCKS || count_lines(c.err) != 1 ||
        strncmp(c.err, WARNING, strlen(WARNING)) != 0) {
        printf("FAIL: maintenance thread that cannot start: %s, %d stderr lines, first [%.200s]\n",
               child_how(&c), count_lines(c.err), c.err);
        return 1;
    }
    printf("PASS: maintenance thread that cannot start: one warning in %d uncached mallocs: %s", BLOCKS,
           c.err);
    return 0;
}
