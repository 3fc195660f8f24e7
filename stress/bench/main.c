/* hmm-bench: command line, timing and the report line.
 *
 *   hmm-bench WORKLOAD [-t THREADS] [-s SCALE] [-n OPS]
 *   hmm-bench list
 *
 * Prints one line:
 *   bench=NAME threads=T seconds=S maxrss_kib=K ops=N cpu=C
 * seconds is the wall time of the workload (threads created and joined
 * inside it); maxrss_kib is the process's peak resident set (getrusage
 * ru_maxrss, the kernel's VmHWM); cpu is the user+system CPU time of the
 * whole process, less disturbed than the wall time on a busy machine. */
#include <errno.h>
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
    &wl_realloc, &wl_idle, &wl_fast32, &wl_fastcycle,
};
#define NWORKLOADS (sizeof workloads / sizeof workloads[0])

void bench_die(const char *what)
{
    fprintf(stderr, "hmm-bench: %s: %s\n", what, strerror(errno));
    exit(2);
}

void bench_run_threads(int n, void *(*fn)(void *), void *args, size_t argsize)
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
    for (int i = 0; i < n; i++)
        pthread_join(tid[i], NULL);
    free(tid);
}

uint64_t bench_run_seeded(const struct bench_params *bp, uint64_t ops, uint64_t stream,
                          void *(*fn)(void *))
{
    int n = bp->threads;
    struct seeded_arg *args = calloc((size_t)n, sizeof *args);
    if (!args)
        bench_die("calloc");
    for (int i = 0; i < n; i++) {
        args[i].ops = ops;
        args[i].seed = rng_seed(stream, (uint64_t)i);
    }
    bench_run_threads(n, fn, args, sizeof *args);
    uint64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += args[i].sum;
    BENCH_SINK(sum);
    free(args);
    return ops * (uint64_t)n;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: hmm-bench WORKLOAD [-t THREADS] [-s SCALE] [-n OPS]\n"
        "       hmm-bench list\n"
        "  -t THREADS  worker threads (default 1)\n"
        "  -s SCALE    multiply the default operation count (default 1)\n"
        "  -n OPS      operations per thread (overrides -s)\n"
        "Prints: bench=NAME threads=T seconds=S maxrss_kib=K ops=N cpu=C\n"
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
    int opt;
    optind = 2;
    while ((opt = getopt(argc, argv, "t:s:n:")) != -1) {
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

    double t0 = now();
    uint64_t done = w->run(&p, ops);
    double t1 = now();

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
    printf("bench=%s threads=%d seconds=%.4f maxrss_kib=%ld ops=%llu cpu=%.3f\n", w->name,
           p.threads, t1 - t0, ru.ru_maxrss, (unsigned long long)done, cpu);
    fflush(stdout);
    return 0;
}
