/* When the kernel refuses, hmm loses nothing.  A scripted multi-threaded
 * run (fixed seeds, three threads, blocks from 16 bytes to 4 MiB: cached
 * classes, arena blocks, dedicated chunks, huge mappings; realloc growth
 * and shrinking, memalign, blocks handed to other threads, malloc_trim)
 * runs once to count the calls it makes of each kind -- sbrk growth, mmap,
 * mremap growth, madvise and the chunk map's node allocations -- then
 * again, in a fresh fork child each time, with the Nth call of one kind and
 * the two after it failing, for N = 1, 2, ... (every N up to 40, then about 30
 * more spread up to the last call), and once with every call of the kind
 * failing from the first on.  Each run checks:
 *  - every allocation returns a usable block, or NULL with errno ENOMEM (a
 *    failed realloc leaves the old block as it was);
 *  - the patterns written into every block are intact when it is resized,
 *    handed over and freed;
 *  - hmm_check() == 0 with every block live and after freeing them all;
 *  - then, with no failures, the heap serves every kind of block again;
 *  - with sbrk failing throughout, nothing fails at all: chunks are mmap'ed.
 * And: a madvise that fails leaves the pages counted as resident (neither
 * the arenas nor the region count more purged than before), and a later
 * trim purges them.
 *
 * Test build (libhmm_test): hmm_test_os_fail and hmm_test_os_calls. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hmm.h"
#include "internal.h"
#include "testutil.h"

#define THREADS 3
#define OPS 1200          /* operations per thread */
#define SLOTS 40          /* live blocks per thread */
#define POOL 16           /* blocks waiting to be taken by another thread */
#define MARK 256          /* bytes marked at each end of a large block */
#define FAILING 3         /* calls that fail from the Nth on */
#define EVERY_N 40        /* every N up to here, then a spread */
#define SPREAD 30         /* how many N beyond EVERY_N */
#define CHILD_SECONDS 120 /* a run that takes longer hangs */
#define OPTIONS "mmap_threshold=1M,decay_ms=0,trim_threshold=256K,top_pad=0"

static const char *const call_name[OS_CALL_COUNT] = {
    [OS_SBRK] = "sbrk", [OS_MMAP] = "mmap", [OS_MREMAP] = "mremap",
    [OS_MADVISE] = "madvise", [OS_MAP_NODE] = "chunk map node",
};

struct live {
    char *ptr;
    size_t size;
    uint64_t key;
};

/* What a run reports to the parent, in a shared mapping. */
struct report {
    unsigned calls[OS_CALL_COUNT];
    unsigned null_returns;
    size_t mapped_chunk_bytes;
};

static struct report *report;
static struct live pool[POOL];
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct live held[THREADS][SLOTS];
static uint64_t base_seed;

/* ---- patterns: the whole block when small, else both ends ---------------- */

static void mark(const struct live *b)
{
    if (b->size <= 2 * MARK) {
        pattern_fill(b->ptr, b->size, b->key);
        return;
    }
    pattern_fill(b->ptr, MARK, b->key);
    pattern_fill(b->ptr + b->size - MARK, MARK, ~b->key);
}

/* The marks of a block of size bytes, checked over its first prefix bytes
 * (what a shrinking realloc keeps). */
static void verify_prefix(const struct live *b, size_t prefix, const char *when)
{
    size_t bad;
    if (b->size <= 2 * MARK)
        bad = pattern_check(b->ptr, prefix < b->size ? prefix : b->size, b->key);
    else if ((bad = pattern_check(b->ptr, prefix < MARK ? prefix : MARK, b->key)) == (size_t)-1 &&
             prefix >= b->size)
        bad = pattern_check(b->ptr + b->size - MARK, MARK, ~b->key);
    CHECK(bad == (size_t)-1, "%s: block %p of %zu bytes: byte %zu (or near the end) changed", when,
          (void *)b->ptr, b->size, bad);
}

static void verify(const struct live *b, const char *when)
{
    verify_prefix(b, b->size, when);
}

/* ---- the script ------------------------------------------------------------ */

