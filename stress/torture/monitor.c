/* Footprint samples (hmm_stats and /proc/self/status), the bounds checked at
 * each, the operation totals and the final report. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "torture.h"

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

struct hmm_stats stats_buf;

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

size_t sample_footprint(const struct sample *s)
{
    return s->have_stats ? s->footprint : s->rss;
}

double mib(size_t b)
{
    return (double)b / (double)MiB;
}

static void run_check(const char *when)
{
    if (hmm_check() != 0)
        die(EXIT_CORRUPT, "hmm-stress: hmm_check() failed %s\n", when);
}

void monitor_tick(struct sample *out)
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

void monitor_run(double deadline, int n)
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

struct totals {
    uint64_t ops, mallocs, frees, reallocs, remote_sent, remote_recv;
};
static struct totals tot;

void add_totals(const struct worker *w)
{
    tot.ops += w->ops;
    tot.mallocs += w->mallocs;
    tot.frees += w->frees;
    tot.reallocs += w->reallocs;
    tot.remote_sent += w->remote_sent;
    tot.remote_recv += w->remote_recv;
}

void report(double elapsed)
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

void monitor_start(void)
{
    mon.last_check = mon.start = mon.last_progress = now_s();
}
