/* hmm-stress: the table of scenarios and the run of one of them.  A new
 * scenario is a file with a run function and a row here. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torture.h"

/* default_threads: when --threads is not given. */
static const struct scenario scenarios[] = {
    {"private", 8, run_private},
    {"pipeline", 4, run_pipeline},   /* 2 producer/consumer pairs */
    {"churn", 8, run_churn},         /* --wave-threads per wave */
    {"many", 1000, run_many},
    {"fork", 4, run_fork},           /* hammer threads */
};
#define NSCENARIOS (sizeof scenarios / sizeof scenarios[0])

uint64_t ops_per_thread(uint64_t dflt)
{
    if (opt.seconds > 0)
        return 0;
    return opt.ops_set ? opt.ops : dflt;
}

static const struct scenario *find_scenario(const char *name)
{
    for (size_t i = 0; i < NSCENARIOS; i++)
        if (strcmp(name, scenarios[i].name) == 0)
            return &scenarios[i];
    fprintf(stderr, "hmm-stress: --scenario %s: expected one of", name);
    for (size_t i = 0; i < NSCENARIOS; i++)
        fprintf(stderr, " %s", scenarios[i].name);
    fprintf(stderr, "\n");
    exit(EXIT_USAGE);
}

int main(int argc, char **argv)
{
    parse_options(argc, argv);
    const struct scenario *sc = find_scenario(opt.scenario);
    /* Output goes through write(2); nothing of ours is left in stdio buffers. */
    fflush(stdout);
    monitor_start();
    info("hmm-stress: scenario %s, sizes %s, seed %" PRIu64 ", remote %d%%, realloc %d%%, %s hand-off%s\n",
         sc->name, size_names[opt.sizes], opt.seed, opt.remote_pct, opt.realloc_pct,
         opt.handoff_mutex ? "mutex" : "lock-free", UNDER_TSAN ? ", ThreadSanitizer build" : "");
    monitor_tick(NULL);
    report(sc->run(opt.threads_set ? (unsigned)opt.threads : sc->default_threads));
    return 0;
}