/* NULL is fine only as out of memory; a block must hold what was asked. */
static bool got(void *ptr, const char *call, size_t size)
{
    if (ptr != NULL) {
        CHECK(hmm_malloc_usable_size(ptr) >= size, "%s(%zu) gave a block of %zu usable bytes", call, size,
              hmm_malloc_usable_size(ptr));
        return true;
    }
    CHECK(errno == ENOMEM, "%s(%zu) returned NULL with errno %d, not ENOMEM", call, size, errno);
    __atomic_add_fetch(&report->null_returns, 1, __ATOMIC_RELAXED);
    return false;
}

static size_t pick_size(uint64_t *rng)
{
    static const struct size_band mix[] = {
        { 60, 16, 512 }, { 25, 513, 64 << 10 }, { 10, 64 << 10, 900 << 10 }, { 5, 1 << 20, 4 << 20 },
    };
    return rng_mix_size(rng, mix, sizeof(mix) / sizeof(mix[0]));
}

static void release(struct live *b)
{
    if (b->ptr == NULL)
        return;
    verify(b, "free");
    hmm_free(b->ptr);
    b->ptr = NULL;
}

static void do_malloc(struct live *b, uint64_t *rng, bool aligned)
{
    release(b);
    size_t size = pick_size(rng), alignment = (size_t)64 << rng_range(rng, 0, 10);
    errno = 0;
    char *p = aligned ? hmm_memalign(alignment, size) : hmm_malloc(size);
    if (!got(p, aligned ? "memalign" : "malloc", size))
        return;
    CHECK(!aligned || is_aligned(p, alignment), "memalign(%zu) gave %p", alignment, (void *)p);
    *b = (struct live){ p, size, rng_next(rng) };
    mark(b);
}

/* Grow (a string being appended to, now and then into a huge block) or
 * shrink. */
static void do_realloc(struct live *b, uint64_t *rng)
{
    if (b->ptr == NULL)
        return;
    size_t size = rng_range(rng, 0, 3) ? b->size + b->size / 2 + rng_range(rng, 1, 4096)
                                       : rng_range(rng, 1, b->size);
    if (size > (6u << 20))
        size = rng_range(rng, 16, 4096);
    errno = 0;
    char *p = hmm_realloc(b->ptr, size);
    if (!got(p, "realloc", size)) {
        verify(b, "after a failed realloc");
        return;
    }
    b->ptr = p;
    verify_prefix(b, size, "realloc");
    b->size = size;
    b->key = rng_next(rng);
    mark(b);
}

/* Swap a block with one another thread left in the pool. */
static void do_handoff(struct live *b, uint64_t *rng)
{
    pthread_mutex_lock(&pool_lock);
    struct live *other = &pool[rng_range(rng, 0, POOL - 1)];
    struct live mine = *b;
    *b = *other;
    *other = mine;
    pthread_mutex_unlock(&pool_lock);
    if (b->ptr != NULL)
        verify(b, "handoff");
}

static void *script(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    uint64_t rng = base_seed + id * 0x1000193u;
    struct live *slots = held[id];
    for (unsigned op = 0; op < OPS; op++) {
        struct live *b = &slots[rng_range(&rng, 0, SLOTS - 1)];
        unsigned r = (unsigned)rng_range(&rng, 0, 99);
        if (r < 45)
            do_malloc(b, &rng, false);
        else if (r < 55)
            do_malloc(b, &rng, true);
        else if (r < 75)
            do_realloc(b, &rng);
        else if (r < 92)
            release(b);
        else
            do_handoff(b, &rng);
        if (id == 0 && op % 300 == 299)
            hmm_malloc_trim(0);
    }
    return NULL;
}

/* Blocks of every kind, with nothing failing: the heap still works. */
static void still_usable(void)
{
    static const size_t sizes[] = { 16, 100, 4000, 70000, 600000, 3 << 20 };
    struct live b[sizeof(sizes) / sizeof(sizes[0])];
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        b[i] = (struct live){ i % 2 ? hmm_memalign(4096, sizes[i]) : hmm_malloc(sizes[i]), sizes[i], i + 1 };
        CHECK(b[i].ptr != NULL, "malloc(%zu) failed after the failures stopped", sizes[i]);
        mark(&b[i]);
        char *grown = hmm_realloc(b[i].ptr, 2 * sizes[i]);
        CHECK(grown != NULL, "realloc to %zu failed after the failures stopped", 2 * sizes[i]);
        b[i].ptr = grown;
        verify(&b[i], "realloc after the failures");
    }
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        release(&b[i]);
    CHECK(hmm_check() == 0, "hmm_check after the heap was used again");
}

