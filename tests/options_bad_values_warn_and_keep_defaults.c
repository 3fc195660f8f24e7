/* Every kind of bad HMM_OPTIONS pair -- an unknown key, a missing '=', an
 * empty value, a value that is not a number, out of range, a bad suffix,
 * chunk_size not a multiple of 1M, a bad bool, check=bogus, a signal
 * hmm may not take -- prints
 * exactly one line per bad pair,
 *
 *     hmm: HMM_OPTIONS: ignoring '<pair>': <what is accepted>
 *
 * and the default stays in force, seen from outside through
 * tests/options_probe: arena_max=0 leaves more than one arena possible,
 * a bad mmap_threshold leaves 32 MiB, a bad chunk_size 1 MiB, and so on.
 * The program goes on (the probe exits 0), and good pairs beside bad ones
 * still take effect.  DESIGN.md, Errors: "Bad HMM_OPTIONS pair: one line on
 * stderr naming the pair and what is accepted; the default stays in force;
 * the program goes on." */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "diag_child.h"

#define MAX_BAD 4

struct bad {
    const char *options;
    const char *bad[MAX_BAD];   /* the pairs the lines must name, in order */
    const char *probe;
    const char *conditions;     /* the defaults, as the probe sees them */
};

/* What the probe shows under the defaults. */
#define MANY_ARENAS "arena_count >= 2"
#define HUGE_PROBE "huge 2097152 33554432 33554433"
#define HUGE_AT_32M "huge_2097152 == 0; huge_33554432 == 0; huge_33554433 == 1"
#define TRIMMED "footprint_bytes <= 16M"
#define CHUNK_1M "chunk_bytes == 1M; chunks == 1"
#define CACHE_1M "cached_bytes > 64K; cached_bytes <= 1M"
#define NO_JUNK "junk == 0; junk_of > 0"
#define PROF_DEFAULTS "prof_on == 1; prof_default_prefix == 1; prof_sample == 512K; prof_signal == 0"
#define NOT_CAUGHT "caught_9 == 0; caught_10 == 0; caught_12 == 0; tasks == 1"

