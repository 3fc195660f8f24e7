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
 * Exit status: 0 success; 1 usage, system or allocation failure (or a fork
 * child killed by a signal); 2 corrupted block or hmm_check() failure;
 * 3 a bound exceeded (arena count, footprint); 4 a fork child hung. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

/* ------------------------------------------------------------------ */
/* Options */

enum scenario { SC_PRIVATE, SC_PIPELINE, SC_CHURN, SC_MANY, SC_FORK };
enum sizes { SZ_TINY, SZ_SMALL, SZ_MEDIUM, SZ_HUGE, SZ_MIXED };
static const char *const scenario_names[] = {"private", "pipeline", "churn", "many", "fork"};
static const char *const size_names[] = {"tiny", "small", "medium", "huge", "mixed"};

static struct options {
    int scenario;
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
} opt = {
    .scenario = SC_PRIVATE,
    .threads = 8,
    .sizes = SZ_MIXED,
    .remote_pct = 10,
    .realloc_pct = 10,
    .calloc_pct = 5,
    .aligned_pct = 5,
    .sized_pct = 10,
    .seed = 1,
    .waves = 100,
    .wave_threads = 200,
    .forks = 200,
    .fork_timeout = 20.0,
    .child_threads = 2,
    .max_arenas = 64,
    .queue = 1024,
    .sample_ms = 50,
};

/* ------------------------------------------------------------------ */
/* Output that is safe in a fork child: no stdio locks, no allocation. */

__attribute__((format(printf, 2, 0))) static void outv(int fd, const char *fmt, va_list ap)
{
    char buf[1024];
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof buf)
        n = sizeof buf - 1;
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, (size_t)n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (int)w;
    }
}