/* The run in a child: the script, the checks, then no failures. */
static void run(void)
{
    pthread_t threads[THREADS];
    for (unsigned i = 0; i < THREADS; i++)
        CHECK(pthread_create(&threads[i], NULL, script, (void *)(uintptr_t)i) == 0, "pthread_create");
    for (unsigned i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    CHECK(hmm_check() == 0, "hmm_check with every block live");
    for (unsigned call = 0; call < OS_CALL_COUNT; call++) {
        report->calls[call] = hmm_test_os_calls(call);
        hmm_test_os_fail(call, 0, 0);
    }
    for (unsigned t = 0; t < THREADS; t++)
        for (unsigned i = 0; i < SLOTS; i++)
            release(&held[t][i]);
    for (unsigned i = 0; i < POOL; i++)
        release(&pool[i]);
    CHECK(hmm_check() == 0, "hmm_check after freeing everything");
    struct hmm_stats stats;
    hmm_stats(&stats);
    report->mapped_chunk_bytes = stats.mapped_chunk_bytes;
    still_usable();
}

/* A fork child (0 in it), on an alarm against a hang. */
static pid_t child_start(void)
{
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0)
        alarm(CHILD_SECONDS);
    return pid;
}

static int child_wait(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        CHECK(errno == EINTR, "waitpid");
    return status;
}

/* Run in a fork child with calls of a kind failing from the after+1st on;
 * exits the test on any failure. */
static void run_child(int call, int after, int count)
{
    memset(report, 0, sizeof(*report));
    pid_t pid = child_start();
    if (pid == 0) {
        if (call >= 0)
            hmm_test_os_fail((enum os_call)call, after, count);
        run();
        _exit(0);
    }
    int status = child_wait(pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "%s call %d and the %d after it failing: the run ended with status %#x (seed %llu)",
          call >= 0 ? call_name[call] : "no", after + 1, count - 1, status,
          (unsigned long long)base_seed);
}

/* Every N up to EVERY_N, then SPREAD more spread evenly up to calls. */
static unsigned next_n(unsigned n, unsigned calls)
{
    if (n < EVERY_N || calls <= EVERY_N + SPREAD)
        return n + 1;
    unsigned step = (calls - EVERY_N) / SPREAD;
    return n + (step ? step : 1);
}

static void inject_each(int call, unsigned calls)
{
    unsigned runs = 0;
    for (unsigned n = 1; n <= calls; n = next_n(n, calls), runs++) {
        run_child(call, (int)n - 1, 1);
        run_child(call, (int)n - 1, FAILING);
    }
    run_child(call, 0, INT_MAX);
    if (call == OS_SBRK) {
        CHECK(report->null_returns == 0, "with sbrk failing, %u allocations failed", report->null_returns);
        CHECK(report->mapped_chunk_bytes > 0, "with sbrk failing, no chunk was mmap'ed");
    }
    printf("%-15s %4u calls in the script; failed the Nth (and the Nth and the %d after it) "
           "for %u N, and every call\n", call_name[call], calls, FAILING - 1, runs);
}

/* ---- a madvise that fails purges nothing --------------------------------- */

/* Free bytes not resident, in the arenas and the region together: a chunk
 * an arena gives back takes its count of purged bytes to the region. */
static size_t purged_bytes(const struct hmm_stats *s)
{
    return s->purged_in_arenas + s->region_free_bytes - s->region_dirty_bytes;
}

/* Free memory below live blocks, in an arena (a large free block between
 * two live ones) and in the region (a chunk freed under a live one: of two
 * emptied chunks the arena keeps one as its spare); trim with madvise
 * failing, then working.  The top chunk is in use, so only purging could
 * give memory back. */
