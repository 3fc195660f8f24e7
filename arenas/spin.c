/* The arena lock's slow side (the lock itself is inline in internal.h):
 * spin with pause while the holder is likely running, then yield, since it
 * may be in a system call through the region. */
#include "internal.h"

void spin_wait(struct spin *lock)
{
    for (unsigned spins = 0;; spins++) {
        if (__atomic_load_n(&lock->held, __ATOMIC_RELAXED) == 0 && spin_trylock(lock))
            return;
        if (spins < 128)
            ck_pr_stall();
        else
            os_yield();
    }
}
