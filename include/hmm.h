/* hmm: a thread-safe arena allocator for long-running multithreaded servers.
 *
 * Every function of the malloc family is available under its standard name
 * (unless the library was configured with --disable-override) and under the
 * hmm_ prefix in every build. */
#ifndef HMM_H
#define HMM_H

#include <stddef.h>
#include <stdint.h>
#include <malloc.h>

#ifdef __cplusplus
extern "C" {
#endif

void *hmm_malloc(size_t size);
void hmm_free(void *ptr);
void *hmm_calloc(size_t count, size_t size);
void *hmm_realloc(void *ptr, size_t size);
void *hmm_reallocarray(void *ptr, size_t count, size_t size);
int hmm_posix_memalign(void **out, size_t alignment, size_t size);
void *hmm_aligned_alloc(size_t alignment, size_t size);
void *hmm_memalign(size_t alignment, size_t size);
void *hmm_valloc(size_t size);
void *hmm_pvalloc(size_t size);
size_t hmm_malloc_usable_size(void *ptr);
int hmm_malloc_trim(size_t pad);
void hmm_free_sized(void *ptr, size_t size);
void hmm_free_aligned_sized(void *ptr, size_t alignment, size_t size);
void hmm_malloc_stats(void);
struct mallinfo2 hmm_mallinfo2(void);
int hmm_mallopt(int param, int value);

/* Walks every arena, chunk and block while other threads keep running and
 * verifies the heap's invariants.  Returns 0 when the heap is sound; otherwise
 * writes the first broken invariant to stderr and returns -1. */
int hmm_check(void);

#define HMM_STATS_ARENAS 64

struct hmm_arena_stats {
    unsigned id;
    unsigned threads;          /* threads bound to the arena now */
    int orphaned;              /* no thread is bound to it */
    size_t chunks;             /* chunks the arena holds */
    size_t chunk_bytes;        /* bytes of those chunks */
    size_t in_use_bytes;       /* bytes of blocks handed out (usable size) */
    size_t free_bytes;         /* bytes of free blocks in the arena's bins and central lists */
    size_t cached_bytes;       /* of its blocks, parked in the calling thread's cache */
    uint64_t mallocs;          /* allocations served by the arena's slow path */
    uint64_t frees;            /* frees handled by the arena's slow path */
    uint64_t remote_frees;     /* blocks other threads freed back to it */
};

struct hmm_stats {
    size_t in_use_bytes;       /* bytes the program holds (arenas + huge) */
    size_t free_bytes;         /* free in arenas' bins and central lists */
    size_t cached_bytes;       /* held in the calling thread's cache (other
                                  threads' caches count as in use) */
    size_t region_bytes;       /* size of the sbrk region hmm owns */
    size_t region_free_bytes;  /* free chunks inside the region */
    size_t region_dirty_bytes; /* of those, still resident: kept for reuse until
                                  decay_ms has passed (or far too many of them) */
    size_t region_break;       /* the end of hmm's heap on the break (0: none) */
    size_t mapped_chunk_bytes; /* chunks mmap'ed because sbrk failed */
    size_t huge_blocks;        /* live huge (own mapping) blocks */
    size_t huge_bytes;         /* bytes mapped for them */
    size_t purged_in_arenas;   /* free blocks inside arenas' chunks, not resident */
    size_t returned_bytes;     /* resident bytes given back to the kernel so far */
    size_t footprint_bytes;    /* region less what was purged, + mapped chunks + huge */
    uint64_t mallocs;          /* equal to slow_mallocs: cache hits are not
                                  counted, to keep the fast path free of counters */
    uint64_t frees;            /* equal to slow_frees, likewise */
    uint64_t slow_mallocs;     /* allocations that missed the thread cache
                                  (all so far: retired arenas' too) */
    uint64_t slow_frees;       /* frees that missed the thread cache, likewise */
    unsigned arena_count;      /* arenas in the registry */
    unsigned arenas_listed;    /* of those, how many fill arenas[] */
    struct hmm_arena_stats arenas[HMM_STATS_ARENAS];
};

/* Fills *stats; returns 0. */
int hmm_stats(struct hmm_stats *stats);

/* Writes the statistics to fd as "text" or "json"; returns 0, or -1 with
 * errno = EINVAL for an unknown format. */
int hmm_stats_print(int fd, const char *format);

/* With HMM_OPTIONS=prof=true, writes a heap profile of the sampled live
 * blocks (the legacy text format google-pprof reads) to path, or to the
 * next PREFIX.PID.SEQ.heap when path is NULL; returns 0, or -1 with
 * errno = ENOENT when the profiler is off, or open's errno. */
int hmm_prof_dump(const char *path);

#ifdef __cplusplus
}
#endif

#endif
