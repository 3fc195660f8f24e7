/* API conformance of the whole malloc family (issue 2, point 4), one
 * function per behaviour, each run against every set of names the library
 * exports:
 *   hmm_*        always;
 *   malloc, ...  the standard names, when built with override (HMM_OVERRIDE);
 *   __libc_*     glibc's internal aliases (and __posix_memalign), likewise.
 * Semantics are those the Linux man pages give for glibc.
 *
 * Usage: api_conformance [BEHAVIOUR-NAME-SUBSTRING]
 * Prints one PASS/FAIL line per behaviour and names set; exits 1 if any
 * failed.  Each behaviour runs in a child process of its own. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hmm.h"
#include "testutil.h"

#ifdef HMM_OVERRIDE
/* C23 and glibc-internal names that glibc 2.36's headers do not declare. */
void free_sized(void *ptr, size_t size);
void free_aligned_sized(void *ptr, size_t alignment, size_t size);
void *__libc_malloc(size_t size);
void __libc_free(void *ptr);
void *__libc_calloc(size_t count, size_t size);
void *__libc_realloc(void *ptr, size_t size);
void *__libc_memalign(size_t alignment, size_t size);
void *__libc_valloc(size_t size);
void *__libc_pvalloc(size_t size);
int __posix_memalign(void **out, size_t alignment, size_t size);
#endif

#define MiB ((size_t)1 << 20)
/* Clearly above the default mmap threshold of 32 MiB: their own mappings. */
#define HUGE_SIZE (40 * MiB)

struct api {
    const char *name;
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void *(*reallocarray)(void *, size_t, size_t);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
    size_t (*usable)(void *);
    int (*trim)(size_t);
    void (*free_sized)(void *, size_t);
    void (*free_aligned_sized)(void *, size_t, size_t);
    struct mallinfo2 (*mallinfo2)(void);
    int (*mallopt)(int, int);
    void (*malloc_stats)(void);
};

static const struct api hmm_api = {
    "hmm_*", hmm_malloc, hmm_free, hmm_calloc, hmm_realloc, hmm_reallocarray,
    hmm_posix_memalign, hmm_aligned_alloc, hmm_memalign, hmm_valloc, hmm_pvalloc,
    hmm_malloc_usable_size, hmm_malloc_trim, hmm_free_sized,
    hmm_free_aligned_sized, hmm_mallinfo2, hmm_mallopt, hmm_malloc_stats,
};

#ifdef HMM_OVERRIDE
static const struct api std_api = {
    "standard", malloc, free, calloc, realloc, reallocarray,
    posix_memalign, aligned_alloc, memalign, valloc, pvalloc,
    malloc_usable_size, malloc_trim, free_sized,
    free_aligned_sized, mallinfo2, mallopt, malloc_stats,
};

/* glibc's aliases; the functions that have none use the standard names. */
static const struct api libc_api = {
    "__libc_*", __libc_malloc, __libc_free, __libc_calloc, __libc_realloc,
    reallocarray, __posix_memalign, aligned_alloc, __libc_memalign,
    __libc_valloc, __libc_pvalloc, malloc_usable_size, malloc_trim,
    free_sized, free_aligned_sized, mallinfo2, mallopt, malloc_stats,
};
#endif

static size_t page;
static int failed_now;

/* Hides a constant from the compiler, so that it neither warns about nor
 * folds calls with absurd sizes. */
static size_t opaque(size_t x)
{
    __asm__ volatile("" : "+r"(x));
    return x;
}

/* On failure: report, mark the behaviour failed, and leave it. */
#define REQUIRE(cond, ...)                                                  \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "  %s:%d: [%s] REQUIRE(%s) failed: ", __FILE__, \
                    __LINE__, a->name, #cond);                              \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
            failed_now = 1;                                                 \
            return;                                                         \
        }                                                                   \
    } while (0)

#define REQUIRE_HEAP_SOUND(when)                                            \
    do {                                                                    \
        int rc_ = hmm_check();                                              \
        REQUIRE(rc_ == 0, "hmm_check() returned %d %s", rc_, when);         \
    } while (0)

static size_t in_use_bytes(void)
{
    static struct hmm_stats s;
    hmm_stats(&s);
    return s.in_use_bytes;
}

static size_t huge_blocks(void)
{
    static struct hmm_stats s;
    hmm_stats(&s);
    return s.huge_blocks;
}

/* ---------------------------------------------------------------- */

/* The allocation names are served by hmm, not by glibc: a block they hand
 * out shows in hmm's statistics, and hmm_free/free cross over. */