static const struct bad cases[] = {
    /* keys and the shape of a pair */
    { "bogus=1", { "bogus=1" }, "arenas 4", MANY_ARENAS },
    { "ARENA_MAX=1", { "ARENA_MAX=1" }, "arenas 4", MANY_ARENAS },
    { "=1", { "=1" }, "arenas 4", MANY_ARENAS },
    { "arena_max", { "arena_max" }, "arenas 4", MANY_ARENAS },
    { "arena_max=", { "arena_max=" }, "arenas 4", MANY_ARENAS },
    /* counts */
    { "arena_max=0", { "arena_max=0" }, "arenas 4", MANY_ARENAS },
    { "arena_max=1025", { "arena_max=1025" }, "arenas 4", MANY_ARENAS },
    { "arena_max=-1", { "arena_max=-1" }, "arenas 4", MANY_ARENAS },
    { "arena_max=abc", { "arena_max=abc" }, "arenas 4", MANY_ARENAS },
    { "arena_max=1K", { "arena_max=1K" }, "arenas 4", MANY_ARENAS },
    { "arena_max= 1", { "arena_max= 1" }, "arenas 4", MANY_ARENAS },
    { "arena_max=99999999999999999999", { "arena_max=99999999999999999999" }, "arenas 4", MANY_ARENAS },
    /* sizes */
    { "mmap_threshold=1K", { "mmap_threshold=1K" }, HUGE_PROBE, HUGE_AT_32M },
    { "mmap_threshold=65535", { "mmap_threshold=65535" }, HUGE_PROBE, HUGE_AT_32M },
    { "mmap_threshold=5G", { "mmap_threshold=5G" }, HUGE_PROBE, HUGE_AT_32M },
    { "mmap_threshold=12Q", { "mmap_threshold=12Q" }, HUGE_PROBE, HUGE_AT_32M },
    { "mmap_threshold=1.5M", { "mmap_threshold=1.5M" }, HUGE_PROBE, HUGE_AT_32M },
    { "mmap_threshold=M", { "mmap_threshold=M" }, HUGE_PROBE, HUGE_AT_32M },
    { "mmap_threshold=1MB", { "mmap_threshold=1MB" }, HUGE_PROBE, HUGE_AT_32M },
    { "mmap_threshold=18446744073709551615G", { "mmap_threshold=18446744073709551615G" }, HUGE_PROBE,
      HUGE_AT_32M },
    { "trim_threshold=2T", { "trim_threshold=2T" }, "burst", TRIMMED },
    { "trim_threshold=lots", { "trim_threshold=lots" }, "burst", TRIMMED },
    { "top_pad=2G", { "top_pad=2G" }, "burst", "region_free_bytes <= 2M" },
    { "top_pad=-1M", { "top_pad=-1M" }, "burst", "region_free_bytes <= 2M" },
    { "chunk_size=1536K", { "chunk_size=1536K" }, "chunk", CHUNK_1M },
    { "chunk_size=3000000", { "chunk_size=3000000" }, "chunk", CHUNK_1M },
    { "chunk_size=512K", { "chunk_size=512K" }, "chunk", CHUNK_1M },
    { "chunk_size=0", { "chunk_size=0" }, "chunk", CHUNK_1M },
    { "chunk_size=2G", { "chunk_size=2G" }, "chunk", CHUNK_1M },
    { "cache_size=65M", { "cache_size=65M" }, "cache", CACHE_1M },
    { "cache_size=-5", { "cache_size=-5" }, "cache", CACHE_1M },
    /* bools */
    { "background_thread=2", { "background_thread=2" }, "tasks", "tasks == 1" },
    { "background_thread=on", { "background_thread=on" }, "tasks", "tasks == 1" },
    { "background_thread=TRUE", { "background_thread=TRUE" }, "tasks", "tasks == 1" },
    { "stats_at_exit=maybe", { "stats_at_exit=maybe" }, "nothing", "" },
    { "stats_at_exit=", { "stats_at_exit=" }, "nothing", "" },
    { "purge_vector=sometimes", { "purge_vector=sometimes" }, "nothing", "" },
    /* stats_signal: no signal caught, no thread */
    { "stats_signal=SIGKILL", { "stats_signal=SIGKILL" }, "caught 9 10 12", NOT_CAUGHT },
    { "stats_signal=9", { "stats_signal=9" }, "caught 9 10 12", NOT_CAUGHT },
    { "stats_signal=33", { "stats_signal=33" }, "caught 9 10 12", NOT_CAUGHT },
    { "stats_signal=65", { "stats_signal=65" }, "caught 9 10 12", NOT_CAUGHT },
    { "stats_signal=USR3", { "stats_signal=USR3" }, "caught 9 10 12", NOT_CAUGHT },
    { "stats_signal=sigusr1", { "stats_signal=sigusr1" }, "caught 9 10 12", NOT_CAUGHT },
    { "stats_signal=SIG", { "stats_signal=SIG" }, "caught 9 10 12", NOT_CAUGHT },
    { "stats_signal=", { "stats_signal=" }, "caught 9 10 12", NOT_CAUGHT },
    /* decay_ms: the default (10 s) stays, so an idle second trims nothing */
    { "trim_threshold=1G,background_thread=true,decay_ms=3600001", { "decay_ms=3600001" }, "burst 1000",
      "footprint_bytes >= 48M" },
    { "trim_threshold=1G,background_thread=true,decay_ms=fast", { "decay_ms=fast" }, "burst 1000",
      "footprint_bytes >= 48M" },
    /* check: basic stays (no junk, the cache on) */
    { "check=bogus", { "check=bogus" }, "junk", NO_JUNK },
    { "check=bogus", { "check=bogus" }, "cache", CACHE_1M },
    { "check=0", { "check=0" }, "cache", CACHE_1M },
    { "check=", { "check=" }, "junk", NO_JUNK },
    { "check=FULL", { "check=FULL" }, "junk", NO_JUNK },
    { "check=-1", { "check=-1" }, "cache", CACHE_1M },
    { "check=4294967296", { "check=4294967296" }, "cache", CACHE_1M },
    { "check=10K", { "check=10K" }, "cache", CACHE_1M },
    /* the profiler: off, 512K, no signal, prefix hmm stay */
    { "prof=maybe", { "prof=maybe" }, "prof", "prof_on == 0" },
    { "prof=true,prof_sample=0", { "prof_sample=0" }, "prof", PROF_DEFAULTS },
    { "prof=true,prof_sample=2G", { "prof_sample=2G" }, "prof", PROF_DEFAULTS },
    { "prof=true,prof_signal=SIGKILL", { "prof_signal=SIGKILL" }, "prof", PROF_DEFAULTS },
    { "prof=true,prof_signal=9", { "prof_signal=9" }, "prof", PROF_DEFAULTS },
    { "prof=true,prof_signal=", { "prof_signal=" }, "prof", PROF_DEFAULTS },
    { "prof=true,prof_prefix=", { "prof_prefix=" }, "prof", PROF_DEFAULTS },
    { "prof=true,prof_interval=2T", { "prof_interval=2T" }, "prof", PROF_DEFAULTS },
    { "prof=true,prof_final=sometimes", { "prof_final=sometimes" }, "prof", PROF_DEFAULTS },
    /* one signal cannot answer both hmm-stats and the profiler: the later pair is ignored */
    { "prof=true,stats_signal=SIGUSR1,prof_signal=USR1", { "prof_signal=USR1" }, "prof", "prof_on == 1" },
    { "prof=true,prof_signal=40,stats_signal=40", { "stats_signal=40" }, "prof", "prof_signal == 40" },
    /* several pairs: one line per bad pair, in order; the good ones honoured */
    { "bogus=1,arena_max=0,check=bogus,cache_size=0", { "bogus=1", "arena_max=0", "check=bogus" }, "cache",
      "cached_bytes == 0" },
    { "arena_max=1,arena_max=0", { "arena_max=0" }, "arenas 4", "arena_count == 1" },
    { "mmap_threshold=1M,,chunk_size=7,=", { "chunk_size=7", "=" }, "huge 2097152", "huge_2097152 == 1" },
};

