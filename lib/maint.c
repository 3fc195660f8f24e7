/* The maintenance thread, "hmm-maint": every decay_ms it drains
 * remote-free stacks, gives back wholly free chunks (live arenas keep their
 * spare) and purges the pages of free blocks, retires empty orphaned
 * arenas, lowers the break to top_pad and purges the free chunks below it,
 * so that an idle daemon shrinks without calling into the allocator.
 * background_thread=true starts it with the first thread; the default,
 * auto, once the process has two threads and its arenas hold
 * AUTO_HELD_BYTES (a daemon, not a short-lived tool); false never.  It is
 * started outside every allocator lock (pthread_create allocates) with
 * signals blocked, and started again in a fork child on a later allocation;
 * one that cannot start is said once and tried again every MAINT_RETRY_MS.
 * stats_signal and prof_signal start it too (whatever background_thread
 * says), to answer hmm-stats and write profiles between its passes
 * (live_stats.c). */
#include "lib.h"
#include "prof.h"

#define AUTO_HELD_BYTES ((size_t)64 << 20)
#define MAINT_RETRY_MS 10000u

static bool maint_running;
static pthread_mutex_t maint_mutex = PTHREAD_MUTEX_INITIALIZER;

/* auto: whether the process has grown into a daemon; once true, stays. */
static bool grown;

static bool grown_enough(void)
{
    if (!__atomic_load_n(&grown, __ATOMIC_RELAXED) && arena_threads() >= 2 &&
        arena_held_bytes() >= AUTO_HELD_BYTES)
        __atomic_store_n(&grown, true, __ATOMIC_RELAXED);
    return __atomic_load_n(&grown, __ATOMIC_RELAXED);
}

/* Whether the thread purges, as background_thread says: always with true,
 * with auto once the process has grown enough, never with false (a thread
 * started for stats_signal alone only answers hmm-stats). */
static bool maint_purges(void)
{
    return hmm_options.background_thread == BACKGROUND_ON ||
           (hmm_options.background_thread == BACKGROUND_AUTO && grown_enough());
}

static bool maint_wanted(void)
{
    return maint_purges() || live_stats_wanted();
}

static void *maint_main(void *arg)
{
    (void)arg;
    for (;;) {
        live_stats_wait(hmm_tunables.decay_ms ? hmm_tunables.decay_ms : 1);
        if (maint_purges())
            engine_maintain(hmm_tunables.top_pad);
        if (prof_options.on)
            prof_poll();
    }
    return NULL;
}

/* A failed start (a thread limit, no memory for a stack) is said once and
 * tried again after MAINT_RETRY_MS, not on every slow malloc. */
static uint64_t retry_after_ms;
static bool start_failed;

static void maint_try_start(void)
{
    if (start_failed && os_now_ms() < retry_after_ms)
        return;
    live_stats_start();
    int error = os_thread_start(maint_main, "hmm-maint");
    if (error == 0) {
        __atomic_store_n(&maint_running, true, __ATOMIC_RELEASE);
        return;
    }
    if (!start_failed)
        warn("background_thread: cannot start the maintenance thread (pthread_create: error %d); "
             "going on without it, trying again every %u s", error, MAINT_RETRY_MS / 1000);
    start_failed = true;
    retry_after_ms = os_now_ms() + MAINT_RETRY_MS;
}

void maint_start(void)
{
    if (__atomic_load_n(&maint_running, __ATOMIC_ACQUIRE) || !maint_wanted())
        return;
    /* pthread_create allocates, and that malloc comes back here. */
    if (pthread_mutex_trylock(&maint_mutex) != 0)
        return;
    if (!maint_running)
        maint_try_start();
    pthread_mutex_unlock(&maint_mutex);
}

/* In a fork child the thread is gone; the first allocation starts another. */
void maint_child_reset(void)
{
    pthread_mutex_init(&maint_mutex, NULL);
    maint_running = false;
    live_stats_child_reset();
}