static void names_are_served_by_hmm(const struct api *a)
{
    size_t before = in_use_bytes(), during, after;
    void *p = a->malloc(4 * MiB), *q;
    REQUIRE(p != NULL, "malloc(4 MiB) failed");
    during = in_use_bytes();
    REQUIRE(during >= before + 4 * MiB,
            "in_use_bytes went from %zu to %zu after malloc(4 MiB): not hmm's malloc",
            before, during);
    a->free(p);
    after = in_use_bytes();
    REQUIRE(after + 4 * MiB <= during,
            "in_use_bytes went from %zu to %zu after free(4 MiB): not hmm's free",
            during, after);
    p = a->malloc(100);
    REQUIRE(p != NULL, "malloc(100) failed");
    REQUIRE(hmm_malloc_usable_size(p) >= 100, "hmm_malloc_usable_size < 100");
    hmm_free(p);
    q = hmm_malloc(100);
    REQUIRE(q != NULL, "hmm_malloc(100) failed");
    a->free(q);
    REQUIRE_HEAP_SOUND("after crossing frees between the names");
}

static void malloc_zero_returns_unique_freeable_pointers(const struct api *a)
{
    enum { N = 200 };
    void *p[N];
    int i, j;
    for (i = 0; i < N; i++) {
        p[i] = a->malloc(0);
        REQUIRE(p[i] != NULL, "malloc(0) #%d returned NULL", i);
        REQUIRE(is_aligned(p[i], 16), "malloc(0) returned %p", p[i]);
        for (j = 0; j < i; j++)
            REQUIRE(p[i] != p[j], "malloc(0) returned %p twice", p[i]);
    }
    for (i = 0; i < N; i++)
        a->free(p[i]);
    REQUIRE_HEAP_SOUND("after freeing malloc(0) blocks");
}

static void every_size_is_16_byte_aligned_and_fully_writable(const struct api *a)
{
    enum { MAXN = 5000 };
    static void *p[MAXN];
    size_t sizes[MAXN], n = 0, i;
    for (i = 0; i <= 4096; i++)
        sizes[n++] = i;
    for (i = 4; i <= 24; i++) {
        sizes[n++] = ((size_t)1 << i) - 1;
        sizes[n++] = (size_t)1 << i;
        sizes[n++] = ((size_t)1 << i) + 1;
        sizes[n++] = ((size_t)1 << i) + 17;
    }
    for (i = 0; i < n; i++) {
        size_t u;
        p[i] = a->malloc(sizes[i]);
        REQUIRE(p[i] != NULL, "malloc(%zu) returned NULL", sizes[i]);
        REQUIRE(is_aligned(p[i], 16), "malloc(%zu) returned %p", sizes[i], p[i]);
        u = a->usable(p[i]);
        REQUIRE(u >= sizes[i], "malloc_usable_size(malloc(%zu)) = %zu", sizes[i], u);
        pattern_fill(p[i], u, i);
    }
    for (i = 0; i < n; i++) {
        size_t bad = pattern_check(p[i], a->usable(p[i]), i);
        REQUIRE(bad == (size_t)-1, "block malloc(%zu) overwritten at offset %zu",
                sizes[i], bad);
    }
    REQUIRE_HEAP_SOUND("with all the blocks live");
    for (i = 0; i < n; i += 2)
        a->free(p[i]);
    for (i = 1; i < n; i += 2)
        a->free(p[i]);
    REQUIRE_HEAP_SOUND("after freeing them");
}

static void calloc_zeroes_reused_dirty_blocks(const struct api *a)
{
    static const size_t sizes[] = { 1, 16, 24, 100, 512, 1000, 4096, 10000,
                                    100000, 1 << 20, 5 << 20 };
    enum { N = 32 };
    void *p[N];
    size_t k, i, j, round;
    for (k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t n = sizes[k];
        for (round = 0; round < 8; round++) {
            /* Dirty N blocks of the size, free them, calloc N again. */
            for (i = 0; i < N; i++) {
                p[i] = a->malloc(n);
                REQUIRE(p[i] != NULL, "malloc(%zu) failed", n);
                memset(p[i], 0xff, a->usable(p[i]));
            }
            for (i = 0; i < N; i++)
                a->free(p[i]);
            for (i = 0; i < N; i++) {
                unsigned char *c = (i & 1) ? a->calloc(1, n) : a->calloc(n, 1);
                REQUIRE(c != NULL, "calloc(%zu) failed", n);
                for (j = 0; j < n; j++)
                    REQUIRE(c[j] == 0, "calloc(%zu) byte %zu is 0x%02x (round %zu)",
                            n, j, c[j], round);
                memset(c, 0xee, n);
                p[i] = c;
            }
            for (i = 0; i < N; i++)
                a->free(p[i]);
        }
    }
    /* calloc of a count * size that is not a multiple of 16. */
    for (k = 0; k < 100; k++) {
        unsigned char *c;
        void *d = a->malloc(7 * 13 + k);
        REQUIRE(d != NULL, "malloc failed");
        memset(d, 0xa5, a->usable(d));
        a->free(d);
        c = a->calloc(7, 13 + k / 7);
        REQUIRE(c != NULL, "calloc(7, %zu) failed", 13 + k / 7);
        for (j = 0; j < 7 * (13 + k / 7); j++)
            REQUIRE(c[j] == 0, "calloc(7, %zu) byte %zu not zero", 13 + k / 7, j);
        a->free(c);
    }
    REQUIRE_HEAP_SOUND("after the calloc rounds");
}

