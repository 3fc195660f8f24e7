/* The exported entry points: the malloc family under the hmm_ names, and
 * under the standard and glibc-internal names unless built without
 * override.  The fast paths are the thread cache's inline pop and push;
 * everything else goes out of line to the engine's front door (heap.c). */
#include "lib.h"
#include "prof.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static bool ready_to_allocate(void)
{
    if (HMM_UNLIKELY(hmm_options.check_every))
        check_tick();
    if (HMM_LIKELY(cache_bound()) || thread_bind())
        return true;
    errno = ENOMEM;
    return false;
}

/* The maintenance thread may start once the process has grown (auto). */
HMM_NOINLINE void *malloc_slow(size_t size)
{
    void *ptr = ready_to_allocate() ? prof_note(heap_malloc(size)) : NULL;
    maint_start();
    return ptr;
}

HMM_EXPORT void *hmm_malloc(size_t size)
{
    void *ptr = cache_pop(size);
    if (HMM_LIKELY(ptr != NULL))
        return ptr;
    return malloc_slow(size);
}

/* A thread that only frees (a consumer) is bound too, so that it gets a
 * cache: the blocks it frees then go back to their owners in batches. */
HMM_NOINLINE void free_slow(void *ptr, const char *call)
{
    if (HMM_UNLIKELY(hmm_options.check_every))
        check_tick();
    if (HMM_UNLIKELY(prof_options.on))
        prof_poll();
    if ((frees_scrubbed() || prof_options.on) && cache_push_slow(ptr, call))
        return;
    if (ptr != NULL && cache_never_bound())
        thread_bind_freeing(ptr);
    heap_free(ptr, call);
}

HMM_EXPORT void hmm_free(void *ptr)
{
    if (HMM_LIKELY(cache_push(ptr)))
        return;
    free_slow(ptr, "free");
}

HMM_EXPORT void *hmm_calloc(size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    void *ptr = hmm_malloc(total);
    if (ptr != NULL && !heap_fresh_mapping(ptr))
        memset(ptr, 0, total);
    return ptr;
}

HMM_EXPORT void *hmm_realloc(void *ptr, size_t size)
{
    if (ptr == NULL)
        return hmm_malloc(size);
    if (size == 0) {
        hmm_free(ptr);
        return NULL;
    }
    return ready_to_allocate() ? prof_note(heap_realloc(ptr, size)) : NULL;
}

HMM_EXPORT void *hmm_reallocarray(void *ptr, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return hmm_realloc(ptr, total);
}

static bool power_of_two(size_t n)
{
    return n != 0 && (n & (n - 1)) == 0;
}

static void *aligned(size_t alignment, size_t size)
{
    return ready_to_allocate() ? prof_note(heap_memalign(alignment, size)) : NULL;
}

HMM_EXPORT int hmm_posix_memalign(void **out, size_t alignment, size_t size)
{
    if (!power_of_two(alignment) || alignment % sizeof(void *) != 0)
        return EINVAL;
    int saved = errno;
    void *ptr = aligned(alignment, size);
    if (ptr == NULL) {
        errno = saved;
        return ENOMEM;
    }
    *out = ptr;
    return 0;
}

HMM_EXPORT void *hmm_aligned_alloc(size_t alignment, size_t size)
{
    if (!power_of_two(alignment)) {
        errno = EINVAL;
        return NULL;
    }
    return aligned(alignment, size);
}

