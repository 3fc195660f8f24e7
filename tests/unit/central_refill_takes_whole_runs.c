/* A central list remembers the runs that flushes spliced onto it: a
 * refill takes the top run whole when it is at most twice what the refill
 * wants (no walk to a cut inside it), and cuts a run longer than that
 * after as many blocks as it wants; the list and its runs check out after
 * each take, and a take of the rest empties it. */
#include "internal.h"
#include "testutil.h"

#define OLDER 10     /* the first flush */
#define NEWER 6      /* the second, on top */

static struct arena arena;

/* count fresh cached blocks of class cls, as a refill with an empty
 * central list gets them. */
static struct cache_entry *fresh_blocks(unsigned cls, size_t count)
{
    struct cache_entry *run;
    CHECK(arena_fill(&arena, cls, &run, count, count) == count, "no %zu fresh blocks", count);
    return run;
}

/* The blocks flushed back in one batch: one run. */
static void flush_run(struct cache_entry *run, size_t count)
{
    CHECK(arena_free_cached(&arena, &run, count) == count && run == NULL, "the flush took fewer than %zu",
          count);
}

/* The refill's list starts at run's first block and holds count blocks
 * (it is run's own links, cut after the count-th). */
static bool took_from(struct cache_entry *got, struct cache_entry *run, size_t count)
{
    size_t held = 0;
    for (struct cache_entry *e = got; e != NULL; e = e->next)
        held++;
    return got == run && held == count;
}

int main(void)
{
    arena_init(&arena, 1);
    arena.threads = 1;                /* bound: an orphan's flushes are merged at once */
    unsigned cls = size_class_lookup(64);
    struct cache_entry *older = fresh_blocks(cls, OLDER), *newer = fresh_blocks(cls, NEWER), *got;
    flush_run(older, OLDER);
    flush_run(newer, NEWER);
    CHECK(arena_check(&arena) == 0, "arena_check failed after the flushes");

    size_t taken = arena_fill(&arena, cls, &got, NEWER - 2, 0);
    CHECK(taken == NEWER, "a refill of %d took %zu blocks, not the top run of %d whole", NEWER - 2, taken,
          NEWER);
    CHECK(took_from(got, newer, NEWER), "the refill's blocks are not the top run's");
    CHECK(arena_check(&arena) == 0, "arena_check failed after the whole run was taken");

    taken = arena_fill(&arena, cls, &got, 3, 0);
    CHECK(taken == 3 && took_from(got, older, 3), "a refill of 3 took %zu blocks, not the run's first 3",
          taken);
    CHECK(arena_check(&arena) == 0, "arena_check failed after a cut inside a run");

    taken = arena_fill(&arena, cls, &got, OLDER, 0);
    CHECK(taken == OLDER - 3, "the last refill took %zu blocks, not the %d left", taken, OLDER - 3);
    CHECK(arena_check(&arena) == 0, "arena_check failed after the list was emptied");
    return 0;
}
