/* realloc: growth of strings and buffers.  Each step appends 1..64 bytes to
 * one of 16 strings built side by side (so that a string's neighbour is
 * usually in use and it cannot always grow in place); a string that reaches
 * its target length (64 B..16 KiB) is freed and started again.  Every 256
 * steps a buffer grows by doubling from 64 bytes to 64 KiB..4 MiB, its newest
 * byte written at every size, and is freed.  -t is the number of threads. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define STRINGS 16

static void *realloc_thread(void *arg)
{
    struct seeded_arg *a = arg;
    uint64_t rng = a->seed, sum = 0;
    char *s[STRINGS] = { 0 };
    size_t len[STRINGS] = { 0 }, target[STRINGS];
    for (int k = 0; k < STRINGS; k++)
        target[k] = rng_logsize(&rng, 64, 16384);
    for (uint64_t i = 0; i < a->ops; i++) {
        uint64_t r = rng_next(&rng);
        int k = (int)(r % STRINGS);
        size_t add = 1 + (size_t)((r >> 8) % 64);
        char *t = realloc(s[k], len[k] + add + 1);
        if (!t)
            bench_die("realloc");
        memset(t + len[k], 'a' + (int)(i % 26), add);
        len[k] += add;
        t[len[k]] = 0;
        s[k] = t;
        if (len[k] >= target[k]) {
            sum += (unsigned char)t[len[k] / 2];
            free(t);
            s[k] = NULL;
            len[k] = 0;
            target[k] = rng_logsize(&rng, 64, 16384);
        }
        if ((i & 255) == 255) {
            size_t cap = 64, limit = rng_logsize(&rng, 65536, 4u << 20);
            unsigned char *b = malloc(cap);
            if (!b)
                bench_die("malloc");
            b[0] = 1;
            while (cap < limit) {
                cap *= 2;
                unsigned char *nb = realloc(b, cap);
                if (!nb)
                    bench_die("realloc");
                b = nb;
                b[cap - 1] = (unsigned char)cap;
            }
            sum += b[0];
            free(b);
        }
    }
    for (int k = 0; k < STRINGS; k++)
        free(s[k]);
    a->sum = sum;
    return NULL;
}

static uint64_t realloc_run(const struct bench_params *bp, uint64_t ops)
{
    return bench_run_seeded(bp, ops, 6, realloc_thread);
}

const struct workload wl_realloc = {
    "realloc", "strings grown by small appends and buffers grown by doubling",
    6000000, realloc_run,
};
