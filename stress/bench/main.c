/* hmm-bench: command line, timing and the report line.
 *
 *   hmm-bench WORKLOAD [-t THREADS] [-s SCALE] [-n OPS] [-i SECONDS]
 *   hmm-bench list
 *
 * Prints one line:
 *   bench=NAME threads=T seconds=S maxrss_kib=K ops=N cpu=C
 * and with -i, before it, a line every SECONDS while the workload runs:
 *   rss seconds=S rss_kib=K
 * seconds is the wall time of the workload (threads created and joined
 * inside it); maxrss_kib is the process's peak resident set (getrusage
 * ru_maxrss, the kernel's VmHWM); cpu is the user+system CPU time of the
 * whole process, less disturbed than the wall time on a busy machine. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static const struct workload *const workloads[] = {
    &wl_larson, &wl_prodcon, &wl_scratch, &wl_churn, &wl_large,
    &wl_realloc, &wl_idle, &wl_fast32, &wl_fastcycle, &wl_soak, &wl_burst, &wl_fastfifo,
    &wl_xmalloc, &wl_simple, &wl_mstress,
};
#define NWORKLOADS (sizeof workloads / sizeof workloads[0])

void bench_die(const char *what)
{
    fprintf(stderr, "hmm-bench: %s: %s\n", what, strerror(errno));
    exit(2);
}

pthread_t *bench_start_threads(int n, void *(*fn)(void *), void *args, size_t argsize)
{
    pthread_t *tid = malloc(sizeof *tid * (size_t)n);
    if (!tid)
        bench_die("malloc");
    for (int i = 0; i < n; i++) {
        int e = pthread_create(&tid[i], NULL, fn, (char *)args + (size_t)i * argsize);
        if (e) {
            errno = e;
            bench_die("pthread_create");
        }
    }
    return tid;
}

void bench_join_threads(int n, pthread_t *tid)
{
    for (int i = 0; i < n; i++)
        pthread_join(tid[i], NULL);
    free(tid);
}

void bench_run_threads(int n, void *(*fn)(void *), void *args, size_t argsize)
{
    bench_join_threads(n, bench_start_threads(n, fn, args, argsize));
}

/* read(2) into a buffer on the stack: no allocation, whatever the allocator. */
long bench_rss_kib(void)
{
    char text[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t len = read(fd, text, sizeof text - 1);
    close(fd);
    if (len <= 0)
        return -1;
    text[len] = '\0';
    unsigned long size, resident;
    if (sscanf(text, "%lu %lu", &size, &resident) != 2)
        return -1;
    return (long)(resident * (unsigned long)sysconf(_SC_PAGESIZE) / 1024);
}

void *bench_calloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p)
        bench_die("calloc");
    return p;
}

void bench_sink_sums(const uint64_t *first, int n, size_t stride)
{
    uint64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += *(const uint64_t *)((const char *)first + (size_t)i * stride);
    BENCH_SINK(sum);
}

uint64_t bench_run_seeded(const struct bench_params *bp, uint64_t ops, uint64_t stream,
                          void *(*fn)(void *))
{
    int n = bp->threads;
    struct seeded_arg *args = bench_calloc((size_t)n, sizeof *args);
    for (int i = 0; i < n; i++) {
        args[i].ops = ops;
        args[i].seed = rng_seed(stream, (uint64_t)i);
    }
    bench_run_threads(n, fn, args, sizeof *args);
    bench_sink_sums(&args[0].sum, n, sizeof *args);
    free(args);
    return ops * (uint64_t)n;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: hmm-bench WORKLOAD [-t THREADS] [-s SCALE] [-n OPS] [-i SECONDS]\n"
        "       hmm-bench list\n"
        "  -t THREADS  worker threads (default 1)\n"
        "  -s SCALE    multiply the default operation count (default 1)\n"
        "  -n OPS      operations per thread (overrides -s)\n"
        "  -i SECONDS  print the RSS every SECONDS while the workload runs\n"
        "Prints: bench=NAME threads=T seconds=S maxrss_kib=K ops=N cpu=C\n"
        "  (after \"rss seconds=S rss_kib=K\" lines with -i)\n"
        "workloads:\n");
    for (size_t i = 0; i < NWORKLOADS; i++)
        fprintf(f, "  %-10s %s (%llu ops/thread)\n", workloads[i]->name,
                workloads[i]->summary, (unsigned long long)workloads[i]->default_ops);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* -i: a thread that reports the RSS every interval until the workload ends. */
