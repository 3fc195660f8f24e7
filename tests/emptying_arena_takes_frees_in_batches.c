/* While a thread's own arena is being emptied (the end of a burst), its
 * cache is closed and the blocks it frees go back to the arena in batches
 * of CLOSING_BATCH (one lock and merges fetched ahead per batch), not one
 * lock and one cold merge per free.  What may wait is bounded: after the
 * last free fewer than a batch of blocks are on the closing list, hmm_stats
 * counts them as the thread's cached bytes, and the next malloc that
 * misses, malloc_trim or the thread's exit sends them back.  A block
 * waiting there is free: freeing it again is caught as a double free.
 *
 * Test build (libhmm_test): reads the cache and the arena through
 * internal.h. */
#include "config.h"

#include <pthread.h>

#include "diag_child.h"
#include "hmm.h"
#include "internal.h"
#include "testutil.h"

#define BLOCKS 16384
#define SIZE 1500               /* 24 MiB in all: the arena empties past SPARSE_SLACK */
#define STRIDE 7919u            /* a prime: the walk visits every block once */
#define UNCACHED 100000         /* past the classes, below the mmap threshold: an arena's */

static void *block[BLOCKS];

static size_t arena_used(void)
{
    return counter_read(&hmm_thread_cache.arena->used_bytes);
}

static size_t closing_bytes(size_t *blocks)
{
    size_t bytes = 0;
    *blocks = 0;
    for (struct cache_entry *e = hmm_thread_cache.closing; e != NULL; e = e->next, (*blocks)++) {
        CHECK(block_cached(block_of(e)), "a block on the closing list is not cached");
        bytes += (size_t)block_of(e)->units << UNIT_SHIFT;
    }
    return bytes;
}

/* Allocate the burst and free it in a stride walk; returns the block freed
 * last. */
static void *burst(void)
{
    for (size_t i = 0; i < BLOCKS; i++)
        CHECK((block[i] = hmm_malloc(SIZE)) != NULL, "malloc(%d) failed after %zu blocks", SIZE, i);
    size_t at = 0;
    for (size_t i = 0; i < BLOCKS - 1; i++, at = (at + STRIDE) % BLOCKS)
        hmm_free(block[at]);
    hmm_free(block[at]);
    return block[at];
}

/* A thread that ends with blocks on its closing list: they go back with
 * its cache, and nothing of its burst stays in use. */
static void *burst_and_exit(void *arg)
{
    burst();
    *(unsigned *)arg = hmm_thread_cache.closing_count;
    return NULL;
}

static size_t in_use_bytes(void)
{
    struct hmm_stats s;
    CHECK(hmm_stats(&s) == 0, "hmm_stats");
    return s.in_use_bytes;
}

static int double_free_child(void)
{
    void *last = burst();
    CHECK(hmm_thread_cache.closing != NULL, "the last free did not wait on the closing list");
    hmm_free(last);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "double") == 0)
        return double_free_child();

    hmm_free(hmm_malloc(1));
    size_t live = arena_used();
    burst();
    CHECK(hmm_thread_cache.closed, "the cache did not close while its arena emptied");
    size_t waiting;
    size_t bytes = closing_bytes(&waiting);
    CHECK(waiting == hmm_thread_cache.closing_count && waiting < CLOSING_BATCH,
          "%zu blocks wait on the closing list (count %u, batch %u)", waiting, hmm_thread_cache.closing_count,
          CLOSING_BATCH);
    CHECK(arena_used() >= bytes && arena_used() - bytes <= live,
          "the arena holds %zu bytes in use, %zu live before the burst (cached blocks included) and %zu closing",
          arena_used(), live, bytes);
    CHECK(hmm_check() == 0, "hmm_check with blocks on the closing list");

    /* A malloc that misses sends them back: of a size no bin holds, and
     * after a second burst of a cached class. */
    size_t sizes[] = { UNCACHED, SIZE };
    for (int round = 0; round < 2; round++) {
        if (round > 0) {
            burst();
            CHECK(hmm_thread_cache.closing != NULL, "the second burst left nothing on the closing list");
        }
        void *p = hmm_malloc(sizes[round]);
        CHECK(p != NULL, "malloc(%zu) after the burst", sizes[round]);
        CHECK(hmm_thread_cache.closing == NULL && hmm_thread_cache.closing_count == 0,
              "malloc(%zu) after the burst left %u blocks on the closing list", sizes[round],
              hmm_thread_cache.closing_count);
        hmm_free(p);
        CHECK(hmm_check() == 0, "hmm_check after the closing list went back");
    }

    /* hmm_stats counts them as cached; malloc_trim sends them back */
    burst();
    bytes = closing_bytes(&waiting);
    CHECK(waiting > 0, "the third burst left nothing on the closing list");
    struct hmm_stats s;
    size_t usable = bytes - waiting * BLOCK_HEADER;
    CHECK(hmm_stats(&s) == 0 && s.cached_bytes >= usable,
          "hmm_stats counts %zu bytes cached, %zu of them (usable) wait on the closing list", s.cached_bytes, usable);
    hmm_malloc_trim(0);
    CHECK(hmm_thread_cache.closing == NULL && hmm_thread_cache.closing_count == 0,
          "malloc_trim left %u blocks on the closing list", hmm_thread_cache.closing_count);
    CHECK(arena_used() <= live, "after malloc_trim the arena holds %zu bytes in use, %zu before the burst",
          arena_used(), live);

    size_t before = in_use_bytes();
    unsigned left = 0;
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, burst_and_exit, &left) == 0 && pthread_join(thread, NULL) == 0, "a thread");
    CHECK(left > 0, "the thread's burst left nothing on its closing list");
    CHECK(in_use_bytes() == before, "%u blocks waited on an exiting thread's closing list: %zu bytes in use after it, "
          "%zu before", left, in_use_bytes(), before);
    CHECK(hmm_check() == 0, "hmm_check after the thread's exit");

    struct child c;
    char *args[] = { argv[0], "double", NULL };
    child_run(&c, "/proc/self/exe", NO_OPTIONS, args);
    CHECK(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGABRT, "a double free of a closing block did not abort "
          "(status %#x, stderr: %s)", c.status, c.err);
    CHECK(strstr(c.err, "double free of") != NULL && strchr(c.err, '\n') == c.err + c.err_len - 1,
          "a double free of a closing block: expected one line naming it, got: %s", c.err);
    printf("ok: %zu blocks waited after the last free\n", waiting);
    return 0;
}
