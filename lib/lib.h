/* lib/: the library's face.  Cross-file API of lib/, grouped by the file
 * that defines it.  lib/ includes the engine's header, never the reverse. */
#ifndef HMM_LIB_H
#define HMM_LIB_H

#include "internal.h"
#include "hmm.h"

#define HMM_EXPORT __attribute__((visibility("default")))

enum background_mode { BACKGROUND_AUTO = 0, BACKGROUND_ON = 1, BACKGROUND_OFF = 2 };

/* options.c: HMM_OPTIONS and mallopt fill hmm_tunables and these. */
struct lib_options {
    bool stats_at_exit;
    uint64_t check_every;        /* run hmm_check() every N calls; 0 = never */
    unsigned background_thread;  /* enum background_mode */
    int stats_signal;            /* answered with a stats file (live_stats.c); 0: none */
};
extern struct lib_options hmm_options;
void options_init(const char *text);
int options_mallopt(int param, int value);

/* thread.c: initialisation, binding threads to arenas, exit and fork. */
void thread_init(void);
bool thread_bind(void);
bool thread_bind_freeing(const void *ptr);   /* its first call frees ptr */

/* maint.c: the opt-in maintenance thread. */
void maint_start(void);
void maint_child_reset(void);

/* live_stats.c: statistics on request (stats_signal), answered by the
 * maintenance thread; its pipe also wakes the thread for prof_signal. */
enum { REQUEST_STATS = 's', REQUEST_PROF = 'p' };
void live_stats_poke(char why);       /* async-signal-safe */
bool live_stats_wanted(void);
void live_stats_start(void);
void live_stats_wait(unsigned ms);
void live_stats_child_reset(void);

/* malloc.c: the slow paths and the checks that new.c (C++ operator new
 * and delete) shares with the C names; call names the caller in messages. */
void *malloc_slow(size_t size);
void free_slow(void *ptr, const char *call);
void check_sized(void *ptr, size_t size, const char *call);

/* A free that says the block's size (free_sized, C++ sized delete): the
 * fast path checks it against the header it reads anyway, the slow path
 * with heap_usable's lookup. */
static inline void free_with_size(void *ptr, size_t size, const char *call)
{
    if (HMM_LIKELY(cache_push_sized(ptr, size)))
        return;
    check_sized(ptr, size, call);
    free_slow(ptr, call);
}
void check_aligned(void *ptr, size_t alignment, const char *call);

/* check.c */
void check_tick(void);

/* stats.c */
void stats_print_at_exit(void);

#endif
