/* Scenarios private and many: every thread works on its own slots and hands
 * --remote of its frees to another thread's inbox.  many runs 1,000 threads
 * on small stacks and reports the footprint while all of them are alive. */
#include <stdio.h>
#include <unistd.h>

#include "torture.h"

/* Runs n private workers until the deadline or ops_limit; stack = 0 for the
 * default stack size; alive() runs while every thread is still alive. */
static double run_workers(unsigned n, size_t stack, uint64_t ops_limit, size_t nslots, size_t budget,
                          void (*alive)(unsigned n))
{
    struct group *g = group_start(n, stack, nslots, budget, ops_limit, false);
    info("hmm-stress: %u threads started\n", n);
    double t0 = now_s();
    g_deadline = opt.seconds > 0 ? t0 + opt.seconds : 0;
    group_go(g);
    monitor_run(g_deadline, (int)n);
    if (alive)
        alive(n); /* the threads wait at the end barrier */
    group_join(g);
    return now_s() - t0;
}

double run_private(unsigned threads)
{
    return run_workers(threads, 0, ops_per_thread(200000), default_slots(), default_budget(), NULL);
}

static void print_alive(unsigned n)
{
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

/* 1000 threads: 256 MiB live at most. */
static size_t many_budget(void)
{
    if (opt.live_set)
        return opt.live_bytes;
    return opt.sizes == SZ_HUGE ? 32 * MiB : MiB / 4;
}

double run_many(unsigned threads)
{
    return run_workers(threads, 64 * KiB, ops_per_thread(2000), opt.slots_set ? opt.slots : 32, many_budget(),
                       print_alive);
}
