/* The region keeps 100,000 chunks: taken one granule at a time, half of
 * them given back in scrambled order (50,000 free chunks, no two adjacent),
 * chunks too large for any hole taken while they are free, the holes
 * taken again, then everything given back in scrambled order.  Every chunk
 * handed out is one nobody else holds (a stamp in its header page
 * survives), holes are reused lowest first, purging them all leaves only
 * their header pages resident, region_check() passes after each step, and
 * at the end the free chunks have merged back into what was taken.  With
 * an index that walks its free list on every take or give, this is
 * quadratic: the nodes of the index each operation looks at (region_stats'
 * index_visits) must stay within VISITS_MAX, a few tree paths (a list
 * would look at tens of thousands); the times are printed, not asserted.
 *
 * Drives region_take and region_give directly: links libhmm_test.la. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

#define N 100000u
#define BIG 1000u
#define VISITS_MAX 200u
#define STAMP_AT 512u   /* in the header page, clear of the region's own use */

static struct chunk *chunks[N];
static struct chunk *bigs[BIG];
static uint32_t order[N + BIG];

static void stamp(struct chunk *c, uint64_t key)
{
    *(uint64_t *)((char *)c + STAMP_AT) = key;
}

static void check_stamp(struct chunk *c, uint64_t key)
{
    uint64_t got = *(uint64_t *)((char *)c + STAMP_AT);
    CHECK(got == key, "chunk %p lost its stamp %llu (now %llu): handed out twice?", (void *)c,
          (unsigned long long)key, (unsigned long long)got);
}

static struct chunk *take(size_t size, uint64_t key)
{
    struct chunk *c = region_take(size, NULL);
    CHECK(c != NULL, "region_take(%zu) failed", size);
    CHECK(c->size == size, "region_take(%zu) gave %zu bytes", size, c->size);
    stamp(c, key);
    return c;
}

static void give(struct chunk *c, uint64_t key)
{
    check_stamp(c, key);
    region_give(c);
}

static void scramble(uint32_t *v, uint32_t n, uint64_t *r)
{
    for (uint32_t i = n - 1; i > 0; i--) {
        uint32_t j = (uint32_t)rng_range(r, 0, i), t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static double times[5];
static uint64_t visits[5];

/* Start and end of step i: its time and the index nodes it looked at. */
static uint64_t visits_now(void)
{
    struct region_stats now;
    region_stats(&now);
    return now.index_visits;
}

static double t0;
static uint64_t v0;

static void step_start(void)
{
    v0 = visits_now();
    t0 = now_ns();
}

static void step_end(int i)
{
    times[i] = now_ns() - t0;
    visits[i] = visits_now() - v0;
}
static const char *const steps[5] = { "take 100000", "give 50000 scrambled",
                                      "take 1000 larger", "take 50000 holes",
                                      "give 101000 scrambled" };

int main(void)
{
    uint64_t r = test_seed(100000);
    struct region_stats before, after;
    uint32_t holes = 0;

    alarm(TEST_TIMEOUT);
    hmm_tunables.trim_threshold = SIZE_MAX / 8;   /* keep everything: no trim, no purge */
    hmm_tunables.top_pad = 0;
    hmm_tunables.decay_ms = 1000000000u;
    region_stats(&before);

    step_start();
    for (uint32_t i = 0; i < N; i++)
        chunks[i] = take(GRANULE, i);
    step_end(0);
    CHECK(region_check() == 0, "region_check() after the takes");
    for (uint32_t i = 1; i < N; i++)
        if (chunks[i] < chunks[i - 1]) {
            printf("the break stopped growing (chunk %u mapped elsewhere): nothing to test\n", i);
            return TEST_SKIP;
        }

    /* Give back every other chunk, in address order: holes that cannot merge. */
    for (uint32_t i = 1; i < N; i += 2)
        order[holes++] = i;
    scramble(order, holes, &r);
    step_start();
    for (uint32_t i = 0; i < holes; i++)
        give(chunks[order[i]], order[i]);
    step_end(1);
    CHECK(region_check() == 0, "region_check() with %u holes", holes);

    /* Purge them all (the lock is dropped while madvise runs): each keeps
     * only its header page resident, and the index still adds up. */
    region_trim(0);
    CHECK(region_check() == 0, "region_check() after purging %u holes", holes);
    region_stats(&after);
    size_t resident = after.free_bytes - after.purged_bytes;
    CHECK(resident == after.free_bytes / GRANULE * os_page_size(),
          "%zu bytes of %zu free chunks still resident after the purge", resident,
          after.free_bytes / GRANULE);

    step_start();
    for (uint32_t i = 0; i < BIG; i++)
        bigs[i] = take(2 * GRANULE, N + i);
    step_end(2);

    /* The holes come back lowest first. */
    struct chunk *last = NULL;
    step_start();
    for (uint32_t i = 1; i < N; i += 2) {
        chunks[i] = take(GRANULE, i);
        CHECK(chunks[i] > last, "hole %p taken after %p: not the lowest fit", (void *)chunks[i],
              (void *)last);
        last = chunks[i];
    }
    step_end(3);
    CHECK(region_check() == 0, "region_check() after taking the holes again");

    for (uint32_t i = 0; i < N + BIG; i++)
        order[i] = i;
    scramble(order, N + BIG, &r);
    step_start();
    for (uint32_t i = 0; i < N + BIG; i++) {
        uint32_t k = order[i];
        give(k < N ? chunks[k] : bigs[k - N], k);
    }
    step_end(4);
    CHECK(region_check() == 0, "region_check() after giving everything back");

    region_stats(&after);
    CHECK(after.region_bytes - after.free_bytes == before.region_bytes - before.free_bytes,
          "%zu bytes of the region still in use, %zu before",
          after.region_bytes - after.free_bytes, before.region_bytes - before.free_bytes);
    CHECK(after.mapped_bytes == before.mapped_bytes, "mapped chunks left behind");
    region_trim(0);
    CHECK(region_check() == 0, "region_check() after region_trim(0)");
    int failures = 0;
    for (int i = 0; i < 5; i++) {
        double ops = i == 2 ? BIG : i == 0 ? N : i == 4 ? N + BIG : N / 2;
        printf("%-24s %8.0f ns, %6.1f index nodes per operation\n", steps[i], times[i] / ops, visits[i] / ops);
        if (visits[i] / ops > VISITS_MAX) {
            printf("FAIL: %s looks at %.1f nodes of the free index per operation, more than %u\n", steps[i],
                   visits[i] / ops, VISITS_MAX);
            failures++;
        }
    }
    return failures ? 1 : 0;
}
