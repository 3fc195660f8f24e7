/* The command line: option defaults, --help, and parsing into opt. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torture.h"

const char *const size_names[] = {"tiny", "small", "medium", "huge", "mixed"};

struct options opt = {
    .scenario = "private",
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

/* Sets the option of getopt_long's code c from optarg. */
static void set_option(int c)
{
    static const char *const handoffs[] = {"lockfree", "mutex"};
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
        opt.scenario = optarg;
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
        exit(0);
    default:
        usage(stderr);
        exit(EXIT_USAGE);
    }
}

void parse_options(int argc, char **argv)
{
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
        set_option(c);
    if (optind < argc) {
        fprintf(stderr, "hmm-stress: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        exit(EXIT_USAGE);
    }
    if (opt.calloc_pct + opt.aligned_pct > 100) {
        fprintf(stderr, "hmm-stress: --calloc and --aligned add up to more than 100\n");
        exit(EXIT_USAGE);
    }
}
