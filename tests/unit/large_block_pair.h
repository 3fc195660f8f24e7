/* For the purge tests, which include arena.c: an arena whose decay never
 * comes (nothing purged unasked), locked, with two written 64 KiB blocks
 * (large: they keep purge records), one right above the other, and a
 * small block in use above them, where merges stop. */
#ifndef HMM_TEST_LARGE_BLOCK_PAIR_H
#define HMM_TEST_LARGE_BLOCK_PAIR_H

#define BLOCK_UNITS 4096u     /* 64 KiB */

static void large_block_pair(struct arena *a, struct block **low, struct block **high)
{
    hmm_tunables.decay_ms = 3600000;
    arena_init(a, 1);
    spin_lock(&a->lock);
    *low = alloc_locked(a, BLOCK_UNITS);
    *high = alloc_locked(a, BLOCK_UNITS);
    alloc_locked(a, 2 * SMALL_UNITS);
    memset(block_payload(*low), 0x5a, block_usable(*low));
    memset(block_payload(*high), 0x5a, block_usable(*high));
}

#endif
