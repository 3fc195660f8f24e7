/* The remote-free stack: blocks of one arena freed by several other
 * threads at once are each pushed once; below the bound they wait on the
 * stack, still counted in use; the owner's drain frees every one; past the
 * bound the freers drain it themselves; an orphan's stack drains at once,
 * and its last block hands the orphan to the registry's hook.  The arena
 * checks out after. */
#include "internal.h"
#include "testutil.h"

#define THREADS 4
#define EACH 50                       /* THREADS x EACH below REMOTE_BOUND (256) */
#define MANY 2000

static struct arena owner;
static void *blocks[THREADS][MANY];

static struct arena *emptied;

static void note_emptied(struct arena *a)
{
    emptied = a;
}

static void *free_share(void *arg)
{
    void **share = arg;
    for (int i = 0; i < MANY && share[i]; i++)
        arena_free_remote(&owner, block_of(share[i]));
    return NULL;
}

static void round_of(int each)
{
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < MANY; i++)
            blocks[t][i] = i < each ? arena_malloc(&owner, 16 + (size_t)(i % 7) * 48) : NULL;
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++)
        CHECK(pthread_create(&threads[t], NULL, free_share, blocks[t]) == 0, "pthread_create");
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
}

int main(void)
{
    arena_init(&owner, 1);
    owner.threads = 1;                /* bound: not an orphan, whose stack drains at once */
    round_of(EACH);
    CHECK(owner.used_blocks == THREADS * EACH, "%zu blocks in use while their frees wait, not %d",
          owner.used_blocks, THREADS * EACH);
    CHECK(owner.remote_frees == 0, "%zu remote frees done below the bound", owner.remote_frees);
    arena_drain_remote(&owner);
    CHECK(owner.used_blocks == 0 && owner.used_bytes == 0, "%zu blocks in use after the drain", owner.used_blocks);
    CHECK(owner.remote_frees == THREADS * EACH, "%zu remote frees drained, not %d", owner.remote_frees,
          THREADS * EACH);

    round_of(MANY);
    CHECK(owner.remote_frees > THREADS * EACH, "past the bound no freer drained the stack");
    arena_drain_remote(&owner);
    CHECK(owner.used_blocks == 0, "%zu blocks in use after the last drain", owner.used_blocks);
    CHECK(owner.remote_frees == THREADS * (EACH + MANY), "%zu remote frees, not %d", owner.remote_frees,
          THREADS * (EACH + MANY));
    CHECK(arena_check(&owner) == 0, "arena_check failed (the line above says why)");

    void *last[2] = { arena_malloc(&owner, 64), arena_malloc(&owner, 64) };
    owner.threads = 0;
    arena_on_orphan_emptied(note_emptied);
    arena_free_remote(&owner, block_of(last[0]));
    CHECK(owner.used_blocks == 1 && emptied == NULL, "an orphan's first remote free was not drained alone");
    arena_free_remote(&owner, block_of(last[1]));
    CHECK(owner.used_blocks == 0 && emptied == &owner, "the emptied orphan did not reach the hook");
    return 0;
}
