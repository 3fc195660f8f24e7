/* hmm_check: the engine walks the region's free chunks, every arena (each
 * under its own lock, so other threads keep allocating) and this thread's
 * cache, and reports the first broken invariant; check=N runs it every N
 * calls. */
#include "lib.h"

static __thread uint64_t calls_since_check __attribute__((tls_model("initial-exec")));

HMM_EXPORT int hmm_check(void)
{
    thread_init();
    return engine_check();
}

void check_tick(void)
{
    if (++calls_since_check < hmm_options.check_every)
        return;
    calls_since_check = 0;
    if (hmm_check() != 0)
        fatal("check: the heap is corrupted (the line above says where)");
}
