/* One worker thread's blocks: allocation by every call of the family, frees
 * (local, sized, handed to another thread), reallocs, all verified. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "torture.h"

_Atomic int g_stop;
double g_deadline;
_Atomic int g_finished;
static _Atomic uint64_t g_tags;
struct fork_pool fpool = {.mu = PTHREAD_MUTEX_INITIALIZER};

void worker_init(struct worker *w, unsigned idx, size_t nslots, size_t budget, uint64_t ops_limit)
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

size_t pick_size(struct worker *w)
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
void alloc_blk(struct worker *w, struct blk *b, size_t size)
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
void free_blk(struct worker *w, struct blk *b, const char *when)
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
void realloc_blk(struct worker *w, struct blk *b, size_t nsize)
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

size_t pick_realloc_size(struct worker *w, size_t old)
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
void drain_inbox(struct worker *w, unsigned max)
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

void step(struct worker *w, bool fork_role)
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

bool worker_done(const struct worker *w)
{
    if (w->ops_limit && w->ops >= w->ops_limit)
        return true;
    /* The workers watch the clock too, in case the monitor is starved. */
    if (g_deadline > 0 && (w->ops & 1023) == 0 && now_s() >= g_deadline)
        return true;
    return atomic_load_explicit(&g_stop, memory_order_relaxed) != 0;
}

void free_all_slots(struct worker *w, const char *when)
{
    for (size_t i = 0; i < w->nslots; i++)
        if (w->slots[i].p)
            slot_free(w, &w->slots[i], when);
}

void alloc_slots(struct worker *w)
{
    w->slots = calloc(w->nslots, sizeof *w->slots);
    if (!w->slots)
        die(EXIT_USAGE, "hmm-stress: out of memory for %zu slots\n", w->nslots);
    w->nlive = 0;
    w->live_bytes = 0;
}