static void calloc_overflow_returns_null_enomem(const struct api *a)
{
    static const struct { size_t n, m; } cases[] = {
        { SIZE_MAX / 2 + 1, 2 }, { 2, SIZE_MAX / 2 + 1 }, { SIZE_MAX, SIZE_MAX },
        { (size_t)1 << 32, (size_t)1 << 32 }, { SIZE_MAX / 16 + 1, 16 },
        { 16, SIZE_MAX / 16 + 1 }, { SIZE_MAX, 2 }, { 3, SIZE_MAX / 3 + 1 },
        { SIZE_MAX, 1 }, { 1, SIZE_MAX }, { SIZE_MAX - 15, 1 },
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof *cases; i++) {
        void *p;
        errno = 0;
        p = a->calloc(opaque(cases[i].n), opaque(cases[i].m));
        REQUIRE(p == NULL, "calloc(%zu, %zu) returned %p", cases[i].n, cases[i].m, p);
        REQUIRE(errno == ENOMEM, "calloc(%zu, %zu): errno %d, not ENOMEM",
                cases[i].n, cases[i].m, errno);
    }
    REQUIRE_HEAP_SOUND("after failed callocs");
    {
        void *p = a->calloc(10, 10);
        REQUIRE(p != NULL, "calloc(10, 10) failed after the failures");
        a->free(p);
    }
}

static void reallocarray_overflow_returns_null_enomem_and_keeps_block(const struct api *a)
{
    unsigned char *p = a->malloc(100), *q;
    size_t bad;
    REQUIRE(p != NULL, "malloc(100) failed");
    pattern_fill(p, 100, 77);

    errno = 0;
    q = a->reallocarray(p, opaque(SIZE_MAX / 2 + 1), opaque(2));
    REQUIRE(q == NULL, "reallocarray(p, SIZE_MAX/2+1, 2) returned %p", (void *)q);
    REQUIRE(errno == ENOMEM, "reallocarray overflow: errno %d", errno);
    errno = 0;
    q = a->reallocarray(p, opaque((size_t)1 << 33), opaque((size_t)1 << 33));
    REQUIRE(q == NULL && errno == ENOMEM, "reallocarray(p, 2^33, 2^33): %p errno %d",
            (void *)q, errno);
    errno = 0;
    q = a->reallocarray(NULL, opaque(SIZE_MAX), opaque(SIZE_MAX));
    REQUIRE(q == NULL && errno == ENOMEM, "reallocarray(NULL, SIZE_MAX, SIZE_MAX): %p errno %d",
            (void *)q, errno);
    bad = pattern_check(p, 100, 77);
    REQUIRE(bad == (size_t)-1, "block changed by failed reallocarray at %zu", bad);

    q = a->reallocarray(p, 10, 200);
    REQUIRE(q != NULL, "reallocarray(p, 10, 200) failed");
    REQUIRE(a->usable(q) >= 2000, "reallocarray(p, 10, 200) usable %zu", a->usable(q));
    bad = pattern_check(q, 100, 77);
    REQUIRE(bad == (size_t)-1, "reallocarray lost the contents at %zu", bad);
    p = a->reallocarray(NULL, 3, 5);
    REQUIRE(p != NULL && a->usable(p) >= 15, "reallocarray(NULL, 3, 5) failed");
    a->free(p);
    a->free(q);
    REQUIRE_HEAP_SOUND("after reallocarray");
}

static void sizes_near_size_max_return_null_enomem_and_heap_survives(const struct api *a)
{
    static const size_t sizes[] = {
        SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 15, SIZE_MAX - 16, SIZE_MAX - 4095,
        SIZE_MAX - 4096, SIZE_MAX - (1 << 20), SIZE_MAX / 2 + 1, SIZE_MAX / 2,
        (size_t)PTRDIFF_MAX + 1,
    };
    static const size_t aligns[] = { 16, 64, 4096, 1 << 16, 1 << 20 };
    size_t i, j;
    void *keep = a->malloc(1000), *p;
    REQUIRE(keep != NULL, "malloc(1000) failed");
    pattern_fill(keep, 1000, 5);

    for (i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = opaque(sizes[i]);
        int rc;
#define EXPECT_ENOMEM(call, what)                                               \
        do {                                                                    \
            errno = 0;                                                          \
            p = (call);                                                         \
            REQUIRE(p == NULL, "%s(%#zx) returned %p", what, n, p);            \
            REQUIRE(errno == ENOMEM, "%s(%#zx): errno %d, not ENOMEM", what, n, errno); \
        } while (0)
        EXPECT_ENOMEM(a->malloc(n), "malloc");
        EXPECT_ENOMEM(a->valloc(n), "valloc");
        EXPECT_ENOMEM(a->pvalloc(n), "pvalloc");
        EXPECT_ENOMEM(a->realloc(NULL, n), "realloc(NULL)");
        for (j = 0; j < sizeof aligns / sizeof *aligns; j++) {
            size_t al = aligns[j];
            EXPECT_ENOMEM(a->memalign(al, n), "memalign");
            EXPECT_ENOMEM(a->aligned_alloc(al, n & ~(al - 1)), "aligned_alloc");
            p = NULL;
            rc = a->posix_memalign(&p, al, n);
            REQUIRE(rc == ENOMEM, "posix_memalign(%zu, %#zx) returned %d, not ENOMEM",
                    al, n, rc);
        }
#undef EXPECT_ENOMEM
    }
    REQUIRE(pattern_check(keep, 1000, 5) == (size_t)-1, "a live block changed");
    REQUIRE_HEAP_SOUND("after the failed requests");
    p = a->malloc(12345);
    REQUIRE(p != NULL, "malloc(12345) failed after the failures");
    a->free(p);
    a->free(keep);
    REQUIRE_HEAP_SOUND("at the end");
}

