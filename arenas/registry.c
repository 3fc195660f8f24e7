/* The registry of arenas.  A thread is bound to an arena on its first
 * allocation: it adopts an orphaned arena first, creates one while fewer
 * than arena_max exist, and otherwise shares the least used live arena.  At
 * exit its arena is orphaned; an empty orphan is retired, its chunks go back
 * to the region, and the arena itself is reused only once no walk can still
 * be on it, because the walkers (stats, check, trim, maintenance) follow the
 * list without the registry lock.
 * That grace period is hmm's own, never liburcu's: liburcu's reader
 * registry and grace periods are process-wide, shared with a program that
 * uses liburcu itself, and registering, unregistering or waiting there
 * breaks the program.  A walk holds walk_lock for reading.  A retired arena
 * waits in limbo until walk_lock can be taken for writing with a try-lock:
 * then no walk is running, so none holds a pointer to it.  Nothing waits
 * for that: retiring happens on free paths (an orphan's last block, thread
 * exit), and a new arena is mapped when limbo has not settled yet.  Whoever
 * may have ended the last walk or added to limbo (a walker leaving, a
 * retirement, a binding) tries to settle it.  fork takes walk_lock for
 * writing, so no walk is in flight in a child.
 * The list's links are published with __atomic stores and read with
 * __atomic loads (liburcu's list macros use volatile accesses, which
 * ThreadSanitizer cannot see); the write lock that settles limbo tells
 * ThreadSanitizer that every walk that saw an arena has ended.
 * Lock order: walk_lock, registry, then arenas, then the region. */
#include "internal.h"

static pthread_rwlock_t walk_lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t registry_mutex = PTHREAD_MUTEX_INITIALIZER;
static CDS_LIST_HEAD(arena_list);     /* live and orphaned arenas, walked without the lock */
static struct arena *limbo_list;      /* retired; a walk may still be on them (atomic stores) */
static struct arena *retired_list;    /* retired, no walk on them: ready to reuse */
static unsigned arena_total;          /* arenas on arena_list */
static size_t retired_mallocs, retired_frees, retired_purged;   /* what retired arenas counted (atomic) */
static unsigned next_id;

/* The walked list: writers hold the registry lock; walkers follow next. */
static void list_add_tail(struct cds_list_head *node, struct cds_list_head *head)
{
    node->next = head;
    node->prev = head->prev;
    __atomic_store_n(&head->prev->next, node, __ATOMIC_RELEASE);
    head->prev = node;
}

static void list_del(struct cds_list_head *node)
{
    node->next->prev = node->prev;
    __atomic_store_n(&node->prev->next, node->next, __ATOMIC_RELEASE);
}

static struct arena *list_arena(struct cds_list_head *node)
{
    return caa_container_of(node, struct arena, node);
}

/* Limbo to the reuse list, if no walk is running (never waits); an arena
 * still pinned by a thread giving blocks back stays in limbo. */
static void limbo_settle(void)
{
    if (__atomic_load_n(&limbo_list, __ATOMIC_RELAXED) == NULL)
        return;
    if (pthread_rwlock_trywrlock(&walk_lock) != 0)
        return;
    pthread_mutex_lock(&registry_mutex);
    struct arena *a = limbo_list, *pinned = NULL;
    while (a != NULL) {
        struct arena *next = a->retired_next;
        struct arena **to = arena_pinned(a) ? &pinned : &retired_list;
        a->retired_next = *to;
        *to = a;
        a = next;
    }
    __atomic_store_n(&limbo_list, pinned, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&registry_mutex);
    pthread_rwlock_unlock(&walk_lock);
}

static struct arena *arena_new(void)
{
    struct arena *a = retired_list;
    if (a != NULL) {
        retired_list = a->retired_next;
    } else {
        size_t bytes = (sizeof(struct arena) + os_page_size() - 1) & ~(os_page_size() - 1);
        a = os_map(bytes);
        if (a == NULL)
            return NULL;
    }
    arena_on_orphan_emptied(registry_reclaim);   /* the arena cannot call up here */
    arena_init(a, next_id++);
    a->state = ARENA_LIVE;
    a->threads = 1;
    list_add_tail(&a->node, &arena_list);
    arena_total++;
    return a;
}

/* An orphan to adopt: preferred if it is one (the arena of the block a new
 * thread frees first: a worker taking over an exited one's objects then
 * frees them into its own arena, not remotely), else the first. */
static struct arena *find_orphan(struct arena *preferred)
{
    struct arena *a, *first = NULL;
    cds_list_for_each_entry(a, &arena_list, node) {
        if (a->state != ARENA_ORPHANED)
            continue;
        if (a == preferred)
            return a;
        if (first == NULL)
            first = a;
    }
    return first;
}

static struct arena *least_used(void)
{
    struct arena *a, *best = NULL;
    cds_list_for_each_entry(a, &arena_list, node)
        if (a->state == ARENA_LIVE && (best == NULL || a->threads < best->threads))
            best = a;
    return best;
}