__attribute__((format(printf, 1, 2))) static void info(const char *fmt, ...)
{
    if (opt.quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    outv(STDOUT_FILENO, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 1, 2))) static void err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    outv(STDERR_FILENO, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 2, 3), noreturn)) static void die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    outv(STDERR_FILENO, fmt, ap);
    va_end(ap);
    _exit(code);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_us(unsigned us)
{
    struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------------ */
/* Random numbers and patterns */

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t pat_key(uint64_t id, size_t size)
{
    return mix64(opt.seed * 0x9e3779b97f4a7c15ULL ^ mix64(id) ^ ((uint64_t)size * 0xff51afd7ed558ccdULL));
}

static inline uint64_t pat_word(uint64_t key, size_t w)
{
    uint64_t v = key + (uint64_t)w * 0x9e3779b97f4a7c15ULL;
    return v ^ (v >> 29);
}

static inline unsigned char pat_byte(uint64_t key, size_t off)
{
    return (unsigned char)(pat_word(key, off >> 3) >> ((off & 7) * 8));
}

#define NO_MISMATCH SIZE_MAX
#define SPARSE_MIN MiB /* blocks at least this large get the sparse pattern */
#define PAGE_SPAN (4 * KiB)
#define PROBE 64

enum pat_op { OP_FILL, OP_CHECK, OP_ZERO };

static size_t range_op(enum pat_op op, unsigned char *p, uint64_t key, size_t from, size_t to)
{
    size_t o = from;
    switch (op) {
    case OP_FILL:
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        for (; o < to && (o & 7); o++)
            p[o] = pat_byte(key, o);
        for (; o + 8 <= to; o += 8) {
            uint64_t v = pat_word(key, o >> 3);
            memcpy(p + o, &v, 8);
        }
#endif
        for (; o < to; o++)
            p[o] = pat_byte(key, o);
        return NO_MISMATCH;
    case OP_CHECK:
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        for (; o < to && (o & 7); o++)
            if (p[o] != pat_byte(key, o))
                return o;
        for (; o + 8 <= to; o += 8) {
            uint64_t v;
            memcpy(&v, p + o, 8);
            if (v != pat_word(key, o >> 3))
                break;
        }
#endif
        for (; o < to; o++)
            if (p[o] != pat_byte(key, o))
                return o;
        return NO_MISMATCH;
    case OP_ZERO:
        for (; o < to && (o & 7); o++)
            if (p[o])
                return o;
        for (; o + 8 <= to; o += 8) {
            uint64_t v;
            memcpy(&v, p + o, 8);
            if (v)
                break;
        }
        for (; o < to; o++)
            if (p[o])
                return o;
        return NO_MISMATCH;
    }
    return NO_MISMATCH;
}

/* Applies op to the bytes the pattern of a block of `size` covers, limited
 * to [0, limit).  Returns the first mismatching offset or NO_MISMATCH. */
static size_t pattern_op(enum pat_op op, unsigned char *p, uint64_t key, size_t size, size_t limit)
{
    size_t r;
    if (limit > size)
        limit = size;
    if (size < SPARSE_MIN)
        return range_op(op, p, key, 0, limit);
    if ((r = range_op(op, p, key, 0, limit < PAGE_SPAN ? limit : PAGE_SPAN)) != NO_MISMATCH)
        return r;
    for (size_t o = PAGE_SPAN; o + PAGE_SPAN < size && o < limit; o += PAGE_SPAN) {
        size_t e = o + PROBE < limit ? o + PROBE : limit;
        if ((r = range_op(op, p, key, o, e)) != NO_MISMATCH)
            return r;
    }
    if (size - PAGE_SPAN < limit)
        return range_op(op, p, key, size - PAGE_SPAN, limit);
    return NO_MISMATCH;
}

/* ------------------------------------------------------------------ */
/* Blocks */

enum how { HOW_MALLOC, HOW_CALLOC, HOW_MEMALIGN, HOW_POSIX_MEMALIGN, HOW_ALIGNED_ALLOC, HOW_REALLOC, HOW_REALLOCARRAY };
static const char *const how_names[] = {"malloc", "calloc", "memalign", "posix_memalign",
                                        "aligned_alloc", "realloc", "reallocarray"};

struct blk {
    unsigned char *p;
    size_t size;
    uint64_t id;     /* (thread tag << 40) | serial */
    uint32_t align;  /* 0: default alignment */
    uint32_t how;
};

static void hexdump(const char *label, const unsigned char *p, size_t from, size_t to, uint64_t key, bool expected)
{
    char line[16 * 3 + 64];
    for (size_t o = from; o < to; o += 16) {
        int n = snprintf(line, sizeof line, "    %s +%-8zu", label, o);
        for (size_t i = o; i < o + 16 && i < to; i++)
            n += snprintf(line + n, sizeof line - (size_t)n, " %02x", expected ? pat_byte(key, i) : p[i]);
        err("%s\n", line);
    }
}

__attribute__((noreturn)) static void corruption(const struct blk *b, const unsigned char *where, uint64_t key,
                                                 size_t off, const char *when, bool zero)
{
    unsigned char exp = zero ? 0 : pat_byte(key, off);
    err("hmm-stress: CORRUPTION %s: block id=%#" PRIx64 " (thread tag %" PRIu64 ", serial %" PRIu64
        ") %s(size %zu, align %u) at %p: offset %zu expected 0x%02x found 0x%02x\n",
        when, b->id, b->id >> 40, b->id & ((UINT64_C(1) << 40) - 1), how_names[b->how], b->size, b->align,
        (const void *)where, off, exp, where[off]);
    size_t from = off & ~(size_t)15, to = from + 32;
    size_t lim = b->size;
    if (to > lim)
        to = lim;
    if (!zero)
        hexdump("expected", where, from, to, key, true);
    hexdump("found   ", where, from, to, key, false);
    _exit(EXIT_CORRUPT);
}

static void verify_blk(const struct blk *b, const char *when)
{
    uint64_t key = pat_key(b->id, b->size);
    size_t off = pattern_op(OP_CHECK, b->p, key, b->size, b->size);
    if (off != NO_MISMATCH)
        corruption(b, b->p, key, off, when, false);
}

static void check_pointer(const struct blk *b, const char *call)
{
    size_t a = b->align > 16 ? b->align : 16;
    if ((uintptr_t)b->p % a)
        die(EXIT_CORRUPT, "hmm-stress: %s(%zu) returned %p, not %zu-byte aligned\n", call, b->size, (void *)b->p, a);
    size_t u = hmm_malloc_usable_size(b->p);
    if (u < b->size)
        die(EXIT_CORRUPT, "hmm-stress: %s(%zu) returned %p with malloc_usable_size %zu\n", call, b->size,
            (void *)b->p, u);
}

/* ------------------------------------------------------------------ */
/* Hand-off queues: bounded, multi-producer multi-consumer.  Lock-free
 * (Vyukov's sequence-numbered ring) by default, or a mutex-protected ring. */

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

static void q_init(struct queue *q, size_t cap)
{
    size_t n = 2;
    while (n < cap)
        n <<= 1;
    q->cells = calloc(n, sizeof *q->cells);
    if (!q->cells)
        die(EXIT_USAGE, "hmm-stress: out of memory for a queue\n");
    q->mask = n - 1;
    q->locked = opt.handoff_mutex;
    pthread_mutex_init(&q->mu, NULL);
    q->lhead = q->ltail = 0;
    for (size_t i = 0; i < n; i++)
        atomic_init(&q->cells[i].seq, i);
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
}

static void q_destroy(struct queue *q)
{
    free(q->cells);
    q->cells = NULL;
    pthread_mutex_destroy(&q->mu);
}

static bool q_push(struct queue *q, const struct blk *b)
{
    if (q->locked) {
        pthread_mutex_lock(&q->mu);
        bool ok = q->lhead - q->ltail <= q->mask;
        if (ok)
            q->cells[q->lhead++ & q->mask].b = *b;
        pthread_mutex_unlock(&q->mu);
        return ok;
    }
    size_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);
    struct cell *c;
    for (;;) {
        c = &q->cells[pos & q->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t d = (intptr_t)seq - (intptr_t)pos;
        if (d == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        } else if (d < 0) {
            return false;
        } else {
            pos = atomic_load_explicit(&q->head, memory_order_relaxed);
        }
    }
    c->b = *b;
    atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
    return true;
}

static bool q_pop(struct queue *q, struct blk *b)
{
    if (q->locked) {
        pthread_mutex_lock(&q->mu);
        bool ok = q->lhead != q->ltail;
        if (ok)
            *b = q->cells[q->ltail++ & q->mask].b;
        pthread_mutex_unlock(&q->mu);
        return ok;
    }
    size_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
    struct cell *c;
    for (;;) {
        c = &q->cells[pos & q->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t d = (intptr_t)seq - (intptr_t)(pos + 1);
        if (d == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        } else if (d < 0) {
            return false;
        } else {
            pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
        }
    }
    *b = c->b;
    atomic_store_explicit(&c->seq, pos + q->mask + 1, memory_order_release);
    return true;
}

/* ------------------------------------------------------------------ */
/* Workers */

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

struct group {
    struct worker *w;
    unsigned n;
    struct queue *inboxes;
};

static _Atomic int g_stop;
static double g_deadline; /* set before the workers start; 0: none */
static _Atomic int g_finished;
static _Atomic uint64_t g_tags;

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

static void worker_init(struct worker *w, unsigned idx, size_t nslots, size_t budget, uint64_t ops_limit)
{
    w->idx = idx;
    w->tag = atomic_fetch_add(&g_tags, 1) + 1;
    w->rng = mix64(opt.seed ^ mix64(w->tag * 0x9e3779b97f4a7c15ULL)) | 1;
    w->serial = 0;
    w->nslots = nslots;
    w->slots = NULL;
    w->budget = budget;
    w->ops_limit = ops_limit;
}

static size_t pick_class_size(struct worker *w, int cls)
{
    switch (cls) {
    case SZ_TINY:
        return 1 + rnd(w) % 64;
    case SZ_SMALL:
        return 1 + rnd(w) % 1024;
    case SZ_MEDIUM:
        return KiB + rnd(w) % (256 * KiB - KiB + 1);
    case SZ_HUGE:
        return MiB + rnd(w) % (63 * MiB + 1);
    default: {
        unsigned r = (unsigned)(rnd(w) % 100000);
        if (r < 60000)
            return pick_class_size(w, SZ_TINY);
        if (r < 95000)
            return pick_class_size(w, SZ_SMALL);
        if (r < 99990)
            return pick_class_size(w, SZ_MEDIUM);
        return pick_class_size(w, SZ_HUGE);
    }
    }
}

static size_t pick_size(struct worker *w)
{
    size_t s = pick_class_size(w, opt.sizes);
    if (w->budget && s > w->budget)
        s = w->budget;
    return s;
}

static uint64_t next_id(struct worker *w)
{
    return (w->tag << 40) | (++w->serial & ((UINT64_C(1) << 40) - 1));
}

/* Allocates a block of `size` bytes by one of the allocation calls, checks
 * it and fills it with its pattern. */
static void alloc_blk(struct worker *w, struct blk *b, size_t size)
{
    unsigned r = pct(w);
    const char *call;
    void *p = NULL;
    b->align = 0;
    b->size = size;
    if (r < (unsigned)opt.calloc_pct) {
        b->how = HOW_CALLOC;
        call = "calloc";
        if ((size & 1) == 0 && (rnd(w) & 1))
            p = hmm_calloc(2, size / 2);
        else
            p = hmm_calloc(size, 1);
    } else if (r < (unsigned)(opt.calloc_pct + opt.aligned_pct)) {
        b->align = 32u << (rnd(w) % 8); /* 32 .. 4096 */
        switch (rnd(w) % 3) {
        case 0:
            b->how = HOW_MEMALIGN;
            call = "memalign";
            p = hmm_memalign(b->align, size);
            break;
        case 1:
            b->how = HOW_POSIX_MEMALIGN;
            call = "posix_memalign";
            {
                int e = hmm_posix_memalign(&p, b->align, size);
                if (e) {
                    errno = e;
                    p = NULL;
                }
            }
            break;
        default:
            b->how = HOW_ALIGNED_ALLOC;
            call = "aligned_alloc";
            size = (size + b->align - 1) & ~(size_t)(b->align - 1);
            b->size = size;
            p = hmm_aligned_alloc(b->align, size);
            break;
        }
    } else {
        b->how = HOW_MALLOC;
        call = "malloc";
        p = hmm_malloc(size);
    }
    if (!p)
        die(EXIT_USAGE, "hmm-stress: %s(%zu) failed: %s\n", call, b->size, strerror(errno));
    b->p = p;
    b->id = next_id(w);
    check_pointer(b, call);
    if (b->how == HOW_CALLOC) {
        size_t off = pattern_op(OP_ZERO, b->p, 0, b->size, b->size);
        if (off != NO_MISMATCH)
            corruption(b, b->p, 0, off, "calloc returned non-zero memory", true);
    }
    pattern_op(OP_FILL, b->p, pat_key(b->id, b->size), b->size, b->size);
    w->ops++;
    w->mallocs++;
}

/* Verifies a block and frees it by hmm_free or a sized free. */
static void free_blk(struct worker *w, struct blk *b, const char *when)
{
    verify_blk(b, when);
    if (opt.sized_pct && pct(w) < (unsigned)opt.sized_pct) {
        if (b->how == HOW_ALIGNED_ALLOC)
            hmm_free_aligned_sized(b->p, b->align, b->size);
        else if (b->align == 0)
            hmm_free_sized(b->p, b->size);
        else
            hmm_free(b->p);
    } else {
        hmm_free(b->p);
    }
    b->p = NULL;
    w->ops++;
    w->frees++;
}

/* Verifies a block, reallocates it to nsize, verifies the kept prefix and
 * rewrites it under a new id. */
static void realloc_blk(struct worker *w, struct blk *b, size_t nsize)
{
    verify_blk(b, "before realloc");
    struct blk old = *b;
    uint64_t okey = pat_key(b->id, b->size);
    void *np;
    const char *call;
    if ((nsize & 1) == 0 && pct(w) < 20) {
        call = "reallocarray";
        np = hmm_reallocarray(b->p, nsize / 2, 2);
        b->how = HOW_REALLOCARRAY;
    } else {
        call = "realloc";
        np = hmm_realloc(b->p, nsize);
        b->how = HOW_REALLOC;
    }
    if (!np)
        die(EXIT_USAGE, "hmm-stress: %s(%p, %zu) failed: %s\n", call, (void *)old.p, nsize, strerror(errno));
    size_t keep = old.size < nsize ? old.size : nsize;
    size_t off = pattern_op(OP_CHECK, np, okey, old.size, keep);
    if (off != NO_MISMATCH) {
        err("hmm-stress: %s(%p, %zu) from size %zu moved the block to %p\n", call, (void *)old.p, nsize, old.size,
            np);
        corruption(&old, np, okey, off, "in the kept prefix after realloc", false);
    }
    b->p = np;
    b->size = nsize;
    b->align = 0;
    b->id = next_id(w);
    check_pointer(b, call);
    pattern_op(OP_FILL, b->p, pat_key(b->id, b->size), b->size, b->size);
    w->ops++;
    w->reallocs++;
}

static size_t pick_realloc_size(struct worker *w, size_t old)
{
    size_t s;
    switch (rnd(w) % 4) {
    case 0: /* shrink */
        s = 1 + rnd(w) % old;
        break;
    case 1: /* grow a little */
        s = old + 1 + rnd(w) % (old / 2 + 16);
        break;
    default:
        s = pick_size(w);
        break;
    }
    if (w->budget && s > w->budget)
        s = w->budget;
    return s;
}

static void slot_free(struct worker *w, struct blk *b, const char *when)
{
    w->live_bytes -= b->size;
    w->nlive--;
    free_blk(w, b, when);
}

/* Takes whatever other threads handed to this worker, verifies and frees it. */
static void drain_inbox(struct worker *w, unsigned max)
{
    struct blk b;
    while (max-- && q_pop(w->inbox, &b)) {
        free_blk(w, &b, "before a remote free");
        w->remote_recv++;
    }
}

static bool send_remote(struct worker *w, struct blk *b)
{
    struct group *g = w->g;
    unsigned t = (unsigned)(rnd(w) % (g->n - 1));
    if (t >= w->idx)
        t++;
    if (!q_push(g->w[t].inbox, b))
        return false;
    w->remote_sent++;
    return true;
}

/* The fork scenario's pool of blocks shared between the hammer threads and
 * inherited by the children: the main thread holds its lock across fork. */
#define FPOOL_CAP 64
static struct {
    pthread_mutex_t mu;
    struct blk b[FPOOL_CAP];
    unsigned n;
} fpool = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void fpool_touch(struct worker *w)
{
    struct blk b;
    if (rnd(w) & 1) {
        size_t size = pick_size(w);
        alloc_blk(w, &b, size > 64 * KiB ? 64 * KiB : size);
        pthread_mutex_lock(&fpool.mu);
        bool ok = fpool.n < FPOOL_CAP;
        if (ok)
            fpool.b[fpool.n++] = b;
        pthread_mutex_unlock(&fpool.mu);
        if (!ok)
            free_blk(w, &b, "before free (fork pool full)");
    } else {
        pthread_mutex_lock(&fpool.mu);
        bool ok = fpool.n > 0;
        if (ok) {
            unsigned i = (unsigned)(rnd(w) % fpool.n);
            b = fpool.b[i];
            fpool.b[i] = fpool.b[--fpool.n];
        }
        pthread_mutex_unlock(&fpool.mu);
        if (ok)
            free_blk(w, &b, "before free (from the fork pool)");
    }
}

/* One operation on a random slot: allocate, free (locally or by another
 * thread), or realloc; keeps the worker's live bytes under its budget. */
static void step(struct worker *w, bool fork_role)
{
    if (w->inbox && (w->ops & 7) == 0)
        drain_inbox(w, 32);
    if (fork_role && (rnd(w) & 63) == 0) {
        fpool_touch(w);
        return;
    }
    size_t i = rnd(w) % w->nslots;
    struct blk *b = &w->slots[i];
    if (b->p) {
        unsigned r = pct(w);
        if (r < (unsigned)opt.realloc_pct) {
            size_t ns = pick_realloc_size(w, b->size);
            if (w->budget && w->live_bytes - b->size + ns > w->budget) {
                slot_free(w, b, "before free (over budget)");
            } else {
                w->live_bytes -= b->size;
                realloc_blk(w, b, ns);
                w->live_bytes += b->size;
            }
        } else if (w->inbox && w->g && w->g->n > 1 && pct(w) < (unsigned)opt.remote_pct) {
            verify_blk(b, "before a hand-off to another thread");
            if (send_remote(w, b)) {
                w->live_bytes -= b->size;
                w->nlive--;
                b->p = NULL;
            } else {
                slot_free(w, b, "before free");
            }
        } else {
            slot_free(w, b, "before free");
        }
        return;
    }
    size_t size = pick_size(w);
    if (w->budget && w->live_bytes + size > w->budget) {
        /* Over budget: free some other live block instead. */
        for (size_t k = 1; k < w->nslots; k++) {
            struct blk *o = &w->slots[(i + k) % w->nslots];
            if (o->p) {
                slot_free(w, o, "before free (over budget)");
                return;
            }
        }
    }
    alloc_blk(w, b, size);
    w->live_bytes += b->size;
    w->nlive++;
}

static bool worker_done(const struct worker *w)
{
    if (w->ops_limit && w->ops >= w->ops_limit)
        return true;
    /* The workers watch the clock too, in case the monitor is starved. */
    if (g_deadline > 0 && (w->ops & 1023) == 0 && now_s() >= g_deadline)
        return true;
    return atomic_load_explicit(&g_stop, memory_order_relaxed) != 0;
}

static void free_all_slots(struct worker *w, const char *when)
{
    for (size_t i = 0; i < w->nslots; i++)
        if (w->slots[i].p)
            slot_free(w, &w->slots[i], when);
}

static void alloc_slots(struct worker *w)
{
    w->slots = calloc(w->nslots, sizeof *w->slots);
    if (!w->slots)
        die(EXIT_USAGE, "hmm-stress: out of memory for %zu slots\n", w->nslots);
    w->nlive = 0;
    w->live_bytes = 0;
}

/* ------------------------------------------------------------------ */
/* Footprint sampling */

struct sample {
    bool have_stats;
    size_t footprint;
    size_t dirty;        /* of footprint, free chunks kept resident for reuse */
    unsigned arenas;
    size_t rss, hwm;
};

static struct {
    size_t peak_footprint, peak_rss;
    unsigned peak_arenas;
    bool have_stats;
    double last_check;
    double start, last_progress;
} mon;

static void read_status(size_t *rss, size_t *hwm)
{
    char buf[8192];
    *rss = *hwm = 0;
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == sizeof buf - 1)
            break;
    }
    close(fd);
    buf[n] = 0;
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        unsigned long v;
        if (sscanf(line, "VmRSS: %lu kB", &v) == 1)
            *rss = v * KiB;
        else if (sscanf(line, "VmHWM: %lu kB", &v) == 1)
            *hwm = v * KiB;
    }
}