/* Grow and shrink through every size class: small, medium, large, huge
 * (above the mmap threshold) and back; the contents always survive. */
static void realloc_keeps_contents_across_all_size_classes(const struct api *a)
{
    static const size_t steps[] = {
        1, 24, 100, 101, 5000, 4000, 200000, 2 << 20, HUGE_SIZE, 100 << 20,
        50 << 20, 3000, 10, 1 << 20, 33 << 20, 16, HUGE_SIZE + 4096, 1,
    };
    size_t i, old = 0, bad;
    uint64_t key = 0;
    unsigned char *p = NULL, *q;
    for (i = 0; i < sizeof steps / sizeof *steps; i++) {
        size_t n = steps[i], keep = old < n ? old : n, u;
        q = a->realloc(p, n);
        REQUIRE(q != NULL, "realloc(%zu -> %zu) failed", old, n);
        REQUIRE(is_aligned(q, 16), "realloc to %zu returned %p", n, (void *)q);
        bad = pattern_check(q, keep, key);
        REQUIRE(bad == (size_t)-1, "realloc(%zu -> %zu) lost the contents at offset %zu",
                old, n, bad);
        u = a->usable(q);
        REQUIRE(u >= n, "usable %zu < %zu after realloc", u, n);
        key = i * 1000 + 1;
        pattern_fill(q, u, key);
        p = q;
        old = u;   /* all usable bytes were written */
    }
    a->free(p);
    /* Shrinking then growing a block in place many times. */
    p = a->malloc(64 << 10);
    REQUIRE(p != NULL, "malloc(64 KiB) failed");
    pattern_fill(p, 64 << 10, 9);
    for (i = 0; i < 200; i++) {
        size_t n = (i % 2) ? (64 << 10) : ((64 << 10) - 16 * i - 1);
        q = a->realloc(p, n);
        REQUIRE(q != NULL, "realloc to %zu failed", n);
        bad = pattern_check(q, (64 << 10) - 16 * 200 - 1, 9);
        REQUIRE(bad == (size_t)-1, "in-place realloc round %zu lost contents at %zu", i, bad);
        p = q;
    }
    a->free(p);
    REQUIRE_HEAP_SOUND("after the reallocs");
}

static void realloc_null_acts_as_malloc(const struct api *a)
{
    void *p = a->realloc(NULL, 100), *q;
    REQUIRE(p != NULL, "realloc(NULL, 100) returned NULL");
    REQUIRE(is_aligned(p, 16), "realloc(NULL, 100) returned %p", p);
    REQUIRE(a->usable(p) >= 100, "realloc(NULL, 100) usable %zu", a->usable(p));
    memset(p, 1, 100);
    q = a->realloc(NULL, 0);
    REQUIRE(q != NULL, "realloc(NULL, 0) returned NULL");
    REQUIRE(q != p, "realloc(NULL, 0) returned a live block");
    a->free(q);
    q = a->realloc(NULL, HUGE_SIZE);
    REQUIRE(q != NULL, "realloc(NULL, 40 MiB) returned NULL");
    memset(q, 2, HUGE_SIZE);
    a->free(q);
    a->free(p);
    REQUIRE_HEAP_SOUND("after realloc(NULL, n)");
}

