/* hmm-stress: a pthread torture program for the hmm allocator.
 *
 * It calls the hmm_* names only, so the same source builds against the
 * normal library (where they are also malloc and free) and against a
 * --disable-override or ThreadSanitizer build.  The program's own
 * bookkeeping may use stdio and malloc freely: it is not the allocator.
 *
 * Every block it allocates carries a pattern derived from (seed, block id,
 * size) over all of its bytes (blocks of 1 MiB or more: over their first and
 * last 4 KiB and 64 bytes at every 4 KiB in between); the pattern is verified
 * before every free and every realloc, and after a realloc the kept prefix is
 * verified before the block is rewritten under its new id.
 *
 * The rooms: options.c (command line), out.c (output safe in a fork child),
 * pattern.c (patterns and their checks), queue.c (hand-off queues),
 * worker.c (one thread's operations on its slots), monitor.c (footprint
 * samples and the report), one file per scenario, and main.c (the table of
 * scenarios).
 *
 * Exit status: 0 success; 1 usage, system or allocation failure (or a fork
 * child killed by a signal); 2 corrupted block or hmm_check() failure;
 * 3 a bound exceeded (arena count, footprint); 4 a fork child hung. */
#ifndef HMM_TORTURE_H
#define HMM_TORTURE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hmm.h"

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

#define EXIT_USAGE 1
#define EXIT_CORRUPT 2
#define EXIT_BOUND 3
#define EXIT_HANG 4

#define KiB ((size_t)1024)
#define MiB (KiB * KiB)

/* ---- options.c ---- */

enum sizes { SZ_TINY, SZ_SMALL, SZ_MEDIUM, SZ_HUGE, SZ_MIXED };
extern const char *const size_names[];

struct options {
    const char *scenario;     /* a name of main.c's table */
    int threads;
    bool threads_set;
    double seconds;           /* > 0: run for this long */
    uint64_t ops;             /* per thread, when seconds == 0 */
    bool ops_set;
    int sizes;
    int remote_pct, realloc_pct, calloc_pct, aligned_pct, sized_pct;
    uint64_t seed;
    int waves, wave_threads;
    int forks;
    double fork_timeout;
    int child_threads;        /* threads a fork child starts (not under TSan) */
    unsigned max_arenas;
    size_t max_footprint;     /* bytes; 0 = no bound */
    size_t slots;             /* live-block slots per thread */
    bool slots_set;
    size_t live_bytes;        /* per-thread bound on live bytes */
    bool live_set;
    size_t queue;             /* pipeline queue / remote inbox capacity */
    unsigned consumer_delay_us;
    bool handoff_mutex;
    unsigned sample_ms;
    unsigned check_ms;        /* 0: never call hmm_check */
    double progress;          /* seconds between progress lines; 0: none */
    bool print_stats;         /* hmm_stats_print at the end */
    bool quiet;
    bool verbose;
};
extern struct options opt;

/* Parses argv into opt; exits on a bad option (0 after --help). */
void parse_options(int argc, char **argv);

/* ---- out.c: output through write(2), safe in a fork child ---- */

void info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
double now_s(void);
void sleep_us(unsigned us);

/* ---- pattern.c: every block's pattern ---- */

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

enum how { HOW_MALLOC, HOW_CALLOC, HOW_MEMALIGN, HOW_POSIX_MEMALIGN, HOW_ALIGNED_ALLOC, HOW_REALLOC, HOW_REALLOCARRAY };

struct blk {
    unsigned char *p;
    size_t size;
    uint64_t id;     /* (thread tag << 40) | serial */
    uint32_t align;  /* 0: default alignment */
    uint32_t how;
};

#define NO_MISMATCH SIZE_MAX
enum pat_op { OP_FILL, OP_CHECK, OP_ZERO };

uint64_t pat_key(uint64_t id, size_t size);
/* Applies op to the bytes the pattern of a block of `size` covers, limited
 * to [0, limit).  Returns the first mismatching offset or NO_MISMATCH. */
size_t pattern_op(enum pat_op op, unsigned char *p, uint64_t key, size_t size, size_t limit);
/* Prints the block, the offset and a hex dump, and exits EXIT_CORRUPT. */
void corruption(const struct blk *b, const unsigned char *where, uint64_t key, size_t off, const char *when,
                bool zero) __attribute__((noreturn));
void verify_blk(const struct blk *b, const char *when);
void check_pointer(const struct blk *b, const char *call);

/* ---- queue.c: bounded multi-producer multi-consumer hand-off queues.
 * Lock-free (Vyukov's sequence-numbered ring) by default, or a
 * mutex-protected ring (--handoff mutex). ---- */

struct cell {
    _Atomic size_t seq;
    struct blk b;
};