static struct hmm_stats stats_buf; /* main thread only */

static void take_sample(struct sample *s)
{
    memset(s, 0, sizeof *s);
    if (hmm_stats(&stats_buf) == 0) {
        s->have_stats = true;
        s->footprint = stats_buf.footprint_bytes;
        s->dirty = stats_buf.region_dirty_bytes;
        s->arenas = stats_buf.arena_count;
    }
    read_status(&s->rss, &s->hwm);
}

static size_t sample_footprint(const struct sample *s)
{
    return s->have_stats ? s->footprint : s->rss;
}

static double mib(size_t b)
{
    return (double)b / (double)MiB;
}

static void run_check(const char *when)
{
    if (hmm_check() != 0)
        die(EXIT_CORRUPT, "hmm-stress: hmm_check() failed %s\n", when);
}

/* Takes a sample, tracks the peaks and enforces --max-footprint-mb. */
static void monitor_tick(struct sample *out)
{
    struct sample s;
    take_sample(&s);
    mon.have_stats = s.have_stats;
    size_t fp = sample_footprint(&s);
    if (fp > mon.peak_footprint)
        mon.peak_footprint = fp;
    if (s.rss > mon.peak_rss)
        mon.peak_rss = s.rss;
    if (s.arenas > mon.peak_arenas)
        mon.peak_arenas = s.arenas;
    if (opt.max_footprint && fp > opt.max_footprint)
        die(EXIT_BOUND, "hmm-stress: footprint %.1f MiB (%s) exceeds --max-footprint-mb %zu\n", mib(fp),
            s.have_stats ? "hmm_stats footprint_bytes" : "VmRSS", opt.max_footprint / MiB);
    if (opt.check_ms && now_s() - mon.last_check >= opt.check_ms / 1000.0) {
        run_check("while threads run");
        mon.last_check = now_s();
    }
    if (opt.progress > 0 && now_s() - mon.last_progress >= opt.progress) {
        mon.last_progress = now_s();
        info("hmm-stress: [%7.1f s] footprint %.1f MiB (peak %.1f), VmRSS %.1f MiB, arenas %u\n",
             mon.last_progress - mon.start, mib(fp), mib(mon.peak_footprint), mib(s.rss), s.arenas);
    }
    if (out)
        *out = s;
}

