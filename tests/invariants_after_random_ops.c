/* After thousands of random malloc/calloc/realloc/memalign/free operations,
 * hmm_check() (which walks every arena, chunk and block) finds every invariant
 * intact, every pointer is aligned, every usable byte is writable, and no
 * block's contents were touched by the allocator.
 *
 * Uses the hmm_* names only, so it runs on --disable-override builds too.
 * HMM_TEST_SEED=<n> replays a run; HMM_TEST_OPS=<n> changes its length. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hmm.h"
#include "testutil.h"

#define NSLOTS 2000
#define CHECK_EVERY 500       /* hmm_check() every this many operations */
#define SCAN_EVERY 10000      /* re-verify every live block this often */
#define HUGE_MIN (33u << 20)  /* above the default mmap threshold (32 MiB) */
#define HUGE_MAX (40u << 20)

enum how { BY_MALLOC, BY_CALLOC, BY_REALLOC_NULL, BY_MEMALIGN, BY_ALIGNED_ALLOC,
           BY_POSIX_MEMALIGN, BY_VALLOC, BY_REALLOC };

static const char *how_name[] = { "malloc", "calloc", "realloc(NULL)",
    "memalign", "aligned_alloc", "posix_memalign", "valloc", "realloc" };

struct slot {
    unsigned char *p;
    size_t req;        /* size asked for */
    size_t usable;     /* malloc_usable_size when it was handed out */
    size_t align;      /* alignment it must have */
    size_t asked_align;/* alignment given to aligned_alloc */
    uint64_t key;      /* pattern key */
    enum how how;
};

static struct slot slots[NSLOTS];
static uint64_t rng;
static unsigned long op_no;
static size_t page;

/* Mostly small sizes, some medium, a few up to 1 MiB; 0 now and then. */
static size_t random_size(void)
{
    unsigned r = (unsigned)rng_range(&rng, 0, 999);
    if (r < 10)
        return 0;
    if (r < 700)
        return rng_range(&rng, 1, 256);
    if (r < 900)
        return rng_range(&rng, 257, 8192);
    if (r < 980)
        return rng_range(&rng, 8193, 128 << 10);
    return rng_range(&rng, (128 << 10) + 1, 1 << 20);
}

static size_t random_alignment(size_t min)
{
    size_t a;
    unsigned r = (unsigned)rng_range(&rng, 0, 99);
    if (r < 90)
        a = (size_t)1 << rng_range(&rng, 3, 12);   /* 8 .. 4096 */
    else if (r < 99)
        a = (size_t)1 << rng_range(&rng, 13, 16);  /* 8 KiB .. 64 KiB */
    else
        a = (size_t)1 << rng_range(&rng, 17, 20);  /* 128 KiB .. 1 MiB */
    return a < min ? min : a;
}

static void verify_block(struct slot *s, const char *when)
{
    size_t bad, usable = hmm_malloc_usable_size(s->p);
    CHECK(usable == s->usable,
          "op %lu (%s): usable size of %p (%s of %zu) changed from %zu to %zu",
          op_no, when, (void *)s->p, how_name[s->how], s->req, s->usable, usable);
    bad = pattern_check(s->p, s->usable, s->key);
    CHECK(bad == (size_t)-1,
          "op %lu (%s): block %p (%s of %zu, usable %zu) corrupted at offset %zu",
          op_no, when, (void *)s->p, how_name[s->how], s->req, s->usable, bad);
}

/* Checks a freshly handed out block and gives it its pattern. */
static void adopt_block(struct slot *s, void *p, size_t req, size_t align, enum how how)
{
    CHECK(p != NULL, "op %lu: %s(%zu, align %zu) returned NULL (errno %d)",
          op_no, how_name[how], req, align, errno);
    CHECK(is_aligned(p, align), "op %lu: %s(%zu) returned %p, not %zu-aligned",
          op_no, how_name[how], req, p, align);
    s->p = p;
    s->req = req;
    s->align = align;
    s->how = how;
    s->usable = hmm_malloc_usable_size(p);
    CHECK(s->usable >= req, "op %lu: %s(%zu) gave usable size %zu",
          op_no, how_name[how], req, s->usable);
    if (how == BY_CALLOC) {
        size_t i;
        for (i = 0; i < req; i++)
            CHECK(s->p[i] == 0, "op %lu: calloc(%zu) byte %zu is 0x%02x, not 0",
                  op_no, req, i, s->p[i]);
    }
    s->key = rng_next(&rng);
    pattern_fill(s->p, s->usable, s->key);  /* every usable byte is writable */
}