static void realloc_failure_returns_null_enomem_and_leaves_block_intact(const struct api *a)
{
    static const size_t olds[] = { 1, 100, 5000, 300000, HUGE_SIZE };
    static const size_t news[] = { SIZE_MAX, SIZE_MAX - 15, SIZE_MAX - 4096,
                                   SIZE_MAX / 2 + 1, (size_t)PTRDIFF_MAX + 1 };
    size_t i, j;
    for (i = 0; i < sizeof olds / sizeof *olds; i++) {
        unsigned char *p = a->malloc(olds[i]), *q;
        size_t u, bad;
        REQUIRE(p != NULL, "malloc(%zu) failed", olds[i]);
        u = a->usable(p);
        pattern_fill(p, u, i + 3);
        for (j = 0; j < sizeof news / sizeof *news; j++) {
            errno = 0;
            q = a->realloc(p, opaque(news[j]));
            REQUIRE(q == NULL, "realloc(malloc(%zu), %#zx) returned %p", olds[i], news[j],
                    (void *)q);
            REQUIRE(errno == ENOMEM, "realloc(malloc(%zu), %#zx): errno %d", olds[i],
                    news[j], errno);
            REQUIRE(a->usable(p) == u, "failed realloc changed the usable size %zu -> %zu",
                    u, a->usable(p));
            bad = pattern_check(p, u, i + 3);
            REQUIRE(bad == (size_t)-1, "failed realloc changed the block at offset %zu", bad);
        }
        REQUIRE_HEAP_SOUND("after the failed reallocs");
        q = a->realloc(p, olds[i] + 64);   /* still a valid, reallocatable block */
        REQUIRE(q != NULL, "realloc after the failures returned NULL");
        bad = pattern_check(q, olds[i], i + 3);
        REQUIRE(bad == (size_t)-1, "contents lost at %zu", bad);
        a->free(q);
    }
    REQUIRE_HEAP_SOUND("at the end");
}

static void posix_memalign_rejects_bad_alignment_with_einval(const struct api *a)
{
    const size_t bad_aligns[] = { 0, 1, 2, 3, sizeof(void *) / 2, sizeof(void *) + 1,
                                  24, 48, 96, 4097, 3 << 12, SIZE_MAX,
                                  SIZE_MAX / 2 + 2 };
    size_t i;
    for (i = 0; i < sizeof bad_aligns / sizeof *bad_aligns; i++) {
        void *p = (void *)&page;
        int rc = a->posix_memalign(&p, opaque(bad_aligns[i]), 100);
        REQUIRE(rc == EINVAL, "posix_memalign(%zu, 100) returned %d, not EINVAL",
                bad_aligns[i], rc);
    }
    REQUIRE_HEAP_SOUND("after the rejected alignments");
}

static void posix_memalign_honours_every_power_of_two_alignment(const struct api *a)
{
    static const size_t sizes[] = { 0, 1, 8, 100, 4096, 5000, 70000, 1 << 20 };
    size_t al, i;
    for (al = sizeof(void *); al <= ((size_t)1 << 20); al <<= 1)
        for (i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            void *p = NULL;
            int rc = a->posix_memalign(&p, al, sizes[i]);
            REQUIRE(rc == 0, "posix_memalign(%zu, %zu) returned %d", al, sizes[i], rc);
            REQUIRE(p != NULL, "posix_memalign(%zu, %zu) stored NULL", al, sizes[i]);
            REQUIRE(is_aligned(p, al), "posix_memalign(%zu, %zu) gave %p", al, sizes[i], p);
            REQUIRE(is_aligned(p, 16), "posix_memalign(%zu, %zu) gave %p", al, sizes[i], p);
            REQUIRE(a->usable(p) >= sizes[i], "usable %zu < %zu", a->usable(p), sizes[i]);
            memset(p, 0x5a, a->usable(p));
            a->free(p);
        }
    REQUIRE_HEAP_SOUND("after the aligned blocks");
}

static void aligned_alloc_and_memalign_honour_alignment(const struct api *a)
{
    enum { LIVE = 64 };
    void *live[LIVE] = { 0 };
    size_t al, k = 0, i;
    for (al = 1; al <= ((size_t)1 << 20); al <<= 1) {
        static const size_t mult[] = { 1, 2, 3, 17 };
        size_t want = al < 16 ? 16 : al;
        for (i = 0; i < sizeof mult / sizeof *mult; i++) {
            size_t n = al * mult[i];
            void *p = a->aligned_alloc(al, n), *q;
            REQUIRE(p != NULL, "aligned_alloc(%zu, %zu) returned NULL", al, n);
            REQUIRE(is_aligned(p, want), "aligned_alloc(%zu, %zu) gave %p", al, n, p);
            REQUIRE(a->usable(p) >= n, "aligned_alloc usable %zu < %zu", a->usable(p), n);
            memset(p, 0x11, n);
            q = a->memalign(al, n + 5);
            REQUIRE(q != NULL, "memalign(%zu, %zu) returned NULL", al, n + 5);
            REQUIRE(is_aligned(q, want), "memalign(%zu, %zu) gave %p", al, n + 5, q);
            REQUIRE(a->usable(q) >= n + 5, "memalign usable %zu < %zu", a->usable(q), n + 5);
            memset(q, 0x22, n + 5);
            /* Keep some alive so that alignment is tested on a busy heap. */
            if (live[k % LIVE])
                a->free(live[k % LIVE]);
            live[k++ % LIVE] = p;
            if ((k & 1) && al < 4096)
                a->free_aligned_sized(q, al, n + 5);
            else
                a->free(q);
        }
    }
    for (i = 0; i < LIVE; i++)
        a->free(live[i]);
    REQUIRE_HEAP_SOUND("after aligned_alloc/memalign");
}

