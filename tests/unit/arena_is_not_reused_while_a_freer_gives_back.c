/* A thread that frees another arena's block pushes it on that arena's
 * remote stack and then looks at the arena (its pending count, its lock,
 * a drain): between the push and that, another thread's drain may take
 * the block, find the orphan empty and retire it.  The registry must not
 * hand the retired arena to a new thread (arena_init rewrites it) while
 * the freer can still touch it: the freer pins it from before its push
 * to its last access, and a pinned arena stays in limbo.  Played out in
 * one thread, in that order: bind, allocate, orphan; the freer's push;
 * the other thread's reclaim; a new binding must get another arena; then
 * the freer finishes, and the arena is reused after all.  ThreadSanitizer
 * found the race in hmm-stress --scenario churn (an exiting thread's
 * flush handing a chain back to an orphan retired under it). */
#include "arena.c"
#include "testutil.h"

static void visit_nothing(struct arena *a, void *ctx)
{
    (void)a;
    (void)ctx;
}

int main(void)
{
    struct arena *a = registry_bind(NULL);
    CHECK(a != NULL, "no arena");
    struct block *b = block_of(arena_malloc(a, 64));
    registry_unbind(a);
    CHECK(a->state == ARENA_ORPHANED, "the arena holding a block was not left an orphan");

    /* the freer, up to its push (arena_free_remote) */
    CHECK(ck_pr_cas_16(&b->state, BLOCK_INUSE, BLOCK_REMOTE), "the block was not in use");
    arena_pin(a);
    ck_stack_push_upmc(&a->remote, (ck_stack_entry_t *)block_payload(b));

    /* another thread drains the orphan, finds it empty and retires it */
    registry_reclaim(a);
    CHECK(a->state == ARENA_RETIRED, "the emptied orphan was not retired");
    struct arena *fresh = registry_bind(NULL);
    CHECK(fresh != NULL && fresh != a, "a new thread got the retired arena while a freer still held it pinned");

    /* the freer's last access, then the arena may be reused */
    remote_pushed(a, 1);
    arena_unpin(a);
    registry_foreach(visit_nothing, NULL);       /* a walk's end settles limbo */
    hmm_tunables.arena_max = 2;                   /* fresh is live: the next binding makes one */
    CHECK(registry_bind(NULL) == a, "the retired arena, no longer pinned, was not reused");
    return 0;
}