struct arena *registry_bind(struct arena *preferred)
{
    limbo_settle();
    pthread_mutex_lock(&registry_mutex);
    struct arena *a = find_orphan(preferred);
    bool adopted = a != NULL;
    if (adopted) {
        a->state = ARENA_LIVE;
        __atomic_store_n(&a->threads, 1, __ATOMIC_RELEASE);
    } else if (arena_total < hmm_tunables.arena_max || (a = least_used()) == NULL) {
        a = arena_new();
    } else {
        __atomic_store_n(&a->threads, a->threads + 1, __ATOMIC_RELEASE);
    }
    if (a != NULL)
        __atomic_store_n(&arena_threads_bound, arena_threads_bound + 1, __ATOMIC_RELAXED);
    if (arena_threads_bound > 1)
        region_threads_started();
    pthread_mutex_unlock(&registry_mutex);
    if (adopted)
        arena_drain_remote(a);
    return a;
}

void registry_unbind(struct arena *a)
{
    pthread_mutex_lock(&registry_mutex);
    __atomic_store_n(&a->threads, a->threads - 1, __ATOMIC_RELEASE);
    __atomic_store_n(&arena_threads_bound, arena_threads_bound - 1, __ATOMIC_RELAXED);
    bool orphaned = a->threads == 0;
    if (orphaned)
        a->state = ARENA_ORPHANED;
    pthread_mutex_unlock(&registry_mutex);
    if (orphaned)
        registry_reclaim(a);
}

/* The process's totals outlive the arena that counted them: a monitor that
 * samples hmm_stats as counters never sees one go down.  Added as the arena
 * leaves the list, read without a lock (engine_retired): a walk that meets
 * an arena retiring under it may count it twice or miss it, once. */
static void retired_count(struct arena *a)
{
    __atomic_fetch_add(&retired_mallocs, counter_read(&a->mallocs), __ATOMIC_RELAXED);
    __atomic_fetch_add(&retired_frees, counter_read(&a->frees), __ATOMIC_RELAXED);
    __atomic_fetch_add(&retired_purged, counter_read(&a->purged_total), __ATOMIC_RELAXED);
}

void registry_retired(size_t *mallocs, size_t *frees, size_t *purged)
{
    *mallocs = __atomic_load_n(&retired_mallocs, __ATOMIC_RELAXED);
    *frees = __atomic_load_n(&retired_frees, __ATOMIC_RELAXED);
    *purged = __atomic_load_n(&retired_purged, __ATOMIC_RELAXED);
}

/* Retire a if it is an empty orphan: its chunks go back to the region, the
 * arena to limbo.  On free paths: no lock held, nothing waited for. */
void registry_reclaim(struct arena *a)
{
    if (!arena_empty(a))
        return;
    pthread_mutex_lock(&registry_mutex);
    bool retire = a->state == ARENA_ORPHANED && a->threads == 0;
    if (retire) {
        list_del(&a->node);
        a->state = ARENA_RETIRED;
        arena_total--;
        retired_count(a);
    }
    pthread_mutex_unlock(&registry_mutex);
    if (!retire)
        return;
    arena_release(a, false);
    pthread_mutex_lock(&registry_mutex);
    a->retired_next = limbo_list;
    __atomic_store_n(&limbo_list, a, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&registry_mutex);
    limbo_settle();
}

/* Visit every live and orphaned arena without blocking allocation.  visit
 * may retire arenas (the list stays walkable) but must not allocate. */
void registry_foreach(void (*visit)(struct arena *a, void *ctx), void *ctx)
{
    pthread_rwlock_rdlock(&walk_lock);
    struct cds_list_head *node = __atomic_load_n(&arena_list.next, __ATOMIC_ACQUIRE);
    while (node != &arena_list) {
        visit(list_arena(node), ctx);
        node = __atomic_load_n(&node->next, __ATOMIC_ACQUIRE);
    }
    pthread_rwlock_unlock(&walk_lock);
    limbo_settle();
}

/* fork: every allocator lock, in lock order. */
void registry_lock_all(void)
{
    pthread_rwlock_wrlock(&walk_lock);
    pthread_mutex_lock(&registry_mutex);
    struct arena *a;
    cds_list_for_each_entry(a, &arena_list, node)
        spin_lock(&a->lock);
    region_lock();
}

void registry_unlock_all(void)
{
    region_unlock();
    struct arena *a;
    cds_list_for_each_entry(a, &arena_list, node)
        spin_unlock(&a->lock);
    pthread_mutex_unlock(&registry_mutex);
    pthread_rwlock_unlock(&walk_lock);
}

/* In the child only the forking thread lives: its arena keeps one thread,
 * every other arena is orphaned. */
void registry_child_reset(struct arena *keep)
{
    region_child_reset();
    pthread_rwlock_init(&walk_lock, NULL);
    pthread_mutex_init(&registry_mutex, NULL);
    arena_threads_bound = keep != NULL;
    struct arena *a;
    cds_list_for_each_entry(a, &arena_list, node) {
        spin_unlock(&a->lock);
        a->threads = a == keep ? 1 : 0;
        a->state = a == keep ? ARENA_LIVE : ARENA_ORPHANED;
        a->pins = 0;
    }
    for (a = limbo_list; a != NULL; a = a->retired_next)
        a->pins = 0;                  /* pinned by threads the child has not */
}
