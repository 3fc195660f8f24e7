/* sbrk and brk for the whole program.  glibc's sbrk reads a cached break
 * and then sets it, so two threads calling it at once (or one calling it
 * while hmm grows its heap) can be handed the same memory, and a lowering
 * can cut into hmm's heap.  The override build exports both (and glibc's
 * __sbrk and __brk), so that every movement of the break in the process
 * goes through the region's lock; a lowering that would cut into hmm's
 * heap fails with ENOMEM. */
#include "lib.h"

#include <unistd.h>

#if defined(HMM_OVERRIDE) && !defined(HMM_NO_OVERRIDE)
HMM_EXPORT void *sbrk(intptr_t increment)
{
    return region_sbrk(increment);
}

HMM_EXPORT int brk(void *addr)
{
    return region_brk(addr);
}

#define HMM_BRK_ALIAS(name) __attribute__((alias(#name), visibility("default"), used))
void *__sbrk(intptr_t increment) __THROW HMM_BRK_ALIAS(sbrk);
int __brk(void *addr) __THROW HMM_BRK_ALIAS(brk);
#endif
