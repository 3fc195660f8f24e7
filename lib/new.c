/* C++ operator new and delete in every form, written in C under their
 * Itanium names for x86_64 (size_t is m, std::align_val_t a size_t,
 * std::nothrow_t const& a pointer), so that libhmm never links libstdc++:
 * a C process that loads hmm does not load it too.  What only the C++
 * runtime has -- the new_handler and the throw of std::bad_alloc -- is
 * reached through weak references, bound in every C++ program; a C program
 * that calls these names by hand gets one line and abort instead of a
 * throw.  Built with the standard names only (override, not the test or
 * ThreadSanitizer builds) and without --disable-cxx. */
#include "lib.h"

#if defined(HMM_CXX) && defined(HMM_OVERRIDE) && !defined(HMM_NO_OVERRIDE)

#include <stddef.h>

typedef void (*new_handler)(void);

/* std::get_new_handler() and std::__throw_bad_alloc() of libstdc++. */
extern new_handler _ZSt15get_new_handlerv(void) __attribute__((weak, visibility("default")));
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn, visibility("default")));

/* A throwing new found no memory: the program's new_handler may make room
 * (the caller tries again) or throw; without one, std::bad_alloc. */
static void out_of_memory(size_t size, const char *call)
{
    new_handler handler = _ZSt15get_new_handlerv ? _ZSt15get_new_handlerv() : NULL;
    if (handler != NULL) {
        handler();
        return;
    }
    if (!_ZSt17__throw_bad_allocv)
        fatal("%s(): out of memory for %zu bytes and no C++ runtime to throw std::bad_alloc", call, size);
    _ZSt17__throw_bad_allocv();
}

/* alignment 0: malloc's alignment.  NULL with errno ENOMEM. */
static void *try_new(size_t size, size_t alignment)
{
    return alignment ? hmm_aligned_alloc(alignment, size) : malloc_slow(size);
}

static HMM_NOINLINE void *new_slow(size_t size, size_t alignment, const char *call)
{
    for (;;) {
        void *ptr = try_new(size, alignment);
        if (ptr != NULL)
            return ptr;
        out_of_memory(size, call);
    }
}

/* The nothrow forms return NULL without calling the new_handler: C cannot
 * catch what a handler throws, and a replacement may return NULL. */
static inline void *new_fast(size_t size, bool nothrow, const char *call)
{
    /* hmm_malloc's pop, inline: a call to hmm_malloc costs new+delete 8
     * instructions a pair (58 -> 66 under callgrind). */
    void *ptr = cache_pop(size);
    if (HMM_LIKELY(ptr != NULL))
        return ptr;
    return nothrow ? malloc_slow(size) : new_slow(size, 0, call);
}

static inline void delete_fast(void *ptr, const char *call)
{
    if (HMM_LIKELY(cache_push(ptr)))
        return;
    free_slow(ptr, call);
}


static inline void delete_aligned(void *ptr, size_t alignment, const char *call)
{
    check_aligned(ptr, alignment, call);
    delete_fast(ptr, call);
}

/* operator new(size_t) and new[](size_t) */
HMM_EXPORT void *_Znwm(size_t size)
{
    return new_fast(size, false, "operator new");
}

HMM_EXPORT void *_Znam(size_t size)
{
    return new_fast(size, false, "operator new[]");
}

/* (size_t, std::nothrow_t const&) */
HMM_EXPORT void *_ZnwmRKSt9nothrow_t(size_t size, const void *nothrow)
{
    (void)nothrow;
    return new_fast(size, true, "operator new");
}

HMM_EXPORT void *_ZnamRKSt9nothrow_t(size_t size, const void *nothrow)
{
    (void)nothrow;
    return new_fast(size, true, "operator new[]");
}

/* (size_t, std::align_val_t) */
HMM_EXPORT void *_ZnwmSt11align_val_t(size_t size, size_t alignment)
{
    return new_slow(size, alignment, "operator new");
}

HMM_EXPORT void *_ZnamSt11align_val_t(size_t size, size_t alignment)
{
    return new_slow(size, alignment, "operator new[]");
}

/* (size_t, std::align_val_t, std::nothrow_t const&) */
HMM_EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t size, size_t alignment, const void *nothrow)
{
    (void)nothrow;
    return try_new(size, alignment);
}

HMM_EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t size, size_t alignment, const void *nothrow)
{
    (void)nothrow;
    return try_new(size, alignment);
}

/* operator delete(void*) and delete[](void*) */
HMM_EXPORT void _ZdlPv(void *ptr)
{
    delete_fast(ptr, "operator delete");
}

HMM_EXPORT void _ZdaPv(void *ptr)
{
    delete_fast(ptr, "operator delete[]");
}

/* (void*, std::nothrow_t const&) */
HMM_EXPORT void _ZdlPvRKSt9nothrow_t(void *ptr, const void *nothrow)
{
    (void)nothrow;
    delete_fast(ptr, "operator delete");
}

HMM_EXPORT void _ZdaPvRKSt9nothrow_t(void *ptr, const void *nothrow)
{
    (void)nothrow;
    delete_fast(ptr, "operator delete[]");
}

/* (void*, size_t) */
HMM_EXPORT void _ZdlPvm(void *ptr, size_t size)
{
    free_with_size(ptr, size, "operator delete");
}

HMM_EXPORT void _ZdaPvm(void *ptr, size_t size)
{
    free_with_size(ptr, size, "operator delete[]");
}

/* (void*, std::align_val_t) */
HMM_EXPORT void _ZdlPvSt11align_val_t(void *ptr, size_t alignment)
{
    delete_aligned(ptr, alignment, "operator delete");
}

HMM_EXPORT void _ZdaPvSt11align_val_t(void *ptr, size_t alignment)
{
    delete_aligned(ptr, alignment, "operator delete[]");
}

/* (void*, std::align_val_t, std::nothrow_t const&) */
HMM_EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *ptr, size_t alignment, const void *nothrow)
{
    (void)nothrow;
    delete_aligned(ptr, alignment, "operator delete");
}

HMM_EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *ptr, size_t alignment, const void *nothrow)
{
    (void)nothrow;
    delete_aligned(ptr, alignment, "operator delete[]");
}

/* (void*, size_t, std::align_val_t) */
HMM_EXPORT void _ZdlPvmSt11align_val_t(void *ptr, size_t size, size_t alignment)
{
    check_aligned(ptr, alignment, "operator delete");
    free_with_size(ptr, size, "operator delete");
}

HMM_EXPORT void _ZdaPvmSt11align_val_t(void *ptr, size_t size, size_t alignment)
{
    check_aligned(ptr, alignment, "operator delete[]");
    free_with_size(ptr, size, "operator delete[]");
}

#endif