static void valloc_and_pvalloc_are_page_aligned_and_pvalloc_rounds_up(const struct api *a)
{
    static const size_t sizes[] = { 0, 1, 100, 4095, 4096, 4097, 10000, 1 << 20,
                                    (1 << 20) + 1 };
    size_t i;
    for (i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i], rounded = (n + page - 1) & ~(page - 1), u;
        void *p = a->valloc(n), *q;
        REQUIRE(p != NULL, "valloc(%zu) returned NULL", n);
        REQUIRE(is_aligned(p, page), "valloc(%zu) gave %p", n, p);
        REQUIRE(a->usable(p) >= n, "valloc(%zu) usable %zu", n, a->usable(p));
        memset(p, 3, a->usable(p));
        q = a->pvalloc(n);
        REQUIRE(q != NULL, "pvalloc(%zu) returned NULL", n);
        REQUIRE(is_aligned(q, page), "pvalloc(%zu) gave %p", n, q);
        u = a->usable(q);
        /* n = 0 rounds up to 0: glibc then returns a minimal block. */
        REQUIRE(u >= rounded, "pvalloc(%zu) usable %zu < %zu", n, u, rounded);
        memset(q, 4, u);
        a->free(p);
        a->free(q);
    }
    REQUIRE_HEAP_SOUND("after valloc/pvalloc");
}

static void malloc_usable_size_is_zero_for_null_and_covers_request(const struct api *a)
{
    size_t n;
    REQUIRE(a->usable(NULL) == 0, "malloc_usable_size(NULL) = %zu", a->usable(NULL));
    for (n = 0; n < 100000; n = n * 3 / 2 + 1) {
        unsigned char *p = a->malloc(n);
        size_t u;
        REQUIRE(p != NULL, "malloc(%zu) failed", n);
        u = a->usable(p);
        REQUIRE(u >= n, "malloc_usable_size(malloc(%zu)) = %zu", n, u);
        /* Slack is bounded: a sanity check against garbage sizes. */
        REQUIRE(u <= 2 * n + 4096, "malloc_usable_size(malloc(%zu)) = %zu: too big",
                n, u);
        if (u)
            p[u - 1] = 1;
        a->free(p);
    }
}

static void free_null_is_a_no_op(const struct api *a)
{
    int i;
    for (i = 0; i < 10; i++) {
        a->free(NULL);
        a->free_sized(NULL, 0);
        a->free_sized(NULL, 100);
        a->free_aligned_sized(NULL, 64, 128);
    }
    REQUIRE_HEAP_SOUND("after free(NULL)");
}

static void free_sized_and_free_aligned_sized_release_blocks(const struct api *a)
{
    enum { N = 2000 };
    static void *p[N];
    static size_t n[N], al[N];
    size_t before, during, after, total = 0, i;
    int round;
    for (round = 0; round < 3; round++) {
        before = in_use_bytes();
        total = 0;
        for (i = 0; i < N; i++) {
            n[i] = 1 + (i * 37) % 3000 + (i % 50 == 0 ? 200000 : 0);
            if (i % 3 == 0) {
                al[i] = (size_t)64 << (i % 5);
                n[i] = (n[i] + al[i] - 1) & ~(al[i] - 1);
                p[i] = a->aligned_alloc(al[i], n[i]);
            } else {
                al[i] = 0;
                p[i] = a->malloc(n[i]);
            }
            REQUIRE(p[i] != NULL, "allocation %zu of %zu failed", i, n[i]);
            memset(p[i], 0x33, n[i]);
            total += n[i];
        }
        during = in_use_bytes();
        REQUIRE(during >= before + total, "in_use_bytes %zu -> %zu for %zu allocated",
                before, during, total);
        for (i = 0; i < N; i++) {
            if (al[i])
                a->free_aligned_sized(p[i], al[i], n[i]);
            else
                a->free_sized(p[i], n[i]);
        }
        after = in_use_bytes();
        REQUIRE(after + total <= during,
                "in_use_bytes %zu -> %zu after free_sized of %zu bytes: blocks not released",
                during, after, total);
        REQUIRE_HEAP_SOUND("after free_sized/free_aligned_sized");
    }
}

