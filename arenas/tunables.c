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
    .zero_on_free = false,
    .purge_vector = true,
};

/* The defaults that depend on the machine; before the options are read. */
void tunables_init(void)
{
    hmm_tunables.arena_max = 4 * os_cpu_count();
    if (hmm_tunables.arena_max > ARENA_MAX_LIMIT)
        hmm_tunables.arena_max = ARENA_MAX_LIMIT;
}

uintptr_t hmm_link_secret;

/* The secret that mangles links kept in free memory (internal.h,
 * link_encode): random, with the low bits that keep a mangled NULL from
 * looking like one. */
void link_secret_init(void)
{
    hmm_link_secret = (uintptr_t)(os_random() & ~(uint64_t)0xf) | LINK_SECRET_LOW;
}