/* Samples until the deadline (then raises the stop flag) or until `n`
 * threads have reported finished. */
static void monitor_run(double deadline, int n)
{
    for (;;) {
        double t = now_s();
        if (deadline > 0 && t >= deadline) {
            atomic_store(&g_stop, 1);
            break;
        }
        if (atomic_load(&g_finished) >= n)
            break;
        unsigned us = (opt.sample_ms ? opt.sample_ms : 50) * 1000;
        if (deadline > 0 && (deadline - t) * 1e6 < us)
            us = (unsigned)((deadline - t) * 1e6) + 1;
        sleep_us(us);
        if (opt.sample_ms)
            monitor_tick(NULL);
    }
}

/* ------------------------------------------------------------------ */
/* Totals and report */

struct totals {
    uint64_t ops, mallocs, frees, reallocs, remote_sent, remote_recv;
};
static struct totals tot;

static void add_totals(const struct worker *w)
{
    tot.ops += w->ops;
    tot.mallocs += w->mallocs;
    tot.frees += w->frees;
    tot.reallocs += w->reallocs;
    tot.remote_sent += w->remote_sent;
    tot.remote_recv += w->remote_recv;
}

static void report(double elapsed)
{
    struct sample s;
    monitor_tick(&s);
    if (opt.check_ms)
        run_check("after every thread was joined");
    if (opt.print_stats)
        hmm_stats_print(STDOUT_FILENO, "text");
    if (opt.quiet)
        return;
    info("hmm-stress: %" PRIu64 " ops in %.2f s = %.0f ops/s (mallocs %" PRIu64 ", frees %" PRIu64
         ", reallocs %" PRIu64 ", handed off %" PRIu64 ", remote-freed %" PRIu64 ")\n",
         tot.ops, elapsed, elapsed > 0 ? tot.ops / elapsed : 0.0, tot.mallocs, tot.frees, tot.reallocs,
         tot.remote_sent, tot.remote_recv);
    info("hmm-stress: peak VmHWM %.1f MiB, peak sampled VmRSS %.1f MiB, VmRSS now %.1f MiB\n", mib(s.hwm),
         mib(mon.peak_rss), mib(s.rss));
    if (s.have_stats)
        info("hmm-stress: hmm_stats: peak footprint %.1f MiB, footprint now %.1f MiB, in use %.1f MiB, "
             "arenas now %u (peak %u)\n",
             mib(mon.peak_footprint), mib(s.footprint), mib(stats_buf.in_use_bytes), s.arenas, mon.peak_arenas);
    else
        info("hmm-stress: hmm_stats unavailable\n");
}

/* ------------------------------------------------------------------ */
/* Thread helpers */

static void start_thread(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    int e;
    while ((e = pthread_create(th, attr, fn, arg)) == EAGAIN)
        sleep_us(1000);
    if (e)
        die(EXIT_USAGE, "hmm-stress: pthread_create: %s\n", strerror(e));
}

static size_t default_slots(void)
{
    if (opt.slots_set)
        return opt.slots;
    switch (opt.sizes) {
    case SZ_HUGE:
        return 8;
    case SZ_MEDIUM:
        return 128;
    default:
        return 1024;
    }
}

static size_t default_budget(void)
{
    if (opt.live_set)
        return opt.live_bytes;
    if (opt.scenario == SC_MANY) /* 1000 threads: 256 MiB live at most */
        return opt.sizes == SZ_HUGE ? 32 * MiB : MiB / 4;
    switch (opt.sizes) {
    case SZ_TINY:
    case SZ_SMALL:
        return 4 * MiB;
    case SZ_MEDIUM:
        return 32 * MiB;
    case SZ_HUGE:
        return 160 * MiB;
    default:
        return 32 * MiB;
    }
}

/* ------------------------------------------------------------------ */
/* Scenario private (and many, and the fork hammers) */

static pthread_barrier_t start_barrier, end_barrier;
static bool fork_hammers;

static void *private_main(void *arg)
{
    struct worker *w = arg;
    alloc_slots(w);
    pthread_barrier_wait(&start_barrier);
    while (!worker_done(w))
        step(w, fork_hammers);
    atomic_fetch_add(&g_finished, 1);
    /* Nobody hands off after this barrier: drain and free everything. */
    pthread_barrier_wait(&end_barrier);
    if (w->inbox)
        drain_inbox(w, UINT_MAX);
    free_all_slots(w, "before the final free");
    free(w->slots);
    w->slots = NULL;
    return NULL;
}

static struct group *make_group(unsigned n, size_t nslots, size_t budget, uint64_t ops_limit, bool inboxes)
{
    struct group *g = calloc(1, sizeof *g);
    g->w = calloc(n, sizeof *g->w);
    if (!g || !g->w)
        die(EXIT_USAGE, "hmm-stress: out of memory for %u workers\n", n);
    g->n = n;
    if (inboxes && n > 1 && opt.remote_pct > 0) {
        g->inboxes = calloc(n, sizeof *g->inboxes);
        if (!g->inboxes)
            die(EXIT_USAGE, "hmm-stress: out of memory for inboxes\n");
    }
    for (unsigned i = 0; i < n; i++) {
        worker_init(&g->w[i], i, nslots, budget, ops_limit);
        g->w[i].g = g;
        if (g->inboxes) {
            q_init(&g->inboxes[i], opt.queue < 256 ? opt.queue : 256);
            g->w[i].inbox = &g->inboxes[i];
        }
    }
    return g;
}

static void free_group(struct group *g)
{
    if (g->inboxes)
        for (unsigned i = 0; i < g->n; i++)
            q_destroy(&g->inboxes[i]);
    free(g->inboxes);
    free(g->w);
    free(g);
}