static void malloc_trim_returns_0_or_1_and_heap_stays_sound(const struct api *a)
{
    enum { N = 3000 };
    static void *p[N];
    size_t i;
    int rc;
    for (i = 0; i < N; i++) {
        p[i] = a->malloc(1 + (i * 7919) % 20000);
        REQUIRE(p[i] != NULL, "malloc failed");
        pattern_fill(p[i], 1 + (i * 7919) % 20000, i);
    }
    for (i = 0; i < N; i += 2) {
        a->free(p[i]);
        p[i] = NULL;
    }
    rc = a->trim(0);
    REQUIRE(rc == 0 || rc == 1, "malloc_trim(0) returned %d", rc);
    rc = a->trim(1 << 20);
    REQUIRE(rc == 0 || rc == 1, "malloc_trim(1 MiB) returned %d", rc);
    REQUIRE_HEAP_SOUND("after malloc_trim with live blocks");
    for (i = 1; i < N; i += 2) {
        size_t bad = pattern_check(p[i], 1 + (i * 7919) % 20000, i);
        REQUIRE(bad == (size_t)-1, "malloc_trim damaged a live block at %zu", bad);
        a->free(p[i]);
    }
    rc = a->trim(0);
    REQUIRE(rc == 0 || rc == 1, "malloc_trim(0) returned %d", rc);
    REQUIRE_HEAP_SOUND("after malloc_trim on an empty heap");
    for (i = 0; i < N; i++) {
        p[i] = a->malloc(1000);
        REQUIRE(p[i] != NULL, "malloc after trim failed");
        memset(p[i], 1, 1000);
    }
    for (i = 0; i < N; i++)
        a->free(p[i]);
}

static void huge_blocks_are_own_mappings_and_round_trip(const struct api *a)
{
    size_t h0 = huge_blocks(), bad, i;
    unsigned char *p = a->malloc(HUGE_SIZE), *q;
    REQUIRE(p != NULL, "malloc(40 MiB) failed");
    REQUIRE(is_aligned(p, 16), "malloc(40 MiB) gave %p", (void *)p);
    REQUIRE(a->usable(p) >= HUGE_SIZE, "usable %zu", a->usable(p));
    REQUIRE(huge_blocks() == h0 + 1, "huge_blocks %zu -> %zu: a 40 MiB block is not its own mapping",
            h0, huge_blocks());
    pattern_fill(p, HUGE_SIZE, 40);

    /* grow 40 -> 100 MiB, shrink to 50 MiB: contents kept */
    q = a->realloc(p, 100 * MiB);
    REQUIRE(q != NULL, "realloc(40 -> 100 MiB) failed");
    bad = pattern_check(q, HUGE_SIZE, 40);
    REQUIRE(bad == (size_t)-1, "realloc 40 -> 100 MiB lost the contents at %zu", bad);
    REQUIRE(huge_blocks() == h0 + 1, "huge_blocks %zu after realloc", huge_blocks());
    memset(q + HUGE_SIZE, 0x77, 60 * MiB);
    p = a->realloc(q, 50 * MiB);
    REQUIRE(p != NULL, "realloc(100 -> 50 MiB) failed");
    bad = pattern_check(p, HUGE_SIZE, 40);
    REQUIRE(bad == (size_t)-1, "realloc 100 -> 50 MiB lost the contents at %zu", bad);
    for (i = HUGE_SIZE; i < 50 * MiB; i++)
        REQUIRE(p[i] == 0x77, "realloc 100 -> 50 MiB lost byte %zu", i);
    a->free(p);
    REQUIRE(huge_blocks() == h0, "huge_blocks %zu after free, was %zu", huge_blocks(), h0);

    /* calloc of a huge block is zeroed */
    p = a->calloc(1, 48 * MiB);
    REQUIRE(p != NULL, "calloc(48 MiB) failed");
    for (i = 0; i < 48 * MiB; i++)
        REQUIRE(p[i] == 0, "calloc(48 MiB) byte %zu not zero", i);
    a->free(p);

    /* aligned huge blocks */
    p = a->memalign(1 << 20, HUGE_SIZE);
    REQUIRE(p != NULL && is_aligned(p, 1 << 20), "memalign(1 MiB, 40 MiB) gave %p", (void *)p);
    REQUIRE(a->usable(p) >= HUGE_SIZE, "usable %zu", a->usable(p));
    memset(p, 1, HUGE_SIZE);
    a->free(p);
    REQUIRE(huge_blocks() == h0, "huge_blocks %zu after frees, was %zu", huge_blocks(), h0);
    REQUIRE_HEAP_SOUND("after the huge blocks");
}

static void mallinfo2_mallopt_and_malloc_stats_answer(const struct api *a)
{
    struct mallinfo2 mi;
    void *p = a->malloc(2 * MiB);
    int rc;
    REQUIRE(p != NULL, "malloc(2 MiB) failed");
    memset(p, 1, 2 * MiB);
    mi = a->mallinfo2();
    REQUIRE(mi.uordblks + mi.hblkhd >= 2 * MiB,
            "mallinfo2 reports %zu + %zu bytes in use with a 2 MiB block live",
            mi.uordblks, mi.hblkhd);
    a->free(p);
    rc = a->mallopt(M_TRIM_THRESHOLD, 128 * 1024);
    REQUIRE(rc == 1, "mallopt(M_TRIM_THRESHOLD) returned %d", rc);
    a->malloc_stats();   /* writes to stderr: must not crash */
    REQUIRE_HEAP_SOUND("after mallinfo2/mallopt/malloc_stats");
}

/* ---------------------------------------------------------------- */

struct behaviour {
    const char *name;
    void (*run)(const struct api *);
};

