/* The steady-churn size mix of issue 8, shared by hmm-bench soak and
 * tests/steady_churn_levels_off: 16 B..1 KiB (80 %), 1..32 KiB (17 %) and
 * 32..96 KiB (3 %).  Include it after the header that defines rng_next and
 * rng_range (stress/bench/bench.h or tests/testutil.h). */
#ifndef HMM_SOAK_MIX_H
#define HMM_SOAK_MIX_H

static inline size_t soak_mix_size(uint64_t *rng)
{
    unsigned pick = (unsigned)(rng_next(rng) % 100);
    if (pick < 80)
        return rng_range(rng, 16, 1024);
    if (pick < 97)
        return rng_range(rng, 1025, 32 << 10);
    return rng_range(rng, (32 << 10) + 1, 96 << 10);
}

#endif
