/* Every HMM_OPTIONS key's good values take effect, seen from outside:
 * tests/options_probe runs with the option in its environment, does one
 * thing and prints what hmm_stats (or the process) then shows; the same
 * probe without the option shows the default, so each case can tell.  A
 * good value prints nothing on stderr.
 *
 *   arena_max        arena_count with four threads holding blocks; the
 *                    default with eight threads on one CPU
 *   trim_threshold   footprint after a 64 MiB burst is freed (G suffix)
 *   top_pad          the free top the region keeps after the burst
 *   mmap_threshold   which sizes become huge blocks (K, M, G suffixes)
 *   chunk_size       chunk_bytes of a new thread's arena (M and K)
 *   cache_size       bytes parked in the thread cache after many frees
 *   background_thread, decay_ms
 *                    a maintenance thread runs; after the burst, with a
 *                    trim threshold too high for frees to trim, an idle
 *                    second brings the footprint down with decay_ms=50 and
 *                    not with decay_ms=3600000; auto starts none in a
 *                    process with one thread
 *   check            full: freed memory is junk, an overflow is caught;
 *                    basic: neither; N: accepted, the program runs
 *   stats_at_exit    true/yes/1 print the statistics at exit, false not
 *   prof...          prof=true: hmm_prof_dump writes hmm.PID.0.heap at the
 *                    rate of prof_sample; prof_signal installs a handler
 *   stats_signal     the process catches that signal and runs the
 *                    maintenance thread, which purges only as
 *                    background_thread says
 *   several pairs at once, and empty pairs, all honoured.
 *
 * The driver itself does not allocate through hmm. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "diag_child.h"

enum stderr_rule { QUIET, STATS_REPORT, CANARY_ABORT };

struct good {
    const char *options;      /* NO_OPTIONS: the default */
    const char *probe;        /* the probe's arguments */
    const char *conditions;   /* on its "key value" lines */
    enum stderr_rule err;
};