static void allocate(struct slot *s, size_t req)
{
    unsigned r = (unsigned)rng_range(&rng, 0, 99);
    size_t align;
    void *p;
    int rc;

    if (r < 50) {
        adopt_block(s, hmm_malloc(req), req, 16, BY_MALLOC);
    } else if (r < 65) {
        size_t n = rng_range(&rng, 1, 8), sz;
        sz = req / n ? req / n : 1;
        adopt_block(s, hmm_calloc(n, sz), n * sz, 16, BY_CALLOC);
    } else if (r < 70) {
        adopt_block(s, hmm_realloc(NULL, req), req, 16, BY_REALLOC_NULL);
    } else if (r < 80) {
        align = random_alignment(1);
        adopt_block(s, hmm_memalign(align, req), req, align < 16 ? 16 : align, BY_MEMALIGN);
    } else if (r < 88) {
        align = random_alignment(1);
        req = (req + align - 1) & ~(align - 1);   /* C11 wants a multiple */
        adopt_block(s, hmm_aligned_alloc(align, req), req, align < 16 ? 16 : align,
                    BY_ALIGNED_ALLOC);
        s->asked_align = align;
    } else if (r < 98) {
        align = random_alignment(sizeof(void *));
        p = NULL;
        rc = hmm_posix_memalign(&p, align, req);
        CHECK(rc == 0, "op %lu: posix_memalign(%zu, %zu) returned %d", op_no, align, req, rc);
        adopt_block(s, p, req, align < 16 ? 16 : align, BY_POSIX_MEMALIGN);
    } else {
        adopt_block(s, hmm_valloc(req), req, page, BY_VALLOC);
    }
}

static void release(struct slot *s)
{
    int sized = rng_range(&rng, 0, 2) == 0;

    verify_block(s, "before free");
    if (sized && (s->how == BY_MALLOC || s->how == BY_CALLOC || s->how == BY_REALLOC ||
                  s->how == BY_REALLOC_NULL))
        hmm_free_sized(s->p, s->req);
    else if (sized && s->how == BY_ALIGNED_ALLOC)
        hmm_free_aligned_sized(s->p, s->asked_align, s->req);
    else
        hmm_free(s->p);
    s->p = NULL;
}

static void reallocate(struct slot *s, size_t req)
{
    size_t keep, bad, old_req;
    unsigned char *p;

    verify_block(s, "before realloc");
    old_req = s->req;
    keep = s->req < req ? s->req : req;
    p = hmm_realloc(s->p, req);
    CHECK(p != NULL, "op %lu: realloc(%p, %zu) returned NULL", op_no, (void *)s->p, req);
    CHECK(is_aligned(p, 16), "op %lu: realloc to %zu returned %p, not 16-aligned",
          op_no, req, (void *)p);
    bad = pattern_check(p, keep, s->key);
    CHECK(bad == (size_t)-1,
          "op %lu: realloc(%zu -> %zu) lost the contents at offset %zu", op_no,
          old_req, req, bad);
    s->p = NULL;
    /* Only the old alignment of 16 is promised after realloc. */
    adopt_block(s, p, req, 16, BY_REALLOC);
}

static void heap_check(const char *when)
{
    int rc = hmm_check();
    CHECK(rc == 0, "op %lu (%s): hmm_check() returned %d", op_no, when, rc);
}

static void scan_all(const char *when)
{
    size_t i;
    for (i = 0; i < NSLOTS; i++)
        if (slots[i].p)
            verify_block(&slots[i], when);
}

int main(void)
{
    const char *ops_env = getenv("HMM_TEST_OPS");
    unsigned long ops = ops_env && *ops_env ? strtoul(ops_env, NULL, 0) : 100000;
    unsigned long huge_every, huge_done = 0;
    size_t i;

    rng = test_seed(20240501);
    alarm(TEST_TIMEOUT);   /* a hang (deadlock) fails instead of blocking make check */
    page = (size_t)sysconf(_SC_PAGESIZE);
    huge_every = ops / 6 ? ops / 6 : 1;

    heap_check("at start");
    for (op_no = 1; op_no <= ops; op_no++) {
        struct slot *s = &slots[rng_range(&rng, 0, NSLOTS - 1)];
        int huge = op_no % huge_every == 0;

        if (huge) {
            /* A few blocks above the mmap threshold, including a realloc of
             * a huge block into a small one and of a small one into a huge. */
            size_t req = rng_range(&rng, HUGE_MIN, HUGE_MAX);
            if (s->p && huge_done % 2)
                reallocate(s, req);
            else {
                if (s->p)
                    release(s);
                allocate(s, req);
            }
            huge_done++;
        } else if (!s->p) {
            allocate(s, random_size());
        } else if (s->req >= HUGE_MIN) {
            /* Do not keep huge blocks for long: shrink or drop them. */
            if (rng_range(&rng, 0, 1))
                reallocate(s, random_size() + 1);
            else
                release(s);
        } else {
            unsigned r = (unsigned)rng_range(&rng, 0, 99);
            if (r < 60)
                release(s);
            else
                reallocate(s, random_size() + 1);
        }

        if (op_no % CHECK_EVERY == 0)
            heap_check("periodic");
        if (op_no % SCAN_EVERY == 0)
            scan_all("periodic scan");
    }
    op_no = ops;
    heap_check("after the random operations");
    scan_all("final scan");

    for (i = 0; i < NSLOTS; i++)
        if (slots[i].p) {
            release(&slots[i]);
            if (i % 250 == 0)
                heap_check("while freeing everything");
        }
    heap_check("after freeing everything");
    printf("%lu operations, %lu huge, heap sound\n", ops, huge_done);
    return 0;
}
