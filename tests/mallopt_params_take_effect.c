/* mallopt: glibc's M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD and
 * M_ARENA_MAX return 1 for good values and change what hmm does from then
 * on; an unknown parameter or a bad value (negative, out of range) returns
 * 0 and changes nothing.  Each case runs in a fresh child (this program
 * re-executed with "case NAME") and checks itself:
 *
 *   mmap_threshold    1 MiB: a 2 MiB malloc becomes a huge block, 1 MiB not
 *   mmap_refused      1000 (below 64K) and -1 refused: 32 MiB stays
 *   arena_max         1: four threads holding blocks share one arena
 *   arena_default     without it they do not (so the case above can tell)
 *   arena_refused     0, 1025, -1 refused: the threads get arenas
 *   trim_threshold    1 GiB: a freed 64 MiB burst stays; by default not
 *   trim_refused      -1 refused: the burst is trimmed
 *   top_pad           32 MiB: the region keeps that much free at its top
 *   top_pad_refused   -5 refused: it keeps about the default 1 MiB
 *   unknown           parameters hmm does not know return 0
 *
 * Calls the hmm_* names; links libhmm.la. */
#include "config.h"

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmm.h"
#include "diag_child.h"
#include "hmm_probes.h"

#define MiB ((size_t)1 << 20)

static struct hmm_stats stats(void)
{
    struct hmm_stats s;
    CHECK(hmm_stats(&s) == 0, "hmm_stats");
    return s;
}

/* 1 when a malloc of size is a huge block. */
static int is_huge(size_t size)
{
    size_t before = stats().huge_blocks;
    void *p = hmm_malloc(size);
    CHECK(p != NULL, "malloc(%zu)", size);
    int huge = stats().huge_blocks > before;
    hmm_free(p);
    return huge;
}

/* arena_count while four threads (and this one) hold blocks. */
static unsigned arenas_with_four_threads(void)
{
    return stats_while_threads_hold(4, 50000, 100).arena_count;
}

/* The statistics after a 64 MiB burst was allocated and freed. */
static struct hmm_stats burst(void)
{
    burst_64mib();
    return stats();
}

static void mmap_threshold(void)
{
    CHECK(!is_huge(2 * MiB), "2 MiB is huge before mallopt");
    CHECK(hmm_mallopt(M_MMAP_THRESHOLD, 1 << 20) == 1, "mallopt(M_MMAP_THRESHOLD, 1 MiB) refused");
    CHECK(is_huge(2 * MiB), "2 MiB is not huge after M_MMAP_THRESHOLD = 1 MiB");
    CHECK(!is_huge(1 * MiB), "1 MiB is huge with M_MMAP_THRESHOLD = 1 MiB");
    CHECK(hmm_mallopt(M_MMAP_THRESHOLD, 64 << 10) == 1, "mallopt(M_MMAP_THRESHOLD, 64 KiB) refused");
    CHECK(is_huge(100000), "100000 bytes is not huge after M_MMAP_THRESHOLD = 64 KiB");
}

static void mmap_refused(void)
{
    CHECK(hmm_mallopt(M_MMAP_THRESHOLD, 1000) == 0, "mallopt(M_MMAP_THRESHOLD, 1000) accepted");
    CHECK(hmm_mallopt(M_MMAP_THRESHOLD, -1) == 0, "mallopt(M_MMAP_THRESHOLD, -1) accepted");
    CHECK(!is_huge(2 * MiB) && !is_huge(32 * MiB), "the threshold moved down");
    CHECK(is_huge(32 * MiB + 1), "the threshold moved up");
}

static void arena_max(void)
{
    CHECK(hmm_mallopt(M_ARENA_MAX, 1) == 1, "mallopt(M_ARENA_MAX, 1) refused");
    unsigned n = arenas_with_four_threads();
    CHECK(n == 1, "%u arenas with M_ARENA_MAX = 1", n);
}

static void arena_default(void)
{
    unsigned n = arenas_with_four_threads();
    CHECK(n >= 2, "%u arena(s) for five threads by default", n);
}