/* Runs n private workers; stack = 0 for the default stack size. */
static double run_private(unsigned n, size_t stack, uint64_t ops_limit, size_t nslots)
{
    struct group *g = make_group(n, nslots, default_budget(), ops_limit, true);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (stack) {
        int e = pthread_attr_setstacksize(&attr, stack);
        if (e)
            die(EXIT_USAGE, "hmm-stress: pthread_attr_setstacksize(%zu): %s\n", stack, strerror(e));
    }
    pthread_barrier_init(&start_barrier, NULL, n + 1);
    pthread_barrier_init(&end_barrier, NULL, n);
    atomic_store(&g_finished, 0);
    for (unsigned i = 0; i < n; i++)
        start_thread(&g->w[i].th, &attr, private_main, &g->w[i]);
    pthread_attr_destroy(&attr);
    info("hmm-stress: %u threads started\n", n);
    double t0 = now_s();
    g_deadline = opt.seconds > 0 ? t0 + opt.seconds : 0;
    pthread_barrier_wait(&start_barrier);
    monitor_run(g_deadline, (int)n);
    if (opt.scenario == SC_MANY) {
        /* All threads are still alive here, waiting at the end barrier. */
        struct sample s;
        monitor_tick(&s);
        if (s.have_stats)
            info("hmm-stress: %u threads alive: footprint %.1f MiB, in use %.1f MiB, cached %.1f MiB, "
                 "arenas %u, VmRSS %.1f MiB\n",
                 n, mib(s.footprint), mib(stats_buf.in_use_bytes), mib(stats_buf.cached_bytes), s.arenas,
                 mib(s.rss));
        if (opt.print_stats)
            hmm_stats_print(STDOUT_FILENO, "text");
    }
    for (unsigned i = 0; i < n; i++) {
        pthread_join(g->w[i].th, NULL);
        add_totals(&g->w[i]);
    }
    double el = now_s() - t0;
    pthread_barrier_destroy(&start_barrier);
    pthread_barrier_destroy(&end_barrier);
    free_group(g);
    return el;
}

/* ------------------------------------------------------------------ */
/* Scenario pipeline */

static void backoff(unsigned *spins)
{
    if (++*spins < 16)
        sched_yield();
    else
        sleep_us(50);
}

static void *producer_main(void *arg)
{
    struct worker *w = arg;
    struct blk b;
    while (!worker_done(w)) {
        alloc_blk(w, &b, pick_size(w));
        unsigned spins = 0;
        while (!q_push(w->pipe, &b)) {
            if (atomic_load_explicit(&g_stop, memory_order_relaxed)) {
                free_blk(w, &b, "before free (queue closed)");
                break;
            }
            backoff(&spins);
        }
    }
    atomic_store(w->pipe_done, 1);
    atomic_fetch_add(&g_finished, 1);
    return NULL;
}

static void consume(struct worker *w, struct blk *b)
{
    if (opt.consumer_delay_us)
        sleep_us(opt.consumer_delay_us);
    if (opt.realloc_pct && pct(w) < (unsigned)opt.realloc_pct)
        realloc_blk(w, b, pick_realloc_size(w, b->size));
    free_blk(w, b, "before free by the consumer");
    w->remote_recv++;
}

static void *consumer_main(void *arg)
{
    struct worker *w = arg;
    struct blk b;
    unsigned spins = 0;
    for (;;) {
        if (q_pop(w->pipe, &b)) {
            spins = 0;
            consume(w, &b);
            continue;
        }
        if (atomic_load(w->pipe_done)) {
            if (q_pop(w->pipe, &b)) {
                consume(w, &b);
                continue;
            }
            break;
        }
        backoff(&spins);
    }
    atomic_fetch_add(&g_finished, 1);
    return NULL;
}

static double run_pipeline(unsigned pairs, uint64_t ops_limit)
{
    struct worker *w = calloc(2 * pairs, sizeof *w);
    struct queue *q = calloc(pairs, sizeof *q);
    _Atomic int *done = calloc(pairs, sizeof *done);
    if (!w || !q || !done)
        die(EXIT_USAGE, "hmm-stress: out of memory for the pipeline\n");
    atomic_store(&g_finished, 0);
    for (unsigned i = 0; i < pairs; i++) {
        q_init(&q[i], opt.queue);
        atomic_init(&done[i], 0);
        for (unsigned k = 0; k < 2; k++) {
            struct worker *x = &w[2 * i + k];
            worker_init(x, 2 * i + k, 0, default_budget(), k == 0 ? ops_limit : 0);
            x->pipe = &q[i];
            x->pipe_done = &done[i];
        }
    }
    double t0 = now_s();
    g_deadline = opt.seconds > 0 ? t0 + opt.seconds : 0;
    for (unsigned i = 0; i < pairs; i++) {
        start_thread(&w[2 * i].th, NULL, producer_main, &w[2 * i]);
        start_thread(&w[2 * i + 1].th, NULL, consumer_main, &w[2 * i + 1]);
    }
    info("hmm-stress: %u producer/consumer pairs started (queue %zu)\n", pairs, q[0].mask + 1);
    monitor_run(g_deadline, (int)(2 * pairs));
    for (unsigned i = 0; i < 2 * pairs; i++) {
        pthread_join(w[i].th, NULL);
        add_totals(&w[i]);
    }
    double el = now_s() - t0;
    for (unsigned i = 0; i < pairs; i++)
        q_destroy(&q[i]);
    free(q);
    free(w);
    free((void *)done);
    return el;
}

/* ------------------------------------------------------------------ */
/* Scenario churn */

#define CHURN_POOL_CAP 4096
#define CHURN_TAKE 16
#define CHURN_LEAVE 8

struct pool {
    pthread_mutex_t mu;
    struct blk *b;
    size_t n;
};
static struct pool churn_pool[2];

static void *churn_main(void *arg)
{
    struct worker *w = arg;
    struct pool *from = &churn_pool[(w->wave + 1) & 1], *to = &churn_pool[w->wave & 1];
    struct blk got[CHURN_TAKE];
    unsigned ngot = 0;

    /* Free blocks that threads of the previous waves left behind. */
    unsigned want = (unsigned)(rnd(w) % (CHURN_TAKE + 1));
    pthread_mutex_lock(&from->mu);
    while (ngot < want && from->n > 0)
        got[ngot++] = from->b[--from->n];
    pthread_mutex_unlock(&from->mu);
    for (unsigned i = 0; i < ngot; i++) {
        free_blk(w, &got[i], "before free of a block an exited thread left");
        w->remote_recv++;
    }

    alloc_slots(w);
    while (!worker_done(w))
        step(w, false);

    /* Half the threads leave some of their live blocks behind. */
    if (rnd(w) & 1) {
        unsigned left = 0, max = 1 + (unsigned)(rnd(w) % CHURN_LEAVE);
        pthread_mutex_lock(&to->mu);
        for (size_t i = 0; i < w->nslots && left < max && to->n < CHURN_POOL_CAP; i++) {
            struct blk *b = &w->slots[i];
            if (!b->p)
                continue;
            verify_blk(b, "before leaving it to a later thread");
            to->b[to->n++] = *b;
            b->p = NULL;
            w->live_bytes -= b->size;
            w->nlive--;
            left++;
        }
        pthread_mutex_unlock(&to->mu);
        w->remote_sent += left;
    }
    free_all_slots(w, "before free at thread exit");
    free(w->slots);
    w->slots = NULL;
    return NULL;
}

static void drain_pool(struct pool *p, struct worker *w)
{
    pthread_mutex_lock(&p->mu);
    while (p->n > 0) {
        struct blk b = p->b[--p->n];
        free_blk(w, &b, "before the final free of a pooled block");
    }
    pthread_mutex_unlock(&p->mu);
}

