/* ck_pr_tsan.h: Concurrency Kit's primitives as ThreadSanitizer sees them.
 *
 * Force-included (-include) into the ThreadSanitizer build of the library
 * (libhmm_tsan.la), before any CK header.  With CK_USE_CC_BUILTINS=1, CK 0.7
 * implements its read-modify-write operations with __sync builtins, which
 * TSan instruments as atomics, but ck_pr_load_* and ck_pr_store_* as plain
 * volatile accesses, which TSan treats as ordinary reads and writes: every
 * ck_pr_load of a word another thread changes by CAS is then reported as a
 * data race, including the loads inside ck_stack_push_upmc and inside the
 * generic ck_pr_fas that ck_stack_batch_pop_upmc uses.
 *
 * This header provides the same primitives as CK's gcc port (gcc/ck_pr.h,
 * the same set, so the feature list gcc/ck_f_pr.h stays true) and defines
 * CK_F_PR so that the port skips its own.  Loads and stores are relaxed
 * atomics (CK gives them no ordering: that is what its fences are for), the
 * fences are __sync_synchronize as in the port (TSan does not model fences;
 * the CAS that publishes a ck_stack entry is seq_cst, which it does model),
 * and CAS, fetch-and-add and the binary operations are the same sequentially
 * consistent operations as __atomic builtins.  Nothing is hidden from TSan: it is told
 * which accesses CK means to be atomic. */
#ifndef HMM_CK_PR_TSAN_H
#define HMM_CK_PR_TSAN_H

#if !defined(CK_USE_CC_BUILTINS) || !CK_USE_CC_BUILTINS
#error "ck_pr_tsan.h is for builds with -DCK_USE_CC_BUILTINS=1"
#endif
#ifdef CK_PR_H
#error "ck_pr_tsan.h must come before ck_pr.h (use -include)"
#endif

/* Being first, this header must give the system headers the feature macros
 * the sources would have given them (config.h: _GNU_SOURCE for mremap). */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <ck_cc.h>
#include <ck_stdbool.h>
#include <ck_stdint.h>
#include <stdint.h>

#define CK_F_PR
#include <gcc/ck_f_pr.h>

/* CK's integer types: X(suffix, memory type, value type) for each. */
#define HMM_CK_FOR_INTS(X)                                                     \
    X(char, char, char)                                                        \
    X(int, int, int)                                                           \
    X(uint, unsigned int, unsigned int)                                        \
    X(64, uint64_t, uint64_t)                                                  \
    X(32, uint32_t, uint32_t)                                                  \
    X(16, uint16_t, uint16_t)                                                  \
    X(8, uint8_t, uint8_t)

#define HMM_CK_LOAD_STORE(S, M, T)                                             \
    CK_CC_INLINE static T ck_pr_md_load_##S(const M *target)                   \
    {                                                                          \
        return __atomic_load_n((const T *)target, __ATOMIC_RELAXED);           \
    }                                                                          \
    CK_CC_INLINE static void ck_pr_md_store_##S(M *target, T v)                \
    {                                                                          \
        __atomic_store_n((T *)target, v, __ATOMIC_RELAXED);                    \
    }

CK_CC_INLINE static void *ck_pr_md_load_ptr(const void *target)
{
    return __atomic_load_n((void *const *)target, __ATOMIC_RELAXED);
}

CK_CC_INLINE static void ck_pr_md_store_ptr(void *target, const void *v)
{
    __atomic_store_n((void **)target, CK_CC_DECONST_PTR(v), __ATOMIC_RELAXED);
}

HMM_CK_FOR_INTS(HMM_CK_LOAD_STORE)
#undef HMM_CK_LOAD_STORE

#ifndef CK_PR_DISABLE_DOUBLE
CK_CC_INLINE static double ck_pr_md_load_double(const double *target)
{
    double r;
    __atomic_load(target, &r, __ATOMIC_RELAXED);
    return r;
}

CK_CC_INLINE static void ck_pr_md_store_double(double *target, double v)
{
    __atomic_store(target, &v, __ATOMIC_RELAXED);
}
#endif

CK_CC_INLINE static void ck_pr_stall(void)
{
    __asm__ __volatile__("" ::: "memory");
}

#define HMM_CK_FENCE(T)                                                        \
    CK_CC_INLINE static void ck_pr_fence_strict_##T(void)                      \
    {                                                                          \
        __sync_synchronize();                                                  \
    }

