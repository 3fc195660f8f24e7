/* hmm-bench: allocator workloads modelling what servers do.
 *
 * Every workload calls the plain malloc family, so that LD_PRELOAD (or
 * linking) chooses the allocator under test.  Work is deterministic: fixed
 * operation counts and a seeded PRNG per thread, so two allocators do exactly
 * the same calls in the same order (per thread). */
#ifndef HMM_BENCH_H
#define HMM_BENCH_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct bench_params {
    int threads;        /* -t: worker threads (see each workload for meaning) */
    double scale;       /* -s: multiplies the default operation counts */
    uint64_t ops;       /* -n: operations per thread, overrides the default */
};

struct workload {
    const char *name;
    const char *summary;
    uint64_t default_ops;                 /* per thread, at scale 1 */
    /* Runs the workload with ops operations per thread; returns the total
     * number of operations done (for the report line). */
    uint64_t (*run)(const struct bench_params *p, uint64_t ops);
};

extern const struct workload wl_larson, wl_prodcon, wl_scratch, wl_churn,
    wl_large, wl_realloc, wl_idle, wl_fast32, wl_fastcycle, wl_soak, wl_burst,
    wl_fastfifo, wl_xmalloc, wl_simple, wl_mstress;

/* xorshift64*: small, fast, good enough for picking sizes and slots. */
static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static inline uint64_t rng_seed(uint64_t workload_salt, uint64_t thread)
{
    /* splitmix64 of the pair, never zero */
    uint64_t z = workload_salt * 0x9E3779B97F4A7C15ULL + thread + 1;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return z ? z : 0x1234567ULL;
}

/* Uniform in [lo, hi]. */
static inline size_t rng_range(uint64_t *s, size_t lo, size_t hi)
{
    return lo + (size_t)((rng_next(s) >> 11) % (hi - lo + 1));
}

/* Log-uniform in [lo, hi]: each power-of-two band is equally likely, sizes
 * uniform within a band; lo and hi are powers of two. */
static inline size_t rng_logsize(uint64_t *s, size_t lo, size_t hi)
{
    unsigned elo = (unsigned)__builtin_ctzll(lo);
    unsigned ehi = (unsigned)__builtin_ctzll(hi);
    uint64_t r = rng_next(s);
    unsigned e = elo + (unsigned)((r >> 8) % (ehi - elo));
    size_t band = (size_t)1 << e;
    return band + (size_t)((r >> 32) % band);
}

/* Keeps the compiler from reasoning about a pointer or a value. */
#define BENCH_SINK(p) __asm__ volatile("" : : "r"(p) : "memory")

/* Runs fn on n threads, thread i getting (char *)args + i * argsize, and
 * joins them; exits on failure. */
void bench_run_threads(int n, void *(*fn)(void *), void *args, size_t argsize);
/* The two halves of bench_run_threads, for workloads that measure between. */
pthread_t *bench_start_threads(int n, void *(*fn)(void *), void *args, size_t argsize);
void bench_join_threads(int n, pthread_t *tid);

/* The process's resident set now (/proc/self/statm), KiB; -1 if unknown. */
long bench_rss_kib(void);

/* The argument of the workloads whose threads each do ops steps from their
 * own seed and leave a checksum. */
struct seeded_arg {
    uint64_t ops;
    uint64_t seed;
    uint64_t sum;
    char pad[64];
};

/* Runs fn on bp->threads threads, seeds from stream; returns the ops done. */
uint64_t bench_run_seeded(const struct bench_params *bp, uint64_t ops, uint64_t stream,
                          void *(*fn)(void *));
void bench_die(const char *what);
/* calloc, or exit. */
void *bench_calloc(size_t n, size_t size);
/* Sums the n checksums that stand stride bytes apart from *first, so that
 * the compiler keeps the work that made them. */
void bench_sink_sums(const uint64_t *first, int n, size_t stride);

#endif
