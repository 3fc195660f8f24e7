/* Small helpers shared by the C tests of `make check`.
 *
 * Exit codes follow automake's parallel test harness: 0 pass, 77 skip,
 * anything else fails.  A failed CHECK prints the file, the line, the
 * expression and a message, then exits 1. */
#ifndef HMM_TESTUTIL_H
#define HMM_TESTUTIL_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define TEST_SKIP 77
/* Seconds before SIGALRM ends a test that hangs. */
#define TEST_TIMEOUT 600

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__,          \
                    __LINE__, #cond);                                       \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
            fflush(stderr);                                                 \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

/* splitmix64: a small, fast, seedable PRNG (one 64-bit word of state). */
static inline uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi] (inclusive). */
static inline size_t rng_range(uint64_t *state, size_t lo, size_t hi)
{
    return lo + (size_t)(rng_next(state) % (uint64_t)(hi - lo + 1));
}

/* One band of a size mix: `weight` parts of the mix, uniform in [lo, hi]. */
struct size_band {
    unsigned weight;
    size_t lo, hi;
};

/* A size from a mix of n bands: one draw picks the band by weight (of
 * their sum), another the size in it. */
static inline size_t rng_mix_size(uint64_t *state, const struct size_band *bands, size_t n)
{
    unsigned total = 0, below = 0;
    for (size_t i = 0; i < n; i++)
        total += bands[i].weight;
    unsigned pick = (unsigned)rng_range(state, 0, total - 1);
    size_t i = 0;
    while (i + 1 < n && pick >= below + bands[i].weight)
        below += bands[i++].weight;
    return rng_range(state, bands[i].lo, bands[i].hi);
}

/* Log-uniform in [lo, hi), lo and hi powers of two: each doubling is
 * equally likely, sizes uniform within it. */
static inline size_t rng_log_size(uint64_t *state, size_t lo, size_t hi)
{
    unsigned bands = (unsigned)(__builtin_ctzll(hi) - __builtin_ctzll(lo));
    size_t band = lo << (rng_next(state) % bands);
    return band + (size_t)(rng_next(state) % band);
}

/* Seed from $HMM_TEST_SEED when set (to replay a failure), else the default.
 * The seed in use is printed so that a failing run can be replayed. */
static inline uint64_t test_seed(uint64_t dflt)
{
    const char *s = getenv("HMM_TEST_SEED");
    uint64_t seed = s && *s ? strtoull(s, NULL, 0) : dflt;
    printf("seed %llu (set HMM_TEST_SEED to replay)\n", (unsigned long long)seed);
    fflush(stdout);
    return seed;
}

/* A pattern that depends on the block's key and on every byte's position, so
 * that lost, shifted, overlapping or foreign writes all show up.  Byte i is
 * byte i % 8 of pattern_word(key, i / 8) as stored in memory, so a prefix of
 * a filled block checks correctly with a shorter length. */
static inline uint64_t pattern_word(uint64_t key, size_t word_index)
{
    uint64_t z = key + 0x9E3779B97F4A7C15ull * (word_index + 1);
    return z ^ (z >> 29);
}

static inline void pattern_fill(void *p, size_t n, uint64_t key)
{
    unsigned char *b = (unsigned char *)p;
    size_t words = n / 8, i;
    for (i = 0; i < words; i++) {
        uint64_t w = pattern_word(key, i);
        memcpy(b + i * 8, &w, 8);
    }
    if (words * 8 < n) {
        uint64_t w = pattern_word(key, words);
        memcpy(b + words * 8, &w, n - words * 8);
    }
}

/* Returns the offset of the first wrong byte, or (size_t)-1 when all are
 * right. */
static inline size_t pattern_check(const void *p, size_t n, uint64_t key)
{
    const unsigned char *b = (const unsigned char *)p;
    size_t words = n / 8, i;
    for (i = 0; i < words; i++) {
        uint64_t w = pattern_word(key, i), got;
        memcpy(&got, b + i * 8, 8);
        if (got != w) {
            unsigned char t[8];
            size_t j;
            memcpy(t, &w, 8);
            for (j = 0; j < 8; j++)
                if (b[i * 8 + j] != t[j])
                    return i * 8 + j;
        }
    }
    if (words * 8 < n) {
        uint64_t w = pattern_word(key, words);
        unsigned char t[8];
        memcpy(t, &w, 8);
        for (i = words * 8; i < n; i++)
            if (b[i] != t[i - words * 8])
                return i;
    }
    return (size_t)-1;
}