static double run_churn(uint64_t ops_limit)
{
    unsigned n = (unsigned)opt.wave_threads;
    struct worker *w = calloc(n, sizeof *w);
    if (!w)
        die(EXIT_USAGE, "hmm-stress: out of memory for workers\n");
    for (int k = 0; k < 2; k++) {
        pthread_mutex_init(&churn_pool[k].mu, NULL);
        churn_pool[k].b = calloc(CHURN_POOL_CAP, sizeof(struct blk));
        churn_pool[k].n = 0;
        if (!churn_pool[k].b)
            die(EXIT_USAGE, "hmm-stress: out of memory for the pool\n");
    }
    size_t nslots = opt.slots_set ? opt.slots : 64;
    double t0 = now_s(), deadline = opt.seconds > 0 ? t0 + opt.seconds : 0;
    struct sample first = {0}, last = {0};
    int wave;
    unsigned long threads = 0;
    for (wave = 0;; wave++) {
        if (deadline > 0 ? (wave > 0 && now_s() >= deadline) : wave >= opt.waves)
            break;
        for (unsigned i = 0; i < n; i++) {
            memset(&w[i], 0, sizeof w[i]);
            worker_init(&w[i], i, nslots, default_budget(), ops_limit);
            w[i].wave = wave;
        }
        for (unsigned i = 0; i < n; i++)
            start_thread(&w[i].th, NULL, churn_main, &w[i]);
        if (opt.sample_ms) {
            /* While the wave's threads run: arenas must be capped too. */
            struct sample mid;
            monitor_tick(&mid);
            if (mid.have_stats && mid.arenas > opt.max_arenas)
                die(EXIT_BOUND, "hmm-stress: churn: %u arenas during wave %d exceed --max-arenas %u\n", mid.arenas,
                    wave + 1, opt.max_arenas);
        }
        for (unsigned i = 0; i < n; i++) {
            pthread_join(w[i].th, NULL);
            add_totals(&w[i]);
        }
        threads += n;
        monitor_tick(&last);
        if (wave == 0) {
            first = last;
            info("hmm-stress: churn: after wave 1 (%u threads): hmm footprint %.1f MiB, VmRSS %.1f MiB, "
                 "arenas %u%s\n",
                 n, mib(first.footprint), mib(first.rss), first.arenas,
                 first.have_stats ? "" : " (hmm_stats unavailable)");
        } else if (opt.verbose) {
            info("hmm-stress: churn: after wave %d: hmm footprint %.1f MiB, in use %.1f MiB, VmRSS %.1f MiB, "
                 "arenas %u\n",
                 wave + 1, mib(last.footprint), mib(stats_buf.in_use_bytes), mib(last.rss), last.arenas);
            if (opt.print_stats)
                hmm_stats_print(STDOUT_FILENO, "text");
        }
        if (last.have_stats && last.arenas > opt.max_arenas)
            die(EXIT_BOUND, "hmm-stress: churn: %u arenas after wave %d exceed --max-arenas %u\n", last.arenas,
                wave + 1, opt.max_arenas);
    }
    double el = now_s() - t0;
    info("hmm-stress: churn: after wave %d (%lu threads in all): hmm footprint %.1f MiB, VmRSS %.1f MiB, "
         "arenas %u\n",
         wave, threads, mib(last.footprint), mib(last.rss), last.arenas);
    /* What the arenas hold must not grow with the waves; free chunks the
     * region keeps resident for reuse (until decay_ms) are bounded apart. */
    size_t f1 = sample_footprint(&first) - first.dirty, fl = sample_footprint(&last) - last.dirty;
    if (fl > 2 * f1 + 16 * MiB)
        die(EXIT_BOUND,
            "hmm-stress: churn: footprint less resident free chunks after the last wave %.1f MiB exceeds "
            "2 x %.1f MiB (after the first) + 16 MiB\n",
            mib(fl), mib(f1));

    struct worker mw = {0};
    worker_init(&mw, 0, 0, 0, 0);
    drain_pool(&churn_pool[0], &mw);
    drain_pool(&churn_pool[1], &mw);
    add_totals(&mw);
    for (int k = 0; k < 2; k++) {
        free(churn_pool[k].b);
        pthread_mutex_destroy(&churn_pool[k].mu);
    }
    free(w);
    return el;
}

/* ------------------------------------------------------------------ */
/* Scenario fork */

#define FORK_OWN 4

static int wait_child(pid_t pid, double timeout, int *status)
{
    double deadline = now_s() + timeout;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            die(EXIT_USAGE, "hmm-stress: waitpid(%d): %s\n", (int)pid, strerror(errno));
        if (now_s() >= deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, status, 0) < 0 && errno == EINTR)
                ;
            return 1;
        }
        sleep_us(200);
    }
}

static void *child_thread_main(void *arg)
{
    struct worker *w = arg;
    alloc_slots(w);
    while (!worker_done(w))
        step(w, false);
    free_all_slots(w, "before free in a fork child's thread");
    free(w->slots);
    return NULL;
}

/* Work done by every fork child (and grandchild): only the forking thread
 * exists here; every other arena is orphaned. */
static struct blk child_slots[64];

static void child_work(struct worker *cw)
{
    struct blk big;
    /* Not calloc: under ThreadSanitizer that is TSan's allocator, which
     * (gcc 12's libtsan) can deadlock in a child forked by a threaded
     * process.  Only the hmm_* calls are under test here. */
    memset(child_slots, 0, sizeof child_slots);
    cw->slots = child_slots;
    cw->nslots = sizeof child_slots / sizeof child_slots[0];
    cw->nlive = 0;
    cw->live_bytes = 0;
    for (int i = 0; i < 2000; i++)
        step(cw, false);
    /* One huge block grown by realloc (mremap) and shrunk again. */
    alloc_blk(cw, &big, 2 * MiB + 123);
    realloc_blk(cw, &big, 3 * MiB + 7);
    realloc_blk(cw, &big, 100);
    free_blk(cw, &big, "before free of a child's huge block");
    free_all_slots(cw, "before free in a fork child");
    cw->slots = NULL;
}

static pid_t fork_parent;

__attribute__((noreturn)) static void child_main(int k, struct blk *own, int depth)
{
    struct worker cw = {0};
    /* Do not outlive a parent killed by a test's timeout. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != fork_parent)
        _exit(EXIT_USAGE);
    /* Not worker_init: the tag counter may be mid-update in the copy. */
    cw.tag = (UINT64_C(1) << 22) + (uint64_t)k * 4 + (uint64_t)depth;
    cw.rng = mix64(opt.seed ^ cw.tag) | 1;
    cw.nslots = 64;
    cw.budget = 16 * MiB;

    if (depth == 0) {
        /* The parent held the pool lock across fork: the pool is consistent. */
        for (int i = 0; i < FORK_OWN; i++)
            verify_blk(&own[i], "inherited from the parent's main thread, in the child");
        for (unsigned i = 0; i < fpool.n; i++)
            verify_blk(&fpool.b[i], "inherited from a parent's hammer thread, in the child");
        /* Free the blocks of the orphaned arenas, and the main thread's. */
        while (fpool.n > 0) {
            struct blk b = fpool.b[--fpool.n];
            free_blk(&cw, &b, "before free of an inherited block in the child");
        }
        pthread_mutex_unlock(&fpool.mu);
        for (int i = 0; i < FORK_OWN; i++)
            free_blk(&cw, &own[i], "before free of an inherited block in the child");
    }
    child_work(&cw);

    if (!UNDER_TSAN && depth == 0 && opt.child_threads > 0) {
        /* pthread_create allocates; the new threads get arenas in the child. */
        struct worker tw[8];
        int nt = opt.child_threads > 8 ? 8 : opt.child_threads;
        memset(tw, 0, sizeof tw);
        for (int i = 0; i < nt; i++) {
            tw[i].tag = cw.tag + (uint64_t)(i + 1) * 4096;
            tw[i].rng = mix64(opt.seed ^ tw[i].tag) | 1;
            tw[i].nslots = 64;
            tw[i].budget = 8 * MiB;
            tw[i].ops_limit = 1000;
            int e = pthread_create(&tw[i].th, NULL, child_thread_main, &tw[i]);
            if (e)
                die(EXIT_USAGE, "hmm-stress: fork child %d: pthread_create: %s\n", k, strerror(e));
        }
        for (int i = 0; i < nt; i++)
            pthread_join(tw[i].th, NULL);
    }

    if (depth == 0 && k % 8 == 0) {
        /* Fork again from the child. */
        fork_parent = getpid();
        pid_t pid = fork();
        if (pid < 0)
            die(EXIT_USAGE, "hmm-stress: fork in a child: %s\n", strerror(errno));
        if (pid == 0)
            child_main(k, NULL, 1);
        int st;
        if (wait_child(pid, opt.fork_timeout, &st))
            die(EXIT_HANG, "hmm-stress: grandchild %d of fork %d hung for %.0f s; killed\n", (int)pid, k,
                opt.fork_timeout);
        if (WIFSIGNALED(st))
            die(EXIT_USAGE, "hmm-stress: grandchild of fork %d killed by signal %d\n", k, WTERMSIG(st));
        if (WEXITSTATUS(st))
            _exit(WEXITSTATUS(st));
    }
    if (opt.check_ms && hmm_check() != 0)
        die(EXIT_CORRUPT, "hmm-stress: hmm_check() failed in fork child %d\n", k);
    _exit(0);
}

