/* mstress: trees of objects (after mimalloc-bench's mstress).  Each of -t
 * threads builds binary trees of MS_NODES nodes (16..1040 bytes, some with a
 * string of their own), writes them, and swaps each into a random slot of a
 * shared table, freeing the tree it takes out: most trees are freed by
 * another thread than the one that built them, a node at a time, children
 * first.  ops counts nodes built per thread. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define MS_DEPTH 9
#define MS_NODES ((1u << MS_DEPTH) - 1u)
#define MS_SLOTS 16

struct ms_node {
    struct ms_node *left, *right;
    char *name;
    uint64_t value;
};

struct ms_arg {
    struct ms_node *_Atomic *slot;
    uint64_t ops;
    uint64_t seed;
    uint64_t sum;
    char pad[64];
};

static struct ms_node *ms_build(unsigned depth, uint64_t *rng)
{
    if (depth == 0)
        return NULL;
    uint64_t r = rng_next(rng);
    size_t size = sizeof(struct ms_node) + (size_t)(r % 1009);
    struct ms_node *n = malloc(size);
    if (!n)
        bench_die("malloc");
    n->value = r;
    memset(n + 1, (int)r, size - sizeof *n);
    n->name = NULL;
    if ((r >> 20) % 4 == 0 && (n->name = malloc(16 + (r >> 32) % 48)) != NULL)
        n->name[0] = (char)r;
    n->left = ms_build(depth - 1, rng);
    n->right = ms_build(depth - 1, rng);
    return n;
}

static uint64_t ms_free(struct ms_node *n)
{
    if (n == NULL)
        return 0;
    uint64_t sum = n->value + ms_free(n->left) + ms_free(n->right);
    free(n->name);
    free(n);
    return sum;
}

static void *ms_thread(void *arg)
{
    struct ms_arg *a = arg;
    uint64_t rng = a->seed, sum = 0;
    for (uint64_t done = 0; done < a->ops; done += MS_NODES) {
        struct ms_node *tree = ms_build(MS_DEPTH, &rng);
        size_t k = (size_t)(rng_next(&rng) % MS_SLOTS);
        sum += ms_free(__atomic_exchange_n(&a->slot[k], tree, __ATOMIC_ACQ_REL));
    }
    a->sum = sum;
    return NULL;
}

static uint64_t mstress_run(const struct bench_params *bp, uint64_t ops)
{
    int n = bp->threads;
    struct ms_node *_Atomic *slot = calloc(MS_SLOTS, sizeof *slot);
    struct ms_arg *args = calloc((size_t)n, sizeof *args);
    if (!slot || !args)
        bench_die("calloc");
    for (int i = 0; i < n; i++)
        args[i] = (struct ms_arg){ .slot = slot, .ops = ops, .seed = rng_seed(21, (uint64_t)i) };
    bench_run_threads(n, ms_thread, args, sizeof *args);
    bench_sink_sums(&args[0].sum, n, sizeof *args);
    uint64_t sum = 0;
    for (int k = 0; k < MS_SLOTS; k++)
        sum += ms_free(slot[k]);
    BENCH_SINK(sum);
    free(args);
    free(slot);
    return ops * (uint64_t)n;
}

const struct workload wl_mstress = {
    "mstress", "threads build trees of 16..1040 B objects and swap them through a shared table",
    3000000, mstress_run,
};