struct queue {
    struct cell *cells;
    size_t mask;
    bool locked;
    pthread_mutex_t mu;
    size_t lhead, ltail; /* mutex mode */
    _Alignas(64) _Atomic size_t head;
    _Alignas(64) _Atomic size_t tail;
};

void q_init(struct queue *q, size_t cap);
void q_destroy(struct queue *q);
bool q_push(struct queue *q, const struct blk *b);
bool q_pop(struct queue *q, struct blk *b);

/* ---- worker.c: one thread's blocks and operations ---- */

struct group;

struct worker {
    unsigned idx;            /* index in its group */
    uint64_t tag;            /* unique thread tag for block ids */
    uint64_t rng;
    uint64_t serial;
    struct blk *slots;
    size_t nslots, nlive;
    size_t live_bytes, budget;
    uint64_t ops_limit;      /* 0: run until stop */
    struct group *g;
    struct queue *inbox;     /* remote frees for this worker, or NULL */
    struct queue *pipe;      /* pipeline: the pair's queue */
    _Atomic int *pipe_done;  /* pipeline: the producer finished */
    int wave;
    /* counters */
    uint64_t ops, mallocs, frees, reallocs, remote_sent, remote_recv;
    pthread_t th;
    char pad[64];
};

/* Workers that hand blocks to each other's inboxes. */
struct group {
    struct worker *w;
    unsigned n;
    struct queue *inboxes;
    bool fork_hammers;       /* the workers also touch the fork pool */
    pthread_barrier_t start; /* the workers and the main thread */
    pthread_barrier_t end;   /* the workers: no hand-off after it */
};

extern _Atomic int g_stop;
extern double g_deadline; /* set before the workers start; 0: none */
extern _Atomic int g_finished;

/* The fork scenario's pool of blocks shared between the hammer threads and
 * inherited by the children: the main thread holds its lock across fork. */
#define FPOOL_CAP 64
struct fork_pool {
    pthread_mutex_t mu;
    struct blk b[FPOOL_CAP];
    unsigned n;
};
extern struct fork_pool fpool;

static inline uint64_t rnd(struct worker *w)
{
    uint64_t x = w->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 0x2545f4914f6cdd1dULL;
}

static inline unsigned pct(struct worker *w)
{
    return (unsigned)(rnd(w) % 100);
}

void worker_init(struct worker *w, unsigned idx, size_t nslots, size_t budget, uint64_t ops_limit);
size_t pick_size(struct worker *w);
size_t pick_realloc_size(struct worker *w, size_t old);
void alloc_blk(struct worker *w, struct blk *b, size_t size);
void free_blk(struct worker *w, struct blk *b, const char *when);
void realloc_blk(struct worker *w, struct blk *b, size_t nsize);
void drain_inbox(struct worker *w, unsigned max);
/* One operation on a random slot: allocate, free (locally or by another
 * thread), or realloc; keeps the worker's live bytes under its budget. */
void step(struct worker *w, bool fork_role);
bool worker_done(const struct worker *w);
void alloc_slots(struct worker *w);
void free_all_slots(struct worker *w, const char *when);

/* ---- group.c: starting and joining workers ---- */

void start_thread(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);
size_t default_slots(void);
size_t default_budget(void);
/* Starts n workers of private_main, held at a start barrier until
 * group_go; stack = 0 for the default stack size. */
struct group *group_start(unsigned n, size_t stack, size_t nslots, size_t budget, uint64_t ops_limit,
                          bool fork_hammers);
void group_go(struct group *g);
/* Joins the workers, adds their totals and frees the group. */
void group_join(struct group *g);

/* ---- monitor.c: footprint samples, totals, the report ---- */

struct sample {
    bool have_stats;
    size_t footprint;
    size_t dirty;        /* of footprint, free chunks kept resident for reuse */
    unsigned arenas;
    size_t rss, hwm;
};

extern struct hmm_stats stats_buf; /* the last sample's; main thread only */

void monitor_start(void);
/* Takes a sample, tracks the peaks and enforces --max-footprint-mb. */
void monitor_tick(struct sample *out);
/* Samples until the deadline (then raises the stop flag) or until `n`
 * threads have reported finished. */
void monitor_run(double deadline, int n);
size_t sample_footprint(const struct sample *s);
double mib(size_t b);
void add_totals(const struct worker *w);
void report(double elapsed);

/* ---- the scenarios: each runs with `threads` threads (main.c's default
 * unless --threads) and returns the seconds it took ---- */

struct scenario {
    const char *name;
    unsigned default_threads;
    double (*run)(unsigned threads);
};

double run_private(unsigned threads);
double run_many(unsigned threads);
double run_pipeline(unsigned threads);
double run_churn(unsigned threads);
double run_fork(unsigned threads);

/* Operations per thread: --ops, or `dflt` unless --seconds is given. */
uint64_t ops_per_thread(uint64_t dflt);

#endif