static void madvise_failure_purges_nothing(void)
{
    char *low = hmm_malloc(100), *gap = hmm_malloc(400000), *high = hmm_malloc(100);
    char *spare = hmm_malloc(900000), *chunk = hmm_malloc(900000), *above = hmm_malloc(900000);
    CHECK(low && gap && high && spare && chunk && above, "malloc");
    hmm_free(gap);
    hmm_free(spare);
    hmm_free(chunk);
    struct hmm_stats before, failed, after;
    hmm_stats(&before);
    unsigned calls = hmm_test_os_calls(OS_MADVISE);
    hmm_test_os_fail(OS_MADVISE, 0, INT_MAX);
    hmm_malloc_trim(0);
    CHECK(hmm_test_os_calls(OS_MADVISE) > calls, "the trim called no madvise");
    hmm_stats(&failed);
    CHECK(purged_bytes(&failed) <= purged_bytes(&before),
          "madvise failed, yet the arenas and the region count %zu bytes purged (was %zu)", purged_bytes(&failed),
          purged_bytes(&before));
    CHECK(failed.returned_bytes == before.returned_bytes,
          "madvise failed, yet %zu more bytes count as given back", failed.returned_bytes - before.returned_bytes);
    CHECK(hmm_check() == 0, "hmm_check after the failed purge");
    hmm_test_os_fail(OS_MADVISE, 0, 0);
    hmm_malloc_trim(0);
    hmm_stats(&after);
    CHECK(after.returned_bytes > failed.returned_bytes, "what the failed madvise left resident was not purged later");
    CHECK(hmm_check() == 0, "hmm_check after the purge");
    hmm_free(low);
    hmm_free(high);
    hmm_free(above);
}

/* The options are read when the library starts: run again with them. */
static void with_options(char **argv)
{
    const char *now = getenv("HMM_OPTIONS");
    if (now != NULL && strcmp(now, OPTIONS) == 0)
        return;
    setenv("HMM_OPTIONS", OPTIONS, 1);
    execv("/proc/self/exe", argv);
    CHECK(0, "exec /proc/self/exe: %s", strerror(errno));
}

/* A huge block that must move to grow, into a part of the address space
 * the chunk map has no node for yet, with node allocation failing: the
 * realloc fails, the block stays where it was.  A reservation of more than
 * a map leaf's span (16 GiB of address space, no memory) below the block
 * sends the next mappings below it. */
static void huge_move_without_map_node(void)
{
    struct live b = { hmm_malloc(2 << 20), 2 << 20, 42 };
    CHECK(b.ptr != NULL, "malloc");
    mark(&b);
    size_t span = (size_t)17 << 30;
    void *reserved = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (reserved == MAP_FAILED) {
        printf("no room for the reservation: huge block move not tried\n");
        return;
    }
    hmm_test_os_fail(OS_MAP_NODE, 0, INT_MAX);
    for (size_t size = 4 << 20; size <= (64u << 20); size *= 2) {
        errno = 0;
        char *p = hmm_realloc(b.ptr, size);
        if (!got(p, "realloc", size)) {
            verify(&b, "after a failed realloc");
            continue;
        }
        b.ptr = p;
        verify(&b, "realloc");
        b.size = size;
        mark(&b);
    }
    hmm_test_os_fail(OS_MAP_NODE, 0, 0);
    munmap(reserved, span);
    CHECK(hmm_check() == 0, "hmm_check");
    release(&b);
}

/* Run one case in a fork child. */
static void run_case(void (*body)(void), const char *name)
{
    pid_t pid = child_start();
    if (pid == 0) {
        memset(report, 0, sizeof(*report));
        body();
        _exit(0);
    }
    int status = child_wait(pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: the child ended with status %#x", name,
          status);
    printf("%s: ok\n", name);
}

int main(int argc, char **argv)
{
    (void)argc;
    with_options(argv);
    base_seed = test_seed(0x5eed1e55);
    report = mmap(NULL, sizeof(*report), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(report != MAP_FAILED, "mmap");
    run_child(-1, 0, 0);
    struct report counted = *report;
    for (int call = 0; call < OS_CALL_COUNT; call++)
        inject_each(call, counted.calls[call]);
    run_case(madvise_failure_purges_nothing, "a failed madvise counts nothing purged");
    run_case(huge_move_without_map_node, "a huge block that cannot be recorded where it would move stays");
    return 0;
}