#define B(f) { #f, f }
static const struct behaviour behaviours[] = {
    B(names_are_served_by_hmm),
    B(malloc_zero_returns_unique_freeable_pointers),
    B(every_size_is_16_byte_aligned_and_fully_writable),
    B(calloc_zeroes_reused_dirty_blocks),
    B(calloc_overflow_returns_null_enomem),
    B(reallocarray_overflow_returns_null_enomem_and_keeps_block),
    B(sizes_near_size_max_return_null_enomem_and_heap_survives),
    B(realloc_keeps_contents_across_all_size_classes),
    B(realloc_null_acts_as_malloc),
    B(realloc_failure_returns_null_enomem_and_leaves_block_intact),
    B(posix_memalign_rejects_bad_alignment_with_einval),
    B(posix_memalign_honours_every_power_of_two_alignment),
    B(aligned_alloc_and_memalign_honour_alignment),
    B(valloc_and_pvalloc_are_page_aligned_and_pvalloc_rounds_up),
    B(malloc_usable_size_is_zero_for_null_and_covers_request),
    B(free_null_is_a_no_op),
    B(free_sized_and_free_aligned_sized_release_blocks),
    B(malloc_trim_returns_0_or_1_and_heap_stays_sound),
    B(huge_blocks_are_own_mappings_and_round_trip),
    B(mallinfo2_mallopt_and_malloc_stats_answer),
};

/* hmm_stats_print accepts "text" and "json", rejects anything else. */
static int stats_print_formats(void)
{
    int fd = open("/dev/null", O_WRONLY), rc, ok = 1;
    rc = hmm_stats_print(fd, "text");
    if (rc != 0) { fprintf(stderr, "  hmm_stats_print(text) returned %d\n", rc); ok = 0; }
    rc = hmm_stats_print(fd, "json");
    if (rc != 0) { fprintf(stderr, "  hmm_stats_print(json) returned %d\n", rc); ok = 0; }
    errno = 0;
    rc = hmm_stats_print(fd, "xml");
    if (rc != -1 || errno != EINVAL) {
        fprintf(stderr, "  hmm_stats_print(xml) returned %d errno %d, not -1 EINVAL\n", rc, errno);
        ok = 0;
    }
    close(fd);
    return ok;
}

/* Runs one behaviour against one set of names in a child process, so that
 * an abort() (hmm stops the program on what it takes for a caller bug) or a
 * crash fails that behaviour alone and the others still run and report.
 * Returns 1 when it failed.  HMM_TEST_NOFORK=1 runs it in this process
 * (for a debugger). */
static int run_one(const struct behaviour *bh, const struct api *a)
{
    pid_t pid;
    int status;

    if (getenv("HMM_TEST_NOFORK")) {
        failed_now = 0;
        bh->run(a);
        return failed_now;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        failed_now = 0;
        bh->run(a);
        fflush(stdout);
        _exit(failed_now ? 1 : 0);
    }
    if (waitpid(pid, &status, 0) != pid) {
        perror("waitpid");
        return 1;
    }
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "  [%s] %s killed by signal %d (%s)\n", a->name, bh->name,
                WTERMSIG(status), strsignal(WTERMSIG(status)));
        return 1;
    }
    return !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}

int main(int argc, char **argv)
{
    const struct api *apis[3];
    size_t napis = 0, i, j;
    int failures = 0, ran = 0;
    const char *only = argc > 1 ? argv[1] : NULL;

    setvbuf(stdout, NULL, _IOLBF, 0);
    alarm(TEST_TIMEOUT);   /* a hang (deadlock) fails instead of blocking make check */
    page = (size_t)sysconf(_SC_PAGESIZE);
    apis[napis++] = &hmm_api;
#ifdef HMM_OVERRIDE
    apis[napis++] = &std_api;
    apis[napis++] = &libc_api;
#else
    printf("built with --disable-override: testing the hmm_* names only\n");
#endif

    for (i = 0; i < sizeof behaviours / sizeof *behaviours; i++) {
        if (only && !strstr(behaviours[i].name, only))
            continue;
        for (j = 0; j < napis; j++) {
            int failed = run_one(&behaviours[i], apis[j]);
            printf("%s: %s [%s]\n", failed ? "FAIL" : "PASS", behaviours[i].name,
                   apis[j]->name);
            failures += failed;
            ran++;
        }
    }
    if (!only || strstr("hmm_stats_print_accepts_text_and_json", only)) {
        int ok = stats_print_formats();
        printf("%s: hmm_stats_print_accepts_text_and_json\n", ok ? "PASS" : "FAIL");
        failures += !ok;
        ran++;
    }
    if (ran == 0) {
        fprintf(stderr, "no behaviour matches '%s'\n", only);
        return 1;
    }
    /* The heap of this (parent) process is still sound. */
    if (hmm_check() != 0) {
        printf("FAIL: hmm_check() in the parent process\n");
        failures++;
    }
    printf("%d of %d checks failed\n", failures, ran);
    return failures ? 1 : 0;
}