static const struct good cases[] = {
    /* arena_max */
    { NO_OPTIONS, "arenas 4", "arena_count >= 2", QUIET },
    { "arena_max=1", "arenas 4", "arena_count == 1", QUIET },
    { "arena_max=3", "arenas 4", "arena_count >= 2; arena_count <= 3", QUIET },
    { "arena_max=1024", "arenas 4", "arena_count == 5", QUIET },
    /* the default is 4 x the CPUs the process may run on: 4 on one */
    { NO_OPTIONS, "onecpu arenas 8", "arena_count == 4", QUIET },
    /* trim_threshold: the default trims the freed burst, 1G keeps it */
    { NO_OPTIONS, "burst", "footprint_bytes <= 16M", QUIET },
    { "trim_threshold=1G", "burst", "footprint_bytes >= 48M; region_free_bytes >= 48M", QUIET },
    { "trim_threshold=1048576000", "burst", "footprint_bytes >= 48M", QUIET },
    /* top_pad: the trimmed region keeps that much free at its top */
    { "top_pad=32M", "burst", "region_bytes >= 32M; region_free_bytes >= 32M; footprint_bytes <= 48M", QUIET },
    { "top_pad=32768K", "burst", "region_free_bytes >= 32M", QUIET },
    /* mmap_threshold: above it a block is its own mapping */
    { NO_OPTIONS, "huge 2097152 33554432 33554433", "huge_2097152 == 0; huge_33554432 == 0; huge_33554433 == 1", QUIET },
    { "mmap_threshold=1M", "huge 1048576 1048577 2097152", "huge_1048576 == 0; huge_1048577 == 1; huge_2097152 == 1", QUIET },
    { "mmap_threshold=64K", "huge 65536 65537", "huge_65536 == 0; huge_65537 == 1", QUIET },
    { "mmap_threshold=131072", "huge 131072 131073", "huge_131072 == 0; huge_131073 == 1", QUIET },
    { "mmap_threshold=1G", "huge 33554433 41943040", "huge_33554433 == 0; huge_41943040 == 0", QUIET },
    { "mmap_threshold=4G", "huge 41943040", "huge_41943040 == 0", QUIET },
    /* chunk_size: a new arena's first chunk */
    { NO_OPTIONS, "chunk", "chunk_bytes == 1M; chunks == 1", QUIET },
    { "chunk_size=2M", "chunk", "chunk_bytes == 2M; chunks == 1", QUIET },
    { "chunk_size=2048K", "chunk", "chunk_bytes == 2M", QUIET },
    { "chunk_size=5M", "chunk", "chunk_bytes == 5M", QUIET },
    /* cache_size: each class gets an equal share */
    { NO_OPTIONS, "cache", "cached_bytes > 64K; cached_bytes <= 1M", QUIET },
    { "cache_size=0", "cache", "cached_bytes == 0", QUIET },
    { "cache_size=64K", "cache", "cached_bytes > 0; cached_bytes <= 64K", QUIET },
    { "cache_size=4M", "cache", "cached_bytes > 1M; cached_bytes <= 4M", QUIET },
    /* background_thread and decay_ms */
    { NO_OPTIONS, "tasks", "tasks == 1", QUIET },
    { "background_thread=false", "tasks", "tasks == 1", QUIET },
    { "background_thread=true", "tasks", "tasks == 2", QUIET },
    { "background_thread=yes,decay_ms=1000", "tasks", "tasks == 2", QUIET },
    { NO_OPTIONS, "grown", "maint == 1; tasks == 2", QUIET },
    { "background_thread=auto", "grown", "maint == 1", QUIET },
    { "background_thread=false", "grown", "maint == 0; tasks == 1", QUIET },
    { NO_OPTIONS, "grown_alone", "maint == 0; tasks == 1", QUIET },
    { "trim_threshold=1G,background_thread=true,decay_ms=50", "burst 1000", "footprint_bytes <= 16M", QUIET },
    { "trim_threshold=1G,background_thread=true,decay_ms=3600000", "burst 1000", "footprint_bytes >= 48M", QUIET },
    { "trim_threshold=1G,background_thread=false,decay_ms=50", "burst 1000", "footprint_bytes >= 48M", QUIET },
    /* check */
    { NO_OPTIONS, "junk", "junk == 0; junk_of > 0", QUIET },
    { "check=basic", "junk", "junk == 0", QUIET },
    { "check=full", "junk", "junk > 0; junk == junk_of", QUIET },
    { "check=full", "overflow", "", CANARY_ABORT },
    { "check=1000", "cache", "cached_bytes == 0", QUIET },
    { "check=4294967295", "cache", "cached_bytes == 0", QUIET },
    /* the profiler */
    { NO_OPTIONS, "prof", "prof_on == 0; prof_signal == 0", QUIET },
    { "prof=true", "prof", "prof_on == 1; prof_default_prefix == 1; prof_sample == 512K; prof_signal == 0", QUIET },
    { "prof=true,prof_sample=64K,prof_signal=SIGUSR1", "prof", "prof_sample == 64K; prof_signal == 10", QUIET },
    { "prof=true,prof_sample=1,prof_signal=USR2", "prof", "prof_sample == 1; prof_signal == 12", QUIET },
    { "prof=true,prof_signal=40,prof_interval=1G,prof_final=false", "prof", "prof_signal == 40", QUIET },
    /* stats_at_exit */
    { "stats_at_exit=true", "nothing", "", STATS_REPORT },
    { "stats_at_exit=yes", "nothing", "", STATS_REPORT },
    { "stats_at_exit=1", "nothing", "", STATS_REPORT },
    { "stats_at_exit=false", "nothing", "", QUIET },
    { "stats_at_exit=0", "nothing", "", QUIET },
    /* stats_signal: caught, and the thread runs; auto and false still purge nothing */
    { NO_OPTIONS, "caught 10 12", "caught_10 == 0; caught_12 == 0; tasks == 1", QUIET },
    { "stats_signal=SIGUSR1", "caught 10 12", "caught_10 == 1; caught_12 == 0; tasks == 2", QUIET },
    { "stats_signal=USR2,background_thread=false", "caught 10 12", "caught_10 == 0; caught_12 == 1; tasks == 2",
      QUIET },
    { "stats_signal=40", "caught 40", "caught_40 == 1; tasks == 2", QUIET },
    { "stats_signal=SIGUSR1,stats_signal=SIGUSR2", "caught 10 12", "caught_10 == 0; caught_12 == 1", QUIET },
    { "trim_threshold=1G,background_thread=false,decay_ms=50,stats_signal=SIGUSR1", "burst 1000",
      "footprint_bytes >= 48M", QUIET },
    { "trim_threshold=1G,decay_ms=50,stats_signal=SIGUSR1", "burst 1000", "footprint_bytes >= 48M", QUIET },
    { "trim_threshold=1G,background_thread=true,decay_ms=50,stats_signal=SIGUSR1", "burst 1000",
      "footprint_bytes <= 16M", QUIET },
    /* several pairs, empty pairs */
    { "arena_max=1,mmap_threshold=1M,cache_size=0", "arenas 4", "arena_count == 1", QUIET },
    { "arena_max=1,mmap_threshold=1M,cache_size=0", "huge 2097152", "huge_2097152 == 1", QUIET },
    { "arena_max=1,mmap_threshold=1M,cache_size=0", "cache", "cached_bytes == 0", QUIET },
    { ",,arena_max=1,,", "arenas 4", "arena_count == 1", QUIET },
    { "", "arenas 4", "arena_count >= 2", QUIET },
};

