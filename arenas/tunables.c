/* The engine's tunables and their defaults.  lib/ fills them from
 * HMM_OPTIONS and mallopt; the engine only reads them. */
#include "internal.h"

#define MIB ((size_t)1 << 20)

struct tunables hmm_tunables = {
    .trim_threshold = 2 * MIB,
    .top_pad = 1 * MIB,
    .mmap_threshold = 32 * MIB,
    .chunk_size = 1 * MIB,
    .cache_size = 1 * MIB,
    .arena_max = 0,                      /* 4 x CPUs, set by tunables_init */
    .check_level = CHECK_BASIC,
    .decay_ms = 10000,
};

/* The defaults that depend on the machine; before the options are read. */
void tunables_init(void)
{
    hmm_tunables.arena_max = 4 * os_cpu_count();
    if (hmm_tunables.arena_max > ARENA_MAX_LIMIT)
        hmm_tunables.arena_max = ARENA_MAX_LIMIT;
}