static void arena_refused(void)
{
    CHECK(hmm_mallopt(M_ARENA_MAX, 0) == 0, "mallopt(M_ARENA_MAX, 0) accepted");
    CHECK(hmm_mallopt(M_ARENA_MAX, 1025) == 0, "mallopt(M_ARENA_MAX, 1025) accepted");
    CHECK(hmm_mallopt(M_ARENA_MAX, -1) == 0, "mallopt(M_ARENA_MAX, -1) accepted");
    unsigned n = arenas_with_four_threads();
    CHECK(n >= 2, "%u arena(s) for five threads after refused M_ARENA_MAX", n);
}

static void trim_threshold(void)
{
    CHECK(hmm_mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1, "mallopt(M_TRIM_THRESHOLD, 1 GiB) refused");
    struct hmm_stats s = burst();
    CHECK(s.footprint_bytes >= 48 * MiB, "footprint %zu after the burst with M_TRIM_THRESHOLD = 1 GiB",
          s.footprint_bytes);
    /* and back down: the next chunk given back trims the top */
    CHECK(hmm_mallopt(M_TRIM_THRESHOLD, 0) == 1, "mallopt(M_TRIM_THRESHOLD, 0) refused");
    s = burst();
    CHECK(s.footprint_bytes <= 16 * MiB, "footprint %zu after the burst with M_TRIM_THRESHOLD = 0",
          s.footprint_bytes);
}

static void trim_refused(void)
{
    CHECK(hmm_mallopt(M_TRIM_THRESHOLD, -1) == 0, "mallopt(M_TRIM_THRESHOLD, -1) accepted");
    struct hmm_stats s = burst();
    CHECK(s.footprint_bytes <= 16 * MiB, "footprint %zu after the burst: not trimmed", s.footprint_bytes);
}

static void top_pad(void)
{
    CHECK(hmm_mallopt(M_TOP_PAD, 32 << 20) == 1, "mallopt(M_TOP_PAD, 32 MiB) refused");
    struct hmm_stats s = burst();
    CHECK(s.region_free_bytes >= 32 * MiB && s.footprint_bytes <= 48 * MiB,
          "after the burst with M_TOP_PAD = 32 MiB: %zu free at the top, footprint %zu",
          s.region_free_bytes, s.footprint_bytes);
}

static void top_pad_refused(void)
{
    CHECK(hmm_mallopt(M_TOP_PAD, -5) == 0, "mallopt(M_TOP_PAD, -5) accepted");
    struct hmm_stats s = burst();
    CHECK(s.region_free_bytes <= 2 * MiB, "after the burst: %zu free at the top", s.region_free_bytes);
}

static void unknown(void)
{
    CHECK(hmm_mallopt(12345, 1) == 0, "mallopt(12345, 1) accepted");
    CHECK(hmm_mallopt(-100, 1) == 0, "mallopt(-100, 1) accepted");
    CHECK(hmm_mallopt(12345, -1) == 0, "mallopt(12345, -1) accepted");
}

static const struct named_case cases[] = {
    { "mmap_threshold", mmap_threshold },
    { "mmap_refused", mmap_refused },
    { "arena_max", arena_max },
    { "arena_default", arena_default },
    { "arena_refused", arena_refused },
    { "trim_threshold", trim_threshold },
    { "trim_refused", trim_refused },
    { "top_pad", top_pad },
    { "top_pad_refused", top_pad_refused },
    { "unknown", unknown },
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    alarm(TEST_TIMEOUT);
    if (argc == 3 && !strcmp(argv[1], "case")) {
        for (size_t i = 0; i < NCASES; i++)
            if (!strcmp(argv[2], cases[i].name)) {
                cases[i].run();
                return 0;
            }
        CHECK(0, "no case %s", argv[2]);
    }
    int failures = 0, ran = 0;
    for (size_t i = 0; i < NCASES; i++) {
        if (argc > 1 && !strstr(cases[i].name, argv[1]))
            continue;
        struct child c;
        child_self(&c, NO_OPTIONS, "case", cases[i].name, NULL);
        ran++;
        if (!child_exited(&c, 0) || c.err_len != 0) {
            printf("FAIL: %s: %s; stdout [%s] stderr [%s]\n", cases[i].name, child_how(&c), c.out, c.err);
            failures++;
        } else {
            printf("PASS: %s\n", cases[i].name);
        }
    }
    CHECK(ran > 0, "no case matches");
    printf("%d of %d cases failed\n", failures, ran);
    return failures ? 1 : 0;
}