static int run_good(const struct good *g)
{
    struct child c;
    child_probe(&c, g->options, g->probe);
    const char *options = g->options ? g->options : "(unset)";
    const char *why = NULL;
    switch (g->err) {
    case QUIET:
        if (!child_exited(&c, 0))
            why = "the probe failed";
        else if (c.err_len != 0)
            why = "a good value printed something on stderr";
        break;
    case STATS_REPORT:
        if (!child_exited(&c, 0))
            why = "the probe failed";
        else if (count_lines(c.err) < 2 || !strstr(c.err, "hmm") || strstr(c.err, "HMM_OPTIONS"))
            why = "no statistics on stderr at exit";
        break;
    case CANARY_ABORT: {
        char ptr[64];
        child_announced(&c, "ptr ", ptr);
        if (!child_aborted(&c))
            why = "the overflow was not caught";
        else if (one_line_abort_fault(&c, ptr, "hmm: free(): ") || !strstr(c.err, "canary overwritten"))
            why = "not the one line 'hmm: free(): ... <ptr> ... canary overwritten'";
        break;
    }
    }
    if (!why && g->conditions[0]) {
        const char *failed = child_meets(&c, g->conditions);
        if (failed) {
            printf("FAIL: HMM_OPTIONS=%s, probe %s: %s\n  stdout [%s]\n  stderr [%s]\n", options, g->probe,
                   failed, c.out, c.err);
            return 1;
        }
    }
    if (why) {
        printf("FAIL: HMM_OPTIONS=%s, probe %s: %s (%s)\n  stdout [%s]\n  stderr [%s]\n", options, g->probe,
               why, child_how(&c), c.out, c.err);
        return 1;
    }
    printf("PASS: HMM_OPTIONS=%s, probe %s: %s\n", options, g->probe,
           g->conditions[0] ? g->conditions : g->err == STATS_REPORT ? "statistics at exit"
                                            : g->err == CANARY_ABORT ? "canary overwritten" : "quiet");
    return 0;
}

int main(int argc, char **argv)
{
    struct tally t = tally_start(argc, argv);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (tally_wants(&t, cases[i].options))
            tally_add(&t, run_good(&cases[i]), 1);
    return tally_end(&t);
}