/* The process's address space and resident bytes from /proc/self/statm,
 * read with read(2) into the stack: measuring calls no allocator function. */
static inline void statm_bytes(size_t *size, size_t *resident)
{
    char text[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    CHECK(fd >= 0, "cannot open /proc/self/statm");
    ssize_t len = read(fd, text, sizeof(text) - 1);
    close(fd);
    CHECK(len > 0, "cannot read /proc/self/statm");
    text[len] = '\0';
    unsigned long pages, rss;
    CHECK(sscanf(text, "%lu %lu", &pages, &rss) == 2, "cannot parse /proc/self/statm");
    *size = (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
    *resident = (size_t)rss * (size_t)sysconf(_SC_PAGESIZE);
}

static inline size_t resident_bytes(void)
{
    size_t size, resident;
    statm_bytes(&size, &resident);
    return resident;
}

/* Resident pages (mincore(2)) among the whole pages of count blocks of
 * size bytes each; *whole, unless NULL, gets how many whole pages. */
static inline size_t resident_pages_of(void *const *block, int count, size_t size, size_t *whole)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), resident = 0, pages = 0;
    for (int i = 0; i < count; i++) {
        uintptr_t from = ((uintptr_t)block[i] + page - 1) & ~(page - 1);
        uintptr_t to = ((uintptr_t)block[i] + size) & ~(page - 1);
        for (uintptr_t at = from; at < to; at += page, pages++) {
            unsigned char in_core;
            CHECK(mincore((void *)at, page, &in_core) == 0, "mincore");
            resident += in_core & 1;
        }
    }
    if (whole != NULL)
        *whole = pages;
    return resident;
}

static inline size_t address_space_bytes(void)
{
    size_t size, resident;
    statm_bytes(&size, &resident);
    return size;
}

static inline int is_aligned(const void *p, size_t alignment)
{
    return ((uintptr_t)p & (alignment - 1)) == 0;
}

/* p[0..n) in address order: an insertion sort, as qsort may call malloc,
 * whose blocks would fill the cache a test counts. */
static inline void sort_by_address(void **p, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && (uintptr_t)p[j - 1] > (uintptr_t)p[j]; j--) {
            void *t = p[j];
            p[j] = p[j - 1];
            p[j - 1] = t;
        }
}

#ifdef HMM_H
/* The payload bytes parked in the calling thread's cache (hmm_stats),
 * for the tests that include hmm.h before this header. */
static inline size_t cached_bytes(void)
{
    struct hmm_stats s;
    CHECK(hmm_stats(&s) == 0, "hmm_stats failed");
    return s.cached_bytes;
}

/* At least least blocks of size into blocks, then more (at most most in
 * all) until the calling thread's cache holds none of its own: the next
 * malloc of the size refills. */
static inline void malloc_until_cache_empty(void **blocks, int least, int most, size_t size)
{
    int n = 0;
    do
        CHECK((blocks[n++] = hmm_malloc(size)) != NULL, "malloc failed");
    while (n < least || (cached_bytes() != 0 && n < most));
    CHECK(cached_bytes() == 0, "the calling thread's cache still holds blocks after %d mallocs", n);
}

/* count holes of hole_size bytes, written, between live walls of
 * wall_size, all allocated in turn; the holes are freed, the walls kept.
 * Returns how many of the holes' whole pages stay resident; *pages gets
 * how many there are. */
static inline size_t holes_left_resident(void **hole, void **wall, int count, size_t hole_size, size_t wall_size,
                                         size_t *pages)
{
    for (int i = 0; i < count; i++) {
        hole[i] = hmm_malloc(hole_size);
        wall[i] = hmm_malloc(wall_size);
        CHECK(hole[i] != NULL && wall[i] != NULL, "malloc failed");
        memset(hole[i], 0x5a, hole_size);
    }
    for (int i = 0; i < count; i++)
        hmm_free(hole[i]);
    return resident_pages_of(hole, count, hole_size, pages);
}
#endif

#endif