/* Each line of err, in order, must be the warning for the next bad pair. */
static const char *lines_match(const char *err, const char *const bad[MAX_BAD], int *count)
{
    static char why[512];
    const char *line = err;
    int n = 0;
    for (; n < MAX_BAD && bad[n]; n++) {
        char prefix[256];
        snprintf(prefix, sizeof(prefix), "hmm: HMM_OPTIONS: ignoring '%s': ", bad[n]);
        const char *end = strchr(line, '\n');
        if (!end) {
            snprintf(why, sizeof(why), "no line for '%s'", bad[n]);
            return why;
        }
        if (strncmp(line, prefix, strlen(prefix)) != 0) {
            snprintf(why, sizeof(why), "line %d does not start with [%s]", n + 1, prefix);
            return why;
        }
        if (line + strlen(prefix) >= end) {
            snprintf(why, sizeof(why), "line %d does not say what is accepted", n + 1);
            return why;
        }
        line = end + 1;
    }
    *count = n;
    if (*line) {
        snprintf(why, sizeof(why), "more than %d line%s on stderr", n, n == 1 ? "" : "s");
        return why;
    }
    return NULL;
}

static int run_bad(const struct bad *b)
{
    struct child c;
    int lines = 0;
    child_probe(&c, b->options, b->probe);
    const char *why = NULL;
    if (!child_exited(&c, 0))
        why = "the program did not go on";
    if (!why)
        why = lines_match(c.err, b->bad, &lines);
    if (!why && b->conditions[0])
        why = child_meets(&c, b->conditions);
    if (why) {
        printf("FAIL: HMM_OPTIONS=%s, probe %s: %s (%s)\n  stdout [%s]\n  stderr [%s]\n", b->options, b->probe,
               why, child_how(&c), c.out, c.err);
        return 1;
    }
    printf("PASS: HMM_OPTIONS=%s, probe %s: %d line%s, %s\n%s", b->options, b->probe, lines,
           lines == 1 ? "" : "s", b->conditions[0] ? b->conditions : "no statistics at exit", c.err);
    return 0;
}

/* A pair too long to quote whole: still one line, naming its start. */
static int run_long_pair(void)
{
    char options[512] = "bogus=";
    struct child c;
    memset(options + 6, 'x', 300);
    options[306] = '\0';
    child_probe(&c, options, "nothing");
    if (!child_exited(&c, 0) || count_lines(c.err) != 1 ||
        strncmp(c.err, "hmm: HMM_OPTIONS: ignoring 'bogus=xxxxxxxx", 42) != 0) {
        printf("FAIL: a 306-character pair: %s; stderr [%s]\n", child_how(&c), c.err);
        return 1;
    }
    printf("PASS: a 306-character pair: one line of %zu bytes\n", c.err_len);
    return 0;
}

int main(int argc, char **argv)
{
    struct tally t = tally_start(argc, argv);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (tally_wants(&t, cases[i].options))
            tally_add(&t, run_bad(&cases[i]), 1);
    if (!t.only)
        tally_add(&t, run_long_pair(), 1);
    return tally_end(&t);
}