HMM_CK_FENCE(atomic)
HMM_CK_FENCE(atomic_atomic)
HMM_CK_FENCE(atomic_load)
HMM_CK_FENCE(atomic_store)
HMM_CK_FENCE(store_atomic)
HMM_CK_FENCE(load_atomic)
HMM_CK_FENCE(load)
HMM_CK_FENCE(load_load)
HMM_CK_FENCE(load_store)
HMM_CK_FENCE(store)
HMM_CK_FENCE(store_store)
HMM_CK_FENCE(store_load)
HMM_CK_FENCE(memory)
HMM_CK_FENCE(acquire)
HMM_CK_FENCE(release)
HMM_CK_FENCE(acqrel)
HMM_CK_FENCE(lock)
HMM_CK_FENCE(unlock)
#undef HMM_CK_FENCE

#define HMM_CK_CAS(S, M, T)                                                    \
    CK_CC_INLINE static bool ck_pr_cas_##S(M *target, T compare, T set)        \
    {                                                                          \
        return __atomic_compare_exchange_n((T *)target, &compare, set, false,  \
                                           __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); \
    }                                                                          \
    CK_CC_INLINE static bool ck_pr_cas_##S##_value(M *target, T compare,       \
                                                   T set, M *v)                \
    {                                                                          \
        bool ok = __atomic_compare_exchange_n((T *)target, &compare, set,      \
                                              false, __ATOMIC_SEQ_CST,         \
                                              __ATOMIC_SEQ_CST);               \
        *(T *)v = compare; /* the value found: compare itself on success */    \
        return ok;                                                             \
    }

CK_CC_INLINE static bool ck_pr_cas_ptr(void *target, void *compare, void *set)
{
    return __atomic_compare_exchange_n((void **)target, &compare, set, false, __ATOMIC_SEQ_CST,
                                       __ATOMIC_SEQ_CST);
}

CK_CC_INLINE static bool ck_pr_cas_ptr_value(void *target, void *compare, void *set, void *v)
{
    bool ok = __atomic_compare_exchange_n((void **)target, &compare, set, false, __ATOMIC_SEQ_CST,
                                          __ATOMIC_SEQ_CST);
    *(void **)v = compare;
    return ok;
}

HMM_CK_FOR_INTS(HMM_CK_CAS)
#undef HMM_CK_CAS

#define HMM_CK_FAA(S, M, T)                                                    \
    CK_CC_INLINE static T ck_pr_faa_##S(M *target, T d)                        \
    {                                                                          \
        return __atomic_fetch_add((T *)target, d, __ATOMIC_SEQ_CST);           \
    }

CK_CC_INLINE static void *ck_pr_faa_ptr(void *target, uintptr_t d)
{
    return (void *)__atomic_fetch_add((uintptr_t *)target, d, __ATOMIC_SEQ_CST);
}

HMM_CK_FOR_INTS(HMM_CK_FAA)
#undef HMM_CK_FAA

#define HMM_CK_BINARY(K, S, M, T)                                              \
    CK_CC_INLINE static void ck_pr_##K##_##S(M *target, T d)                   \
    {                                                                          \
        (void)__atomic_fetch_##K((T *)target, d, __ATOMIC_SEQ_CST);            \
    }

#define HMM_CK_BINARY_ALL(K)                                                   \
    CK_CC_INLINE static void ck_pr_##K##_ptr(void *target, uintptr_t d)        \
    {                                                                          \
        (void)__atomic_fetch_##K((uintptr_t *)target, d, __ATOMIC_SEQ_CST);    \
    }                                                                          \
    HMM_CK_BINARY(K, char, char, char)                                         \
    HMM_CK_BINARY(K, int, int, int)                                            \
    HMM_CK_BINARY(K, uint, unsigned int, unsigned int)                         \
    HMM_CK_BINARY(K, 64, uint64_t, uint64_t)                                   \
    HMM_CK_BINARY(K, 32, uint32_t, uint32_t)                                   \
    HMM_CK_BINARY(K, 16, uint16_t, uint16_t)                                   \
    HMM_CK_BINARY(K, 8, uint8_t, uint8_t)

HMM_CK_BINARY_ALL(add)
HMM_CK_BINARY_ALL(sub)
HMM_CK_BINARY_ALL(and)
HMM_CK_BINARY_ALL(or)
HMM_CK_BINARY_ALL(xor)
#undef HMM_CK_BINARY_ALL
#undef HMM_CK_BINARY

#define HMM_CK_UNARY(S, M, T)                                                  \
    CK_CC_INLINE static void ck_pr_inc_##S(M *target)                          \
    {                                                                          \
        ck_pr_add_##S(target, (T)1);                                           \
    }                                                                          \
    CK_CC_INLINE static void ck_pr_dec_##S(M *target)                          \
    {                                                                          \
        ck_pr_sub_##S(target, (T)1);                                           \
    }

HMM_CK_UNARY(ptr, void, uintptr_t)
HMM_CK_FOR_INTS(HMM_CK_UNARY)
#undef HMM_CK_UNARY
#undef HMM_CK_FOR_INTS

#endif /* HMM_CK_PR_TSAN_H */
