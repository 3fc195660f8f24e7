/* The sampling heap profiler (prof=true): the engine chooses the sampled
 * mallocs (arenas/internal.h, sampling); prof.c records their call
 * stacks and live bytes per stack and writes heap profiles in the legacy
 * text format google-pprof reads. */
#ifndef HMM_PROF_H
#define HMM_PROF_H

#include "internal.h"

#define PROF_PREFIX_MAX 200

struct prof_options {
    bool on;
    bool final;                    /* dump at exit */
    size_t sample;                 /* mean bytes between samples */
    size_t interval;               /* dump at each new multiple of live bytes; 0 = never */
    int signal;                    /* dump on this signal; 0 = none */
    char prefix[PROF_PREFIX_MAX];  /* dumps are PREFIX.PID.SEQ.heap */
};
extern struct prof_options prof_options;
extern volatile int prof_asked;    /* by prof_signal or prof_interval */

void prof_init(void);              /* after the options, before any thread binds */
void prof_start(void);             /* from the constructor: signal handler, exit dump */
void prof_record(void *ptr);
void prof_dump_asked(void);
void prof_fork_prepare(void);
void prof_fork_parent(void);
void prof_fork_child(void);

/* A slow-path allocation the engine chose: record it with its stack. */
static inline void *prof_note(void *ptr)
{
    if (HMM_UNLIKELY(cache_sampled() != 0))
        prof_record(ptr);
    return ptr;
}

/* A safe point (no lock of hmm's held): dump if asked. */
static inline void prof_poll(void)
{
    if (HMM_UNLIKELY(prof_asked))
        prof_dump_asked();
}

#endif
