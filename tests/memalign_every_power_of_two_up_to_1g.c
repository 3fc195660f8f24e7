/* Issue 9, point 1: every alignment is honoured, not only those up to the
 * 1 MiB granule.  For each power of two from 16 B to 1 GiB and sizes 1,
 * align - 1, align, align + 1 and 3 x align (leaving out those that would
 * reserve more than 4 GiB of address space), posix_memalign, aligned_alloc
 * and memalign return a pointer aligned to the request, whose first and
 * last requested bytes can be written, whose malloc_usable_size covers the
 * request, and which realloc can grow (keeping its first byte) and free can
 * take back.  An alignment above the granule costs no address space beyond
 * the block and a granule or two: the slack needed to place the mapping is
 * cut off, and 1 GiB alignment does not keep 2 GiB mapped.  Only two bytes of each block are touched: the test maps
 * gigabytes of address space, not of memory.  Uses the hmm_* names. */
#include "config.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "hmm.h"
#include "testutil.h"

#define GiB ((size_t)1 << 30)
#define MAX_ALIGN GiB
#define MAX_RESERVE (4 * GiB)
#define GRANULE ((size_t)1 << 20)
/* Beyond the block rounded to granules: its headers' granule and a leaf
 * or two of the chunk map. */
#define RESERVE_OVERHEAD (4 * GRANULE)

enum call { POSIX_MEMALIGN, ALIGNED_ALLOC, MEMALIGN, CALL_COUNT };
static const char *const call_names[CALL_COUNT] = { "posix_memalign", "aligned_alloc", "memalign" };

static void *allocate(enum call call, size_t alignment, size_t size)
{
    void *p = NULL;
    switch (call) {
    case POSIX_MEMALIGN:
        return hmm_posix_memalign(&p, alignment, size) == 0 ? p : NULL;
    case ALIGNED_ALLOC:
        return hmm_aligned_alloc(alignment, size);
    default:
        return hmm_memalign(alignment, size);
    }
}

/* Returns 1 on a failure, after saying which. */
static int try_one(enum call call, size_t alignment, size_t size)
{
    size_t before = address_space_bytes();
    unsigned char *p = allocate(call, alignment, size);
    size_t after = address_space_bytes(), reserved = after > before ? after - before : 0;
    const char *name = call_names[call];
    if (p == NULL) {
        printf("FAIL: %s(%zu, %zu) returned NULL\n", name, alignment, size);
        return 1;
    }
    if (reserved > ((size + GRANULE - 1) & ~(GRANULE - 1)) + RESERVE_OVERHEAD) {
        printf("FAIL: %s(%zu, %zu) keeps %zu bytes of address space\n", name, alignment, size, reserved);
        hmm_free(p);
        return 1;
    }
    if (!is_aligned(p, alignment)) {
        printf("FAIL: %s(%zu, %zu) = %p, aligned only to %zu\n", name, alignment, size, (void *)p,
               (size_t)1 << __builtin_ctzl((uintptr_t)p));
        hmm_free(p);
        return 1;
    }
    p[size - 1] = 0x5a;
    p[0] = 0xa5;
    size_t usable = hmm_malloc_usable_size(p);
    if (usable < size) {
        printf("FAIL: %s(%zu, %zu): usable size %zu\n", name, alignment, size, usable);
        hmm_free(p);
        return 1;
    }
    size_t grown = size < MAX_RESERVE / 8 ? 2 * size : size;
    unsigned char *q = hmm_realloc(p, grown);
    if (q == NULL || q[0] != 0xa5 || hmm_malloc_usable_size(q) < grown) {
        printf("FAIL: %s(%zu, %zu): realloc to %zu\n", name, alignment, size, grown);
        return 1;
    }
    hmm_free(q);
    return 0;
}

int main(void)
{
    int failures = 0, ran = 0;
    alarm(TEST_TIMEOUT);
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t alignment = 16; alignment <= MAX_ALIGN; alignment *= 2) {
        const size_t sizes[] = { 1, alignment - 1, alignment, alignment + 1, 3 * alignment };
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            if (sizes[i] + alignment > MAX_RESERVE)
                continue;
            for (int call = 0; call < CALL_COUNT; call++) {
                failures += try_one((enum call)call, alignment, sizes[i]);
                ran++;
            }
        }
    }
    CHECK(hmm_check() == 0, "hmm_check() after the aligned blocks");
    printf("%d of %d aligned allocations failed\n", failures, ran);
    return failures ? 1 : 0;
}