struct sampler {
    double interval, start;
    pthread_mutex_t lock;
    pthread_cond_t done_cond;
    int done;
    pthread_t thread;
};

static void *sampler_main(void *arg)
{
    struct sampler *s = arg;
    double next = s->start + s->interval;
    pthread_mutex_lock(&s->lock);
    while (!s->done) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        double wait = next - now();
        if (wait > 0) {
            until.tv_sec += (time_t)wait;
            until.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
            if (until.tv_nsec >= 1000000000L)
                until.tv_sec++, until.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&s->done_cond, &s->lock, &until);
            continue;
        }
        printf("rss seconds=%.1f rss_kib=%ld\n", next - s->start, bench_rss_kib());
        fflush(stdout);
        next += s->interval;
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static void sampler_start(struct sampler *s)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->done_cond, &attr);
    s->done = 0;
    s->start = now();
    errno = pthread_create(&s->thread, NULL, sampler_main, s);
    if (errno)
        bench_die("pthread_create");
}

static void sampler_stop(struct sampler *s)
{
    pthread_mutex_lock(&s->lock);
    s->done = 1;
    pthread_cond_signal(&s->done_cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "list")) {
        for (size_t i = 0; i < NWORKLOADS; i++)
            printf("%s\n", workloads[i]->name);
        return 0;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(stdout);
        return 0;
    }
    const struct workload *w = NULL;
    for (size_t i = 0; i < NWORKLOADS; i++)
        if (!strcmp(argv[1], workloads[i]->name))
            w = workloads[i];
    if (!w) {
        fprintf(stderr, "hmm-bench: unknown workload '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }

    struct bench_params p = { .threads = 1, .scale = 1.0, .ops = 0 };
    struct sampler sampler = { .interval = 0 };
    int opt;
    optind = 2;
    while ((opt = getopt(argc, argv, "t:s:n:i:")) != -1) {
        char *end;
        switch (opt) {
        case 't':
            p.threads = (int)strtol(optarg, &end, 10);
            if (*end || p.threads < 1 || p.threads > 1024) {
                fprintf(stderr, "hmm-bench: -t wants 1..1024\n");
                return 2;
            }
            break;
        case 's':
            p.scale = strtod(optarg, &end);
            if (*end || !(p.scale > 0)) {
                fprintf(stderr, "hmm-bench: -s wants a positive number\n");
                return 2;
            }
            break;
        case 'n':
            p.ops = strtoull(optarg, &end, 10);
            if (*end || p.ops == 0) {
                fprintf(stderr, "hmm-bench: -n wants a positive integer\n");
                return 2;
            }
            break;
        case 'i':
            sampler.interval = strtod(optarg, &end);
            if (*end || !(sampler.interval >= 0.01)) {
                fprintf(stderr, "hmm-bench: -i wants seconds, at least 0.01\n");
                return 2;
            }
            break;
        default:
            usage(stderr);
            return 2;
        }
    }
    uint64_t ops = p.ops;
    if (!ops) {
        ops = (uint64_t)((double)w->default_ops * p.scale + 0.5);
        if (!ops)
            ops = 1;
    }

    if (sampler.interval > 0)
        sampler_start(&sampler);
    double t0 = now();
    uint64_t done = w->run(&p, ops);
    double t1 = now();
    if (sampler.interval > 0)
        sampler_stop(&sampler);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
    printf("bench=%s threads=%d seconds=%.4f maxrss_kib=%ld ops=%llu cpu=%.3f\n", w->name,
           p.threads, t1 - t0, ru.ru_maxrss, (unsigned long long)done, cpu);
    fflush(stdout);
    return 0;
}