static double run_fork(unsigned n)
{
    fork_hammers = true;
    double t0 = now_s();
    double deadline = opt.seconds > 0 ? t0 + opt.seconds : 0;
    struct group *g = make_group(n, default_slots(), default_budget(), 0, true);
    pthread_barrier_init(&start_barrier, NULL, n + 1);
    pthread_barrier_init(&end_barrier, NULL, n);
    atomic_store(&g_finished, 0);
    for (unsigned i = 0; i < n; i++)
        start_thread(&g->w[i].th, NULL, private_main, &g->w[i]);
    pthread_barrier_wait(&start_barrier);

    struct worker mw = {0};
    worker_init(&mw, 0, 0, 16 * MiB, 0);
    struct blk own[FORK_OWN];
    int forks = 0;
    double slowest = 0;
    fork_parent = getpid();
    for (;; forks++) {
        if (deadline > 0 ? now_s() >= deadline : forks >= opt.forks)
            break;
        for (int i = 0; i < FORK_OWN; i++)
            alloc_blk(&mw, &own[i], i == 0 ? 2 * MiB : pick_size(&mw) % (64 * KiB) + 1);
        double tf = now_s();
        pthread_mutex_lock(&fpool.mu);
        pid_t pid = fork();
        if (pid < 0)
            die(EXIT_USAGE, "hmm-stress: fork: %s\n", strerror(errno));
        if (pid == 0)
            child_main(forks, own, 0);
        pthread_mutex_unlock(&fpool.mu);
        int st;
        if (wait_child(pid, opt.fork_timeout, &st))
            die(EXIT_HANG, "hmm-stress: fork child %d (pid %d) hung for %.0f s; killed\n", forks, (int)pid,
                opt.fork_timeout);
        if (WIFSIGNALED(st))
            die(EXIT_USAGE, "hmm-stress: fork child %d (pid %d) killed by signal %d (%s)\n", forks, (int)pid,
                WTERMSIG(st), strsignal(WTERMSIG(st)));
        if (WEXITSTATUS(st))
            die(WEXITSTATUS(st), "hmm-stress: fork child %d (pid %d) failed with exit status %d\n", forks,
                (int)pid, WEXITSTATUS(st));
        if (now_s() - tf > slowest)
            slowest = now_s() - tf;
        for (int i = 0; i < FORK_OWN; i++)
            free_blk(&mw, &own[i], "before free in the parent after fork");
        if (opt.sample_ms)
            monitor_tick(NULL);
    }
    atomic_store(&g_stop, 1);
    for (unsigned i = 0; i < n; i++) {
        pthread_join(g->w[i].th, NULL);
        add_totals(&g->w[i]);
    }
    pthread_mutex_lock(&fpool.mu);
    while (fpool.n > 0) {
        struct blk b = fpool.b[--fpool.n];
        free_blk(&mw, &b, "before the final free of a pooled block");
    }
    pthread_mutex_unlock(&fpool.mu);
    add_totals(&mw);
    double el = now_s() - t0;
    info("hmm-stress: fork: %d children (each verified %d inherited blocks, allocated, freed and exited; "
         "every 8th forked again), slowest fork+wait %.3f s\n",
         forks, FORK_OWN, slowest);
    pthread_barrier_destroy(&start_barrier);
    pthread_barrier_destroy(&end_barrier);
    free_group(g);
    return el;
}

/* ------------------------------------------------------------------ */
/* Main */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hmm-stress [options]\n"
            "  --scenario S        private|pipeline|churn|many|fork (default private)\n"
            "  --threads N         threads (private 8, pipeline 4 = 2 pairs, many 1000, fork 4 hammers)\n"
            "  --seconds S         run for S seconds (fractions allowed)\n"
            "  --ops N             operations per thread (default private 200000, pipeline 200000 blocks\n"
            "                      per producer, churn 200, many 2000); --seconds overrides\n"
            "  --sizes C           tiny (1-64 B) | small (1-1024 B) | medium (1-256 KiB) |\n"
            "                      huge (1-64 MiB) | mixed (default: 60%% tiny, 35%% small,\n"
            "                      5%% medium, 0.01%% huge)\n"
            "  --remote PCT        share of frees handed to another thread (default 10)\n"
            "  --realloc PCT       share of operations on a live block that realloc it (default 10)\n"
            "  --calloc PCT        share of allocations by calloc, verified zero (default 5)\n"
            "  --aligned PCT       share by memalign/posix_memalign/aligned_alloc (default 5)\n"
            "  --sized PCT         share of frees by free_sized/free_aligned_sized (default 10)\n"
            "  --seed N            pattern and random seed (default 1)\n"
            "  --handoff K         lockfree (default) or mutex hand-off queues\n"
            "  --queue N           pipeline queue capacity (default 1024)\n"
            "  --consumer-delay-us N  pipeline consumers sleep N us per block\n"
            "  --slots N           live-block slots per thread\n"
            "  --live-mb N         bound on a thread's live bytes (default tiny/small 4, medium 32,\n"
            "                      huge 160, mixed 32; many: 0.25, huge 32)\n"
            "  --waves N           churn: waves (default 100)\n"
            "  --wave-threads N    churn: threads per wave (default 200)\n"
            "  --max-arenas N      churn: fail (exit 3) if hmm_stats arena_count exceeds N (default 64)\n"
            "  --forks N           fork: forks (default 200)\n"
            "  --fork-timeout S    fork: a child running longer has hung (default 20)\n"
            "  --child-threads N   fork: threads each child starts (default 2; none under TSan)\n"
            "  --max-footprint-mb N  fail (exit 3) if the footprint exceeds N MiB at any sample\n"
            "  --sample-ms N       footprint sampling period (default 50; 0: sample only when no\n"
            "                      worker runs, at the start, between churn waves and at the end)\n"
            "  --check-ms N        call hmm_check() every N ms and at the end (default never)\n"
            "  --progress S        print the footprint every S seconds (at the samples)\n"
            "  --stats             print hmm_stats_print(text) at the end (churn: after every wave\n"
            "                      with --verbose)\n"
            "  --quiet             print errors only\n"
            "  --verbose           print every churn wave\n"
            "exit: 0 ok, 1 usage/system/allocation failure, 2 corruption, 3 bound exceeded, 4 hang\n");
}

static uint64_t parse_u64(const char *name, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
        fprintf(stderr, "hmm-stress: --%s %s: expected an integer in [%" PRIu64 ", %" PRIu64 "]\n", name, s, min,
                max);
        exit(EXIT_USAGE);
    }
    return v;
}

static int parse_name(const char *name, const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    fprintf(stderr, "hmm-stress: --%s %s: expected one of", name, s);
    for (int i = 0; i < n; i++)
        fprintf(stderr, " %s", names[i]);
    fprintf(stderr, "\n");
    exit(EXIT_USAGE);
}

enum {
    O_THREADS = 256, O_SECONDS, O_OPS, O_SIZES, O_REMOTE, O_REALLOC, O_CALLOC, O_ALIGNED, O_SIZED, O_SEED,
    O_SCENARIO, O_WAVES, O_WAVE_THREADS, O_FORKS, O_FORK_TIMEOUT, O_CHILD_THREADS, O_MAX_ARENAS,
    O_MAX_FOOTPRINT, O_SLOTS, O_LIVE, O_QUEUE, O_DELAY, O_HANDOFF, O_SAMPLE, O_CHECK, O_PROGRESS, O_QUIET, O_VERBOSE,
    O_HELP, O_STATS
};

