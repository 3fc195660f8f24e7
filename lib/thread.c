/* Thread lifecycle: lazy initialisation on the first call, binding a thread
 * to an arena on its first allocation, flushing and orphaning at thread
 * exit (a pthread key destructor), and the fork handlers, registered from a
 * constructor so that they run after every handler registered later. */
#include "lib.h"
#include "prof.h"

#include <stdlib.h>

enum { INIT_NONE, INIT_RUNNING, INIT_DONE };

static int init_state;
static pthread_mutex_t init_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t exit_key;

static void thread_exit(void *value)
{
    engine_unbind(value);
}

/* Nothing here may allocate: getenv, pthread_key_create and the option
 * parser do not. */
void thread_init(void)
{
    if (HMM_LIKELY(__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) == INIT_DONE))
        return;
    pthread_mutex_lock(&init_mutex);
    if (init_state == INIT_NONE) {
        init_state = INIT_RUNNING;
        options_init(getenv("HMM_OPTIONS"));
        pthread_key_create(&exit_key, thread_exit);
        __atomic_store_n(&init_state, INIT_DONE, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&init_mutex);
}

static bool bind_preferring(const void *freeing)
{
    thread_init();
    void *bound = engine_bind(freeing);
    if (bound == NULL)
        return false;
    pthread_setspecific(exit_key, bound);
    maint_start();
    return true;
}

bool thread_bind(void)
{
    return bind_preferring(NULL);
}

/* A thread's first call frees ptr: it prefers to adopt ptr's arena. */
bool thread_bind_freeing(const void *ptr)
{
    return bind_preferring(ptr);
}

static void fork_prepare(void)
{
    prof_fork_prepare();
    registry_lock_all();
}

static void fork_parent(void)
{
    registry_unlock_all();
    prof_fork_parent();
}

static void fork_child(void)
{
    engine_fork_child();
    maint_child_reset();
    prof_fork_child();
}

__attribute__((constructor)) static void hmm_constructor(void)
{
    thread_init();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    if (hmm_options.stats_at_exit)
        atexit(stats_print_at_exit);
    prof_start();
}
