/* Scenario churn: waves of short-lived threads; half of them leave blocks
 * behind that threads of the next wave free.  The arena count must stay
 * under --max-arenas, and the footprint must not grow with the waves. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "torture.h"

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

static double run_waves(uint64_t ops_limit)
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

double run_churn(unsigned threads)
{
    (void)threads; /* --wave-threads sets the threads of a wave */
    return run_waves(opt.ops_set ? opt.ops : 200);
}