static const struct option longopts[] = {
    {"threads", required_argument, 0, O_THREADS},
    {"seconds", required_argument, 0, O_SECONDS},
    {"ops", required_argument, 0, O_OPS},
    {"sizes", required_argument, 0, O_SIZES},
    {"remote", required_argument, 0, O_REMOTE},
    {"realloc", required_argument, 0, O_REALLOC},
    {"calloc", required_argument, 0, O_CALLOC},
    {"aligned", required_argument, 0, O_ALIGNED},
    {"sized", required_argument, 0, O_SIZED},
    {"seed", required_argument, 0, O_SEED},
    {"scenario", required_argument, 0, O_SCENARIO},
    {"waves", required_argument, 0, O_WAVES},
    {"wave-threads", required_argument, 0, O_WAVE_THREADS},
    {"forks", required_argument, 0, O_FORKS},
    {"fork-timeout", required_argument, 0, O_FORK_TIMEOUT},
    {"child-threads", required_argument, 0, O_CHILD_THREADS},
    {"max-arenas", required_argument, 0, O_MAX_ARENAS},
    {"max-footprint-mb", required_argument, 0, O_MAX_FOOTPRINT},
    {"slots", required_argument, 0, O_SLOTS},
    {"live-mb", required_argument, 0, O_LIVE},
    {"queue", required_argument, 0, O_QUEUE},
    {"consumer-delay-us", required_argument, 0, O_DELAY},
    {"handoff", required_argument, 0, O_HANDOFF},
    {"sample-ms", required_argument, 0, O_SAMPLE},
    {"check-ms", required_argument, 0, O_CHECK},
    {"progress", required_argument, 0, O_PROGRESS},
    {"stats", no_argument, 0, O_STATS},
    {"quiet", no_argument, 0, O_QUIET},
    {"verbose", no_argument, 0, O_VERBOSE},
    {"help", no_argument, 0, O_HELP},
    {0, 0, 0, 0},
};

static double parse_seconds(const char *name, const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 1e7) {
        fprintf(stderr, "hmm-stress: --%s %s: expected a positive number of seconds\n", name, s);
        exit(EXIT_USAGE);
    }
    return v;
}

int main(int argc, char **argv)
{
    int c;
    static const char *const handoffs[] = {"lockfree", "mutex"};
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_THREADS:
            opt.threads = (int)parse_u64("threads", optarg, 1, 100000);
            opt.threads_set = true;
            break;
        case O_SECONDS:
            opt.seconds = parse_seconds("seconds", optarg);
            break;
        case O_OPS:
            opt.ops = parse_u64("ops", optarg, 1, UINT64_MAX);
            opt.ops_set = true;
            break;
        case O_SIZES:
            opt.sizes = parse_name("sizes", optarg, size_names, 5);
            break;
        case O_REMOTE:
            opt.remote_pct = (int)parse_u64("remote", optarg, 0, 100);
            break;
        case O_REALLOC:
            opt.realloc_pct = (int)parse_u64("realloc", optarg, 0, 100);
            break;
        case O_CALLOC:
            opt.calloc_pct = (int)parse_u64("calloc", optarg, 0, 100);
            break;
        case O_ALIGNED:
            opt.aligned_pct = (int)parse_u64("aligned", optarg, 0, 100);
            break;
        case O_SIZED:
            opt.sized_pct = (int)parse_u64("sized", optarg, 0, 100);
            break;
        case O_SEED:
            opt.seed = parse_u64("seed", optarg, 0, UINT64_MAX);
            break;
        case O_SCENARIO:
            opt.scenario = parse_name("scenario", optarg, scenario_names, 5);
            break;
        case O_WAVES:
            opt.waves = (int)parse_u64("waves", optarg, 1, 100000000);
            break;
        case O_WAVE_THREADS:
            opt.wave_threads = (int)parse_u64("wave-threads", optarg, 1, 100000);
            break;
        case O_FORKS:
            opt.forks = (int)parse_u64("forks", optarg, 0, 100000000);
            break;
        case O_FORK_TIMEOUT:
            opt.fork_timeout = parse_seconds("fork-timeout", optarg);
            break;
        case O_CHILD_THREADS:
            opt.child_threads = (int)parse_u64("child-threads", optarg, 0, 8);
            break;
        case O_MAX_ARENAS:
            opt.max_arenas = (unsigned)parse_u64("max-arenas", optarg, 1, UINT_MAX);
            break;
        case O_MAX_FOOTPRINT:
            opt.max_footprint = (size_t)parse_u64("max-footprint-mb", optarg, 1, SIZE_MAX / MiB) * MiB;
            break;
        case O_SLOTS:
            opt.slots = (size_t)parse_u64("slots", optarg, 1, 1u << 24);
            opt.slots_set = true;
            break;
        case O_LIVE:
            opt.live_bytes = (size_t)parse_u64("live-mb", optarg, 1, 1u << 20) * MiB;
            opt.live_set = true;
            break;
        case O_QUEUE:
            opt.queue = (size_t)parse_u64("queue", optarg, 1, 1u << 24);
            break;
        case O_DELAY:
            opt.consumer_delay_us = (unsigned)parse_u64("consumer-delay-us", optarg, 0, 10000000);
            break;
        case O_HANDOFF:
            opt.handoff_mutex = parse_name("handoff", optarg, handoffs, 2) == 1;
            break;
        case O_SAMPLE:
            opt.sample_ms = (unsigned)parse_u64("sample-ms", optarg, 0, 60000);
            break;
        case O_CHECK:
            opt.check_ms = (unsigned)parse_u64("check-ms", optarg, 0, 86400000);
            break;
        case O_PROGRESS:
            opt.progress = parse_seconds("progress", optarg);
            break;
        case O_STATS:
            opt.print_stats = true;
            break;
        case O_QUIET:
            opt.quiet = true;
            break;
        case O_VERBOSE:
            opt.verbose = true;
            break;
        case O_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "hmm-stress: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return EXIT_USAGE;
    }
    if (opt.calloc_pct + opt.aligned_pct > 100) {
        fprintf(stderr, "hmm-stress: --calloc and --aligned add up to more than 100\n");
        return EXIT_USAGE;
    }
    /* Output goes through write(2); nothing of ours is left in stdio buffers. */
    fflush(stdout);

    uint64_t ops = opt.seconds > 0 ? 0 : opt.ops;
    unsigned n = (unsigned)opt.threads;
    double el = 0;
    mon.last_check = mon.start = mon.last_progress = now_s();
    info("hmm-stress: scenario %s, sizes %s, seed %" PRIu64 ", remote %d%%, realloc %d%%, %s hand-off%s\n",
         scenario_names[opt.scenario], size_names[opt.sizes], opt.seed, opt.remote_pct, opt.realloc_pct,
         opt.handoff_mutex ? "mutex" : "lock-free", UNDER_TSAN ? ", ThreadSanitizer build" : "");
    monitor_tick(NULL);

    switch (opt.scenario) {
    case SC_PRIVATE:
        el = run_private(n, 0, ops ? ops : (opt.seconds > 0 ? 0 : 200000), default_slots());
        break;
    case SC_PIPELINE:
        if (!opt.threads_set)
            n = 4;
        el = run_pipeline(n / 2 ? n / 2 : 1, ops ? ops : (opt.seconds > 0 ? 0 : 200000));
        break;
    case SC_CHURN:
        el = run_churn(opt.ops_set ? opt.ops : 200);
        break;
    case SC_MANY:
        if (!opt.threads_set)
            n = 1000;
        el = run_private(n, 64 * KiB, ops ? ops : (opt.seconds > 0 ? 0 : 2000), opt.slots_set ? opt.slots : 32);
        break;
    case SC_FORK:
        if (!opt.threads_set)
            n = 4;
        el = run_fork(n);
        break;
    }
    report(el);
    return 0;
}
