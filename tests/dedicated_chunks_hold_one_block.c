/* A chunk that belongs to one large block holds that block only (issue 8).
 * realloc of a 2 MiB block down to 300 KB in place, and memalign of a large
 * block (whose chunk has room for the alignment), leave free room in the
 * big block's chunk; the next 2,000 malloc(1000) must not land there, or
 * they pin the chunk after the big block is freed.  Then freeing the big
 * blocks gives their chunks up: the arenas' chunks and the huge blocks'
 * mappings hold that many bytes less (one spare granule allowed).  Each case runs in a fork child, on
 * the same fresh heap.
 *
 * Which chunk an address lies in is the engine's chunk map (map_lookup), so
 * the test links libhmm_test.la; the calls are the hmm_* names. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hmm.h"
#include "internal.h"
#include "testutil.h"

#define MiB ((size_t)1 << 20)
#define BIG (2 * MiB)
#define SHRUNK 300000
#define ALIGNED (MiB + MiB / 4)
#define ALIGNMENT (256 * 1024)
#define SMALLS 2000
#define SMALL 1000

static void *small[SMALLS];

/* The bytes held for blocks: the arenas' chunks and the huge blocks'
 * mappings (a large aligned block may be either). */
static size_t held_bytes(void)
{
    struct hmm_stats s;
    size_t bytes = 0;
    CHECK(hmm_stats(&s) == 0, "hmm_stats failed");
    for (unsigned i = 0; i < s.arenas_listed; i++)
        bytes += s.arenas[i].chunk_bytes;
    return bytes + s.huge_bytes;
}

/* How many of the small blocks lie in chunk c. */
static int smalls_in(const struct chunk *c)
{
    int count = 0;
    for (int i = 0; i < SMALLS; i++)
        count += map_lookup(small[i]) == c;
    return count;
}

/* With big alive in its own chunk c (NULL: it is not in a chunk of its own
 * any more), 2,000 malloc(1000) stay out of c; freeing big gives c up.
 * Returns the failures. */
static int hold_one_block(const char *what, void *big, struct chunk *c)
{
    int failures = 0;
    for (int i = 0; i < SMALLS; i++) {
        small[i] = hmm_malloc(SMALL);
        CHECK(small[i] != NULL, "malloc(%d) number %d failed", SMALL, i);
        memset(small[i], i, SMALL);
    }
    int in_chunk = c ? smalls_in(c) : 0;
    size_t chunk_size = c ? c->size : 0, held = held_bytes();
    hmm_free(big);
    size_t after = held_bytes();
    printf("%s: %d of %d malloc(%d) in its chunk (%zu bytes); chunks and mappings %zu bytes before "
           "freeing it, %zu after\n", what, in_chunk, SMALLS, SMALL, chunk_size, held, after);
    if (in_chunk != 0) {
        printf("FAIL: %s: %d small blocks landed in the big block's chunk\n", what, in_chunk);
        failures++;
    }
    if (after + chunk_size > held + GRANULE) {
        printf("FAIL: %s: freeing the big block gave up %lld bytes of chunks, not its %zu\n",
               what, (long long)held - (long long)after, chunk_size);
        failures++;
    }
    for (int i = 0; i < SMALLS; i++)
        hmm_free(small[i]);
    return failures;
}

static int memalign_case(void)
{
    void *m = hmm_memalign(ALIGNMENT, ALIGNED);
    CHECK(m != NULL && is_aligned(m, ALIGNMENT), "memalign(%d, %zu) gave %p", ALIGNMENT,
          ALIGNED, m);
    memset(m, 0x3c, ALIGNED);
    CHECK(map_lookup(m) != NULL, "memalign's block %p is in no chunk", m);
    return hold_one_block("memalign(256 KiB, 1.25 MiB)", m, map_lookup(m));
}

static int realloc_case(void)
{
    unsigned char *p = hmm_malloc(BIG);
    CHECK(p != NULL, "malloc(%zu) failed", BIG);
    memset(p, 0x2b, BIG);
    unsigned char *q = hmm_realloc(p, SHRUNK);
    CHECK(q != NULL, "realloc to %d failed", SHRUNK);
    /* Moved: the 2 MiB chunk was given up and q is an ordinary block. */
    return hold_one_block(q == p ? "realloc(2 MiB -> 300 KB) in place"
                                 : "realloc(2 MiB -> 300 KB) moved",
                          q, q == p ? map_lookup(q) : NULL);
}

/* Each case in a fork child, so that both start from the same fresh heap
 * (the other's freed small blocks would otherwise serve the 2,000 mallocs). */
static int in_child(int (*run)(void))
{
    int status;
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork failed");
    if (pid == 0) {
        int failures = run();
        CHECK(hmm_check() == 0, "hmm_check failed");
        fflush(stdout);
        _exit(failures);
    }
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid failed");
    CHECK(WIFEXITED(status), "a case ended with status %#x", status);
    return WEXITSTATUS(status);
}

int main(void)
{
    int failures = in_child(realloc_case) + in_child(memalign_case);
    CHECK(failures == 0, "%d failures (above)", failures);
    return 0;
}