/* glibc's memalign rounds a bad alignment up to a power of two. */
HMM_EXPORT void *hmm_memalign(size_t alignment, size_t size)
{
    if (alignment > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    while (!power_of_two(alignment))
        alignment = alignment ? (alignment | (alignment - 1)) + 1 : UNIT;
    return aligned(alignment, size);
}

HMM_EXPORT void *hmm_valloc(size_t size)
{
    return aligned(os_page_size(), size);
}

HMM_EXPORT void *hmm_pvalloc(size_t size)
{
    size_t page = os_page_size();
    if (size > SIZE_MAX - page) {
        errno = ENOMEM;
        return NULL;
    }
    size_t rounded = (size + page - 1) & ~(page - 1);
    return aligned(page, rounded ? rounded : page);
}

HMM_EXPORT size_t hmm_malloc_usable_size(void *ptr)
{
    return heap_usable(ptr, "malloc_usable_size");
}

/* C23: the size (and alignment) must be those of the allocation. */
void check_sized(void *ptr, size_t size, const char *call)
{
    size_t usable = heap_usable(ptr, call);
    if (ptr != NULL && size > usable)
        fatal("%s(): size %zu is larger than the block %p (%zu bytes)", call, size, ptr, usable);
}

void check_aligned(void *ptr, size_t alignment, const char *call)
{
    if (ptr != NULL && ((uintptr_t)ptr & (alignment - 1)) != 0)
        fatal("%s(): %p is not aligned to %zu", call, ptr, alignment);
}

HMM_EXPORT void hmm_free_sized(void *ptr, size_t size)
{
    free_with_size(ptr, size, "free_sized");
}

HMM_EXPORT void hmm_free_aligned_sized(void *ptr, size_t alignment, size_t size)
{
    check_aligned(ptr, alignment, "free_aligned_sized");
    free_with_size(ptr, size, "free_aligned_sized");
}

HMM_EXPORT int hmm_malloc_trim(size_t pad)
{
    thread_init();
    return engine_trim(pad) > 0;
}

HMM_EXPORT int hmm_mallopt(int param, int value)
{
    thread_init();
    return options_mallopt(param, value);
}

#if defined(HMM_OVERRIDE) && !defined(HMM_NO_OVERRIDE)
#define HMM_ALIAS(name) __attribute__((alias(#name), visibility("default"), used))
void *malloc(size_t size) HMM_ALIAS(hmm_malloc);
void free(void *ptr) HMM_ALIAS(hmm_free);
void *calloc(size_t count, size_t size) HMM_ALIAS(hmm_calloc);
void *realloc(void *ptr, size_t size) HMM_ALIAS(hmm_realloc);
void *reallocarray(void *ptr, size_t count, size_t size) HMM_ALIAS(hmm_reallocarray);
int posix_memalign(void **out, size_t alignment, size_t size) HMM_ALIAS(hmm_posix_memalign);
void *aligned_alloc(size_t alignment, size_t size) HMM_ALIAS(hmm_aligned_alloc);
void *memalign(size_t alignment, size_t size) HMM_ALIAS(hmm_memalign);
void *valloc(size_t size) HMM_ALIAS(hmm_valloc);
void *pvalloc(size_t size) HMM_ALIAS(hmm_pvalloc);
size_t malloc_usable_size(void *ptr) HMM_ALIAS(hmm_malloc_usable_size);
int malloc_trim(size_t pad) HMM_ALIAS(hmm_malloc_trim);
void free_sized(void *ptr, size_t size) HMM_ALIAS(hmm_free_sized);
void free_aligned_sized(void *ptr, size_t alignment, size_t size) HMM_ALIAS(hmm_free_aligned_sized);
int mallopt(int param, int value) HMM_ALIAS(hmm_mallopt);
void *__libc_malloc(size_t size) HMM_ALIAS(hmm_malloc);
void __libc_free(void *ptr) HMM_ALIAS(hmm_free);
void *__libc_calloc(size_t count, size_t size) HMM_ALIAS(hmm_calloc);
void *__libc_realloc(void *ptr, size_t size) HMM_ALIAS(hmm_realloc);
void *__libc_memalign(size_t alignment, size_t size) HMM_ALIAS(hmm_memalign);
void *__libc_valloc(size_t size) HMM_ALIAS(hmm_valloc);
void *__libc_pvalloc(size_t size) HMM_ALIAS(hmm_pvalloc);
int __posix_memalign(void **out, size_t alignment, size_t size) HMM_ALIAS(hmm_posix_memalign);
#endif
