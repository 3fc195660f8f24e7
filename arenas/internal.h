/* hmm engine: the one internal header.  It holds the structs every file of
 * the engine trusts, the static inline validators that check them, the
 * thread-cache fast path, and the cross-file API grouped by the file that
 * defines it.  lib/ includes this header; nothing here includes lib/.
 *
 * Atomics: read-modify-writes are ck_pr's; plain atomic loads and stores are
 * the compiler's __atomic builtins, because Concurrency Kit's gcc port does
 * them as volatile accesses, which ThreadSanitizer cannot tell from races. */
#ifndef HMM_INTERNAL_H
#define HMM_INTERNAL_H

#include <config.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <ck_pr.h>
#include <ck_stack.h>
#include <urcu/list.h>

#define HMM_LIKELY(x) __builtin_expect(!!(x), 1)
#define HMM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HMM_NOINLINE __attribute__((noinline))
#define HMM_COLD __attribute__((cold, noinline))

/* HMM_ASSERT(cond): in a debug build (./configure --enable-debug) a false
 * cond ends the program with one line, "hmm: assertion `cond' failed at
 * FILE:LINE (function)"; in other builds cond is never evaluated, only
 * type-checked.  cond must have no side effects.  The invariants worth
 * asserting are the validators at the end of this header. */
HMM_COLD __attribute__((noreturn)) void assert_failed(const char *cond, const char *file, int line,
                                                      const char *func);
#ifdef HMM_DEBUG
#define HMM_ASSERT(cond) (HMM_LIKELY(cond) ? (void)0 : assert_failed(#cond, __FILE__, __LINE__, __func__))
#else
#define HMM_ASSERT(cond) ((void)sizeof(!(cond)))
#endif

/* ---- sizes ------------------------------------------------------------ */

#define UNIT 16u                       /* block sizes count in 16-byte units */
#define UNIT_SHIFT 4
#define BLOCK_HEADER 16u
#define MIN_BLOCK_UNITS 2u             /* header + room for two bin links */
#define GRANULE_SHIFT 20               /* chunks are 1 MiB aligned and sized */
#define GRANULE ((size_t)1 << GRANULE_SHIFT)
#define CHUNK_HEADER 64u               /* struct chunk, rounded to a unit */
#define MAX_UNITS ((uint32_t)0xffffffffu)

/* ---- tunables: the engine's (tunables.c), filled by lib/ from HMM_OPTIONS
 * and mallopt ------------------------------------------------------------ */

enum check_level { CHECK_BASIC = 0, CHECK_FULL = 1 };

struct tunables {
    size_t trim_threshold;   /* free top of the region beyond which the break drops */
    size_t top_pad;          /* slack added to each growth and kept on trim */
    size_t mmap_threshold;   /* requests above it get their own mapping */
    size_t chunk_size;       /* smallest chunk an arena takes from the region */
    size_t cache_size;       /* bytes a thread cache may hold; 0 disables it */
    unsigned arena_max;      /* live arenas before threads share them */
    unsigned check_level;    /* enum check_level */
    unsigned decay_ms;       /* how long freed memory counts as recently used */
    bool zero_on_free;       /* freed blocks are zeroed before anyone reuses them */
    bool purge_vector;       /* a purge of many ranges may be one process_madvise */
};

#define ARENA_MAX_LIMIT 1024u

extern struct tunables hmm_tunables;
void tunables_init(void);   /* the defaults that depend on the machine */
void link_secret_init(void); /* the secret of mangled links, below */

/* Every free of an arena block goes to the slow path, which scrubs it
 * (arena_scrub): the free fast path matches no block. */
static inline bool frees_scrubbed(void)
{
    return hmm_tunables.check_level == CHECK_FULL || hmm_tunables.zero_on_free;
}

/* ---- blocks ------------------------------------------------------------
 * Every block is preceded by this 16-byte header.  Invariants:
 *  - tag comes first, TAG_LOW in every live header: an overflow from the
 *    block below that reaches the header changes it before anything else,
 *    so the free fast path (which trusts nothing but an exact key) sends
 *    that free to the slow path, which reports the corrupted header; and
 *    the free fast path checks that one byte of the next header
 *    (block_next_untouched) to catch an overflow of the block it frees;
 *  - key is tag, cls, state and units as one word: the free fast path
 *    compares it with its class's key in one load; state is below 0x800,
 *    so that key >> 28 is units times 16 and KEY_SLOW's bit is no state's;
 *  - units counts the header; the blocks of a chunk tile it exactly, from
 *    the first block at CHUNK_HEADER to the fence header at its end;
 *  - prev_units is the units of the block below (0 for the first block);
 *  - chunk_units is the distance from the chunk's start to this header;
 *  - state is one of the states below: with the tag, being unlikely in
 *    other memory, they mark a live header; a header that
 *    stops being one (merged into a neighbour) gets state 0;
 *  - no two FREE blocks are adjacent, and a block is in a bin iff FREE;
 *    a CACHED block on its arena's central list is free but not merged: its
 *    neighbours may be FREE;
 *  - cls is the block's size class, 0 when not cacheable; a block with a
 *    class has class_units(cls) units, or one more (block_class_valid);
 *  - state is changed atomically (the owner, remote freers and the checker
 *    may look at it concurrently), except by the fast paths' flip between
 *    in use and cached (block_flip_state); the other fields belong to the
 *    arena's lock holder, or to the thread that holds the block.  A walk
 *    under the lock that may meet a block another thread's cache holds
 *    reads its state first and its units only with an atomic load
 *    (block_units_seen), as the flip stores the whole key.
 */
#define TAG_LOW 0xb3u
enum block_state {
    BLOCK_FREE = 0x546,      /* in one of the arena's bins */
    BLOCK_INUSE = 0x5a1,     /* held by the program */
    BLOCK_CACHED = 0x5c5,    /* parked: in a thread cache, a chain handed back or a central list */
    BLOCK_REMOTE = 0x5d2,    /* on the owner's remote-free stack */
    BLOCK_FENCE = 0x5fe,     /* the zero-sized header closing a chunk */
    BLOCK_HUGE = 0x59b,      /* a block that is its own mapping */
};

struct block {
    union {
        struct {
            uint8_t tag;
            uint8_t cls;
            uint16_t state;
            uint32_t units;
        };
        uint64_t key;
    };
    uint32_t prev_units;
    uint32_t chunk_units;
};

_Static_assert(sizeof(struct block) == BLOCK_HEADER, "the header is 16 bytes");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "key_class reads the key's byte 1");

static inline uint64_t block_key(uint16_t state, uint8_t cls, uint32_t units)
{
    struct block header = { .tag = TAG_LOW, .cls = cls, .state = state, .units = units };
    return header.key;
}

/* The class in a key, from the word already loaded: no narrower load of
 * the 8 bytes the last fast path stored (a 2-byte one did not forward on
 * AMD Zen, and stalled the malloc-free pair by half).  Byte 1, so that it
 * is one instruction (`movzbl %ah`). */
static inline uintptr_t key_class(uint64_t key)
{
    return (uintptr_t)(key >> 8) & 0xffu;
}

/* The fast paths' state change, from one state to another, the rest of the
 * key intact: a read-modify-write as wide as the key the free fast path
 * loads, so that a malloc's store forwards to its free's load (a 2-byte
 * store does not, and the pair stalls for a dozen cycles).  A header that
 * was not in state from gets a state that is none.  Outside
 * ThreadSanitizer a plain xor, one instruction: only a double free races
 * with it, and that free's claim is what a race may lose. */
static inline void block_flip_state(struct block *b, uint16_t from, uint16_t to)
{
    uint64_t flip = block_key(from, 0, 0) ^ block_key(to, 0, 0);
#ifdef __SANITIZE_THREAD__
    __atomic_store_n(&b->key, __atomic_load_n(&b->key, __ATOMIC_RELAXED) ^ flip, __ATOMIC_RELAXED);
#else
    b->key ^= flip;
#endif
}

/* The header above b still starts with a tag: b's free fast path checks
 * it, as an overflow of b reaches it first.  units16 is b's units times 16,
 * the fast path's key >> 28 (the state, below 0x800, shifts out).  The
 * header above a block someone holds is stable: only its owner's free or
 * resize merges into it. */
static inline bool block_next_untouched(const struct block *b, uintptr_t units16)
{
    const uint8_t *tag = (const uint8_t *)b + units16;
#ifdef __SANITIZE_THREAD__
    return __atomic_load_n(tag, __ATOMIC_RELAXED) == TAG_LOW;
#else
    return *tag == TAG_LOW;
#endif
}

/* ---- mangled links ------------------------------------------------------
 * A pointer kept in freed memory (a free block's bin links, its purge
 * record's) is stored xor'ed with a key made of its own address and a
 * per-process secret, as glibc's safe-linking: a write after free then
 * decodes to an address that is not 16-byte aligned (15 times in 16, and
 * always for zeroes, as the secret's low four bits are LINK_SECRET_LOW),
 * which the reader catches before following it.  The address goes in
 * above the low byte, so that the key's low bits are the secret's. */
#define LINK_SECRET_LOW 0x8u
extern uintptr_t hmm_link_secret __attribute__((visibility("hidden")));

static inline uintptr_t link_key(const void *at)
{
    return hmm_link_secret ^ ((uintptr_t)at << 8);
}

static inline uintptr_t link_encode(const void *at, const void *target)
{
    return (uintptr_t)target ^ link_key(at);
}

static inline void *link_decode(const void *at, uintptr_t stored)
{
    return (void *)(stored ^ link_key(at));
}

/* Free blocks keep their bin links in the payload, mangled (link_encode). */
struct free_links {
    uintptr_t next_link;
    uintptr_t prev_link;
};

static inline struct block *block_of(const void *ptr)
{
    return (struct block *)((char *)ptr - BLOCK_HEADER);
}

static inline void *block_payload(struct block *b)
{
    return (char *)b + BLOCK_HEADER;
}

static inline struct block *block_next(struct block *b)
{
    return (struct block *)((char *)b + ((size_t)b->units << UNIT_SHIFT));
}

static inline struct block *block_prev(struct block *b)
{
    return (struct block *)((char *)b - ((size_t)b->prev_units << UNIT_SHIFT));
}

static inline struct free_links *block_links(struct block *b)
{
    return (struct free_links *)block_payload(b);
}

/* Relaxed atomics, as the compiler's builtins rather than ck_pr's inline
 * assembly, so that a store of an immediate is one instruction and
 * ThreadSanitizer still sees an atomic access. */
static inline uint16_t block_state(const struct block *b)
{
    return __atomic_load_n(&b->state, __ATOMIC_RELAXED);
}

static inline void block_set_state(struct block *b, uint16_t state)
{
    __atomic_store_n(&b->state, state, __ATOMIC_RELAXED);
}

/* A new header: tagged, of no class (arena.c's blocks, huge.c's). */
static inline void block_format(struct block *b, uint32_t units, uint32_t prev_units, uint32_t chunk_units,
                                uint16_t state)
{
    b->prev_units = prev_units;
    b->chunk_units = chunk_units;
    b->units = units;
    b->cls = 0;
    b->tag = TAG_LOW;
    block_set_state(b, state);
}

static inline bool block_tagged(const struct block *b)
{
    uint16_t state = block_state(b);
    bool named = state == BLOCK_FREE || state == BLOCK_INUSE || state == BLOCK_CACHED || state == BLOCK_REMOTE ||
                 state == BLOCK_FENCE || state == BLOCK_HUGE;
    return named && __atomic_load_n(&b->tag, __ATOMIC_RELAXED) == TAG_LOW;
}

/* b's units, read where another thread's cache may be flipping b's key
 * (block_flip_state stores all 8 bytes): the checker's walk. */
static inline uint32_t block_units_seen(const struct block *b)
{
    return __atomic_load_n(&b->units, __ATOMIC_RELAXED);
}

/* The block above b, for such a walk. */
static inline struct block *block_next_seen(const struct block *b)
{
    return (struct block *)((char *)b + ((size_t)block_units_seen(b) << UNIT_SHIFT));
}

/* A header an arena block may have: tagged, and a real size. */
static inline bool block_header_valid(const struct block *b)
{
    return block_tagged(b) && block_state(b) != BLOCK_FENCE && block_state(b) != BLOCK_HUGE &&
           block_units_seen(b) >= MIN_BLOCK_UNITS;
}

/* ---- chunks ------------------------------------------------------------
 * A chunk is a GRANULE-aligned run of whole granules.  It belongs to exactly
 * one owner: an arena (state CHUNK_ARENA, arena set, in the arena's list), the
 * region (CHUNK_FREE: in its index of free chunks, or off it while being
 * purged, CHUNK_PURGING; its node counts its pages not resident), or it is
 * the mapping of a huge block
 * (CHUNK_HUGE).  Region chunks tile their segment of the sbrk heap:
 * prev_size is the size of the chunk below (0 for the segment's first), and
 * CHUNK_SEGMENT_END marks the chunk whose end is the segment's end.
 */
enum chunk_state { CHUNK_FREE = 1, CHUNK_ARENA = 2, CHUNK_HUGE = 3 };
enum chunk_flags {
    CHUNK_MAPPED = 1,        /* mmap'ed, not part of the sbrk region */
    CHUNK_SEGMENT_END = 2,   /* last chunk of its region segment */
    CHUNK_PURGING = 8,       /* free, off the region's index while madvise runs */
};

/* What an arena uses its chunk for: set and read under the arena's lock
 * (the region changes flags of arena chunks under its own lock). */
enum chunk_use { CHUNK_LARGE_BLOCKS = 0, CHUNK_SMALL_BLOCKS = 1, CHUNK_DEDICATED = 2 };

#define CHUNK_MAGIC 0x68636b6e686d6d00ull

struct arena;

struct chunk {
    uint64_t magic;           /* CHUNK_MAGIC ^ address */
    size_t size;              /* bytes, a multiple of GRANULE */
    size_t prev_size;
    struct arena *arena;      /* owner while CHUNK_ARENA, else NULL */
    struct chunk *next;       /* arena's chunk list, or the region's purging list */
    struct chunk *prev;
    uint32_t state;
    uint32_t flags;
    union {
        size_t huge_size;     /* CHUNK_HUGE: the bytes the program asked for */
        uint64_t freed_ms;    /* CHUNK_FREE: when the region took it back */
        struct {
            uint32_t use;     /* CHUNK_ARENA: enum chunk_use, under the arena's lock */
            uint32_t slack_units;   /* CHUNK_DEDICATED: its block's units past what was asked */
        };
    };
};

_Static_assert(sizeof(struct chunk) <= CHUNK_HEADER, "chunk header too large");

static inline bool chunk_valid(const struct chunk *c)
{
    return c->magic == (CHUNK_MAGIC ^ (uintptr_t)c) && c->size >= GRANULE &&
           (c->size & (GRANULE - 1)) == 0 && ((uintptr_t)c & (GRANULE - 1)) == 0;
}

static inline struct block *chunk_first_block(struct chunk *c)
{
    return (struct block *)((char *)c + CHUNK_HEADER);
}

static inline struct block *chunk_fence(struct chunk *c)
{
    return (struct block *)((char *)c + c->size - BLOCK_HEADER);
}

static inline struct chunk *block_chunk(struct block *b)
{
    return (struct chunk *)((char *)b - ((size_t)b->chunk_units << UNIT_SHIFT));
}

/* ---- thread cache: classes -------------------------------------------- */

#define CLASS_SMALL_MAX 512u      /* 16-byte steps up to here */
#define CLASS_MAX 65536u          /* then four classes per doubling */
#define CLASS_COUNT 61u           /* class 0 means "not cacheable" */

static inline unsigned size_class(size_t size)
{
    if (HMM_LIKELY(size <= CLASS_SMALL_MAX))
        return (unsigned)((size + UNIT - 1) >> UNIT_SHIFT);
    /* The first doubling, on every malloc of 513 B..1 KiB: its four classes
     * are 128 bytes apart, found without the bit scan below, in one add and
     * one shift: 33 + (size - 513) / 128 with the 33 folded in. */
    if (size <= 2 * CLASS_SMALL_MAX)
        return (unsigned)((size + 33u * 128u - CLASS_SMALL_MAX - 1u) >> 7);
    if (size > CLASS_MAX)
        return 0;
    unsigned bit = 63u - (unsigned)__builtin_clzl(size - 1);
    return 33u + (bit - 9u) * 4u + (unsigned)(((size - 1) >> (bit - 2u)) & 3u);
}

/* The class of each size up to CLASS_TABLE_MAX, as size_class gives it,
 * for the malloc fast path: one load, no branch on the size.  Between the
 * two steps above, a random mix of sizes on both sides of 512 bytes
 * (larson's 8..1000) mispredicted that branch on every other malloc,
 * a sixth of larson's time; up to 2 KiB, as idle's 16 B..2 KiB (a 4 KiB
 * table made fast32 4 % slower).  Read-only and shared (classes.c), not a
 * per-thread copy: a thread waking after a sleep finds it warm, and its
 * load waits on no load of the thread's cache offset. */
#define CLASS_TABLE_MAX (4u * CLASS_SMALL_MAX)
extern const uint8_t hmm_class_of[CLASS_TABLE_MAX + 1] __attribute__((visibility("hidden")));

static inline unsigned size_class_lookup(size_t size)
{
    return HMM_LIKELY(size <= CLASS_TABLE_MAX) ? hmm_class_of[size] : size_class(size);
}

/* The bytes a block of class cls holds, for the cache's limits and the
 * central lists' walks: a table (classes.c), the inverse of size_class.
 * Computed, it branched at 512 bytes, which a mix of sizes mispredicted
 * on the slow paths (a quarter of idle's mispredicts). */
extern const uint32_t hmm_class_bytes[CLASS_COUNT] __attribute__((visibility("hidden")));

static inline size_t class_size(unsigned cls)
{
    HMM_ASSERT(cls < CLASS_COUNT);
    return hmm_class_bytes[cls];
}

/* The unit after each block's bytes that holds its canary: one with
 * check=full, none otherwise. */
static inline uint32_t canary_units(void)
{
    return hmm_tunables.check_level == CHECK_FULL ? 1u : 0u;
}

/* The units of a block of class cls cut exactly: the header, the class's
 * bytes and the canary (arena.c's units_for). */
static inline uint32_t class_units(unsigned cls)
{
    return (uint32_t)(class_size(cls) >> UNIT_SHIFT) + 1u + canary_units();
}

/* ---- scrubbing freed blocks (frees_scrubbed) ----------------------------
 * With check=full every block ends in a canary unit of CANARY_BYTE, and a
 * freed block's first JUNK_MAX bytes are junked: a use after free reads
 * junk where it most likely reads (a struct's fields), and freeing a
 * buffer does not cost a pass over all of it (the whole block, or its
 * first 4 KiB, cost check=full most of its time: every cache line of the
 * block written on each free).  zero_on_free zeroes all of it. */
#define CANARY_BYTE 0xca
#define JUNK_BYTE 0xdf
#define JUNK_MAX ((size_t)256)

HMM_COLD __attribute__((noreturn)) void canary_broken(struct block *b, const char *call);   /* arena.c */

static inline void canary_check(struct block *b, const char *call)
{
    uint64_t canary[2], intact = 0x0101010101010101ull * CANARY_BYTE;
    __builtin_memcpy(canary, (const char *)block_next(b) - UNIT, UNIT);
    if (HMM_UNLIKELY(canary[0] != intact || canary[1] != intact))
        canary_broken(b, call);
}

/* A freed block of usable bytes: its canary checked, its bytes scrubbed. */
static inline void block_scrub(struct block *b, size_t usable, const char *call)
{
    if (canary_units())
        canary_check(b, call);
    size_t junk = usable < JUNK_MAX ? usable : JUNK_MAX;
    /* Bounds hidden from the compiler, which inlines a memset it knows is
     * short as `rep stos`, whose start-up cost was half of check=full's
     * time on small blocks; libc's memset stores them in a few vector
     * moves. */
    __asm__("" : "+r"(junk), "+r"(usable));
    if (hmm_tunables.zero_on_free)
        __builtin_memset(block_payload(b), 0, usable);
    else
        __builtin_memset(block_payload(b), JUNK_BYTE, junk);
}

/* ---- the sbrk heap's extent -------------------------------------------
 * Defined and kept by region.c, under its lock: a pointer p has its header
 * inside the region's sbrk heap, so readable, iff p - hmm_heap_start <
 * hmm_heap_span.  hmm_heap_start is the lowest address of the heap plus a
 * header, set once at the first growth; until then it is 2^63 (no pointer
 * of a process) and hmm_heap_span 0.  The span is lowered before the break
 * drops and raised after it rises.  Everything outside (mmap'ed chunks,
 * huge blocks, wild pointers) takes the free slow path, which asks the
 * chunk map before it reads a header. */
extern uintptr_t hmm_heap_start __attribute__((visibility("hidden")));
extern uintptr_t hmm_heap_span __attribute__((visibility("hidden")));

#define HEAP_START_UNSET ((uintptr_t)1 << 63)

/* Outside ThreadSanitizer a plain load of an aligned word, read once (the
 * region stores it atomically), because the compiler folds it into the
 * subtract and the compare and folds no atomic load: two instructions
 * fewer on every free.  The two may be read in either order: the start
 * changes once, from 2^63, and no pointer of a process lies above it. */
static inline uintptr_t heap_bound(const uintptr_t *bound)
{
#ifdef __SANITIZE_THREAD__
    return __atomic_load_n(bound, __ATOMIC_RELAXED);
#else
    return *bound;
#endif
}

static inline bool heap_holds_header(const void *ptr)
{
    return (uintptr_t)ptr - heap_bound(&hmm_heap_start) < heap_bound(&hmm_heap_span);
}

/* ---- thread cache: the per-thread state --------------------------------
 * Only the owning thread touches its cache.  The bin of class cls
 * (heads[cls], rooms[cls], keys[cls], keys_long[cls]) holds blocks of
 * exactly class_size(cls) usable bytes (or a unit more, where a split left
 * too little to cut), in state BLOCK_CACHED, from any arena: they go back
 * to their own arenas, in batches, when the bin overflows or the thread
 * exits.  rooms[cls] is how many more blocks the bin may take (0 for
 * class 0 and when the cache is off): a malloc gives one back, a free
 * takes one first and goes to the slow path when that leaves it negative,
 * one instruction and a branch.  So a bound bin holds cache_limit(cls) -
 * rooms[cls] blocks, give or take the one a slow-path free is placing,
 * until the budget changes.  keys[cls] is the header key (struct block) of
 * an in-use block of the class cut exactly, keys_long[cls] of one a unit
 * longer; 0 for class 0, for every cls byte past the classes and in an
 * unbound cache: only a header of zeroes has key 0, and its own tag, which
 * the fast path's check of the header above then reads (units 0), is not
 * TAG_LOW.  While every free must take the slow path (check=full,
 * zero_on_free, sampling) the classes' keys carry KEY_SLOW, which no
 * header has: the slow path's push takes it off the header's key and makes
 * the fast path's compare (a header of KEY_SLOW alone then matches key 0,
 * and fails on its own tag as a header of zeroes does).  One array per field, so that the fast paths
 * address an entry as the cache's offset plus the class times 8 (the
 * header's cls byte, or the malloc's class), in one operand: keys and
 * keys_long have an entry for each of the 256 values of the byte, so a
 * forged class reads a key that fails, and heads and rooms are read only
 * for a class whose key matched, or the malloc's.  No two entries of a
 * class lie a multiple of 4 KiB apart: with the keys first, a free's load
 * of keys[cls] was taken for a reload of the last malloc's store to
 * heads[cls], 4096 bytes on (4K aliasing), and `fast32` ran 5 % slower
 * than with 32-byte bins. */
struct cache_entry {
    struct cache_entry *next;
};

#define CACHE_KEYS 256u           /* one for each value of a header's cls byte */

struct thread_cache {
    struct cache_entry *heads[CLASS_COUNT];
    intptr_t rooms[CLASS_COUNT];
    uint64_t keys[CACHE_KEYS];
    uint64_t keys_long[CACHE_KEYS];   /* the key of a block cut a unit longer */
    struct arena *arena;        /* the arena this thread is bound to */
    size_t budget;              /* bytes it may hold, see cache.c */
    uint32_t state;             /* enum cache_state */
    bool closed;                /* emptied with no room left since the last refill */
    uint32_t closing_count;     /* blocks on closing, fewer than CLOSING_BATCH */
    struct cache_entry *closing; /* own blocks freed while closed, to merge in one batch */
    uint8_t batch[CLASS_COUNT]; /* blocks the next refill of a class takes */
    uint8_t grown[CLASS_COUNT]; /* doublings of a class's CACHE_CLASS_MAX (cache_grow) */
    bool overflowed[CLASS_COUNT]; /* flushed since the class's last refill */
    size_t grown_bytes;         /* what the growth of classes added to their limits */
    size_t grown_large_bytes;   /* the same for classes grown from below CACHE_CLASS_MIN */
    bool refilled[CLASS_COUNT]; /* a malloc ever refilled the class's bin */
    /* sampling (hmm_sampling.on), see below */
    size_t sampled;             /* bytes counted for the malloc just chosen; 0: none */
    int64_t sample_bytes;       /* uncached mallocs: bytes before the next sample */
    uint32_t sample_pops[CLASS_COUNT];  /* mallocs of a class that pass, beyond its bin's list */
};

/* A key (struct block) and the key of the same block a unit longer differ
 * in this bit only. */
#define KEY_ONE_UNIT ((uint64_t)1 << 32)

/* A bit of state that no state has, set in the classes' keys while every
 * free must reach the slow path.  A state bit, not one of units, so that
 * a header that matches a key with it taken off still has key >> 28 its
 * units times 16: one forged to match class 0's key (KEY_SLOW alone) has
 * its own tag checked, not a byte gigabytes away. */
#define KEY_SLOW ((uint64_t)0x800 << 16)

#define CACHE_CLASS_MAX 128u      /* blocks one bin may hold, until it grows */
#define CACHE_CLASS_MIN 8u        /* blocks a large class's bin may grow to (cache_grow) */
#define CACHE_GROWTH_MAX 4u       /* doublings of it: 2,048 blocks */
#define CACHE_GROWTH_SHARE 16u    /* all growth together: at most budget / this */
#define CACHE_LARGE_GROWTH_BUDGETS 2u /* large classes' growth to CACHE_CLASS_MIN: this many budgets */
#define CACHE_TOTAL_SHARES 4u    /* all caches together: this many cache_size */
#define CONSUMER_SHARE 4u        /* a consumer's bin: this part of the limit (cache_make_room) */
#define CLOSING_BATCH 32u        /* blocks a closed cache merges back in one batch (closing_add) */

_Static_assert(CLASS_COUNT <= CACHE_KEYS, "every class has a key");
_Static_assert(offsetof(struct thread_cache, keys) % 4096 != 0 && offsetof(struct thread_cache, keys_long) % 4096 != 0 &&
                   (offsetof(struct thread_cache, keys) - offsetof(struct thread_cache, rooms)) % 4096 != 0 &&
                   (offsetof(struct thread_cache, keys_long) - offsetof(struct thread_cache, rooms)) % 4096 != 0,
               "no two entries of a class 4 KiB apart");
_Static_assert((BLOCK_FREE | BLOCK_INUSE | BLOCK_CACHED | BLOCK_REMOTE | BLOCK_FENCE | BLOCK_HUGE) <
                   0x800,
               "no state has KEY_SLOW's bit, nor the top four bits (a key >> 28 is its units times 16)");

enum cache_state { CACHE_UNBOUND = 0, CACHE_BOUND = 1, CACHE_EXITED = 2 };

extern __thread struct thread_cache hmm_thread_cache
    __attribute__((tls_model("initial-exec")));

/* The calling thread's cache is bound to an arena. */
static inline bool cache_bound(void)
{
    return hmm_thread_cache.state == CACHE_BOUND;
}

/* The calling thread never had an arena (not even one it gave up at exit). */
static inline bool cache_never_bound(void)
{
    return hmm_thread_cache.state == CACHE_UNBOUND;
}

/* The bytes the profiler should record for the malloc the calling thread
 * just made (0: it was not sampled). */
static inline size_t cache_sampled(void)
{
    return hmm_thread_cache.sampled;
}

/* Read the sampled bytes and clear them, so that each is recorded once. */
static inline size_t cache_take_sampled(void)
{
    size_t bytes = hmm_thread_cache.sampled;
    hmm_thread_cache.sampled = 0;
    return bytes;
}

static inline unsigned block_class(const struct block *b)
{
    return b->cls;
}

/* A header's class is 0 or one whose blocks have its units (or one more):
 * anything else was overwritten. */
static inline bool block_class_valid(const struct block *b)
{
    unsigned cls = block_class(b);
    if (cls >= CLASS_COUNT)
        return false;
    return cls == 0 || b->units - class_units(cls) <= 1u;
}

/* The fast paths reach the calling thread's cache through the %fs segment:
 * the initial-exec offset of the cache, one load from the GOT (the ABI's
 * `movq x@gottpoff(%rip)`), plus the class times 8 is the class's slot,
 * and its head and room lie at fixed distances from it
 * (`%fs:heads(%slot)`): no instruction is spent on the thread pointer.
 * The slot costs a `lea` on each path and pays for it: a bin's head is
 * stored by one malloc and loaded by the next, and the core hands such a
 * store to its load at once only when both address it as base plus
 * displacement.  With the class as an index (`%fs:heads(%base,%cls,8)`)
 * a loop of pops alone took 6.7 cycles a pop, with the slot 3.7 (Xeon);
 * hmm-bench simple and fast32 run in 0.77 of the time (callgrind: one
 * instruction more on each path).  A bin's head and room are read and
 * written in assembly, so that gcc cannot fold the slot back into an
 * index.  Under ThreadSanitizer (which does not see segment accesses) a
 * plain pointer and plain C. */
#if defined(__x86_64__) && defined(__SEG_FS) && !defined(__SANITIZE_THREAD__)
typedef struct thread_cache __seg_fs fast_cache;

static inline fast_cache *fast_cache_get(void)
{
    uintptr_t offset;
    __asm__("movq hmm_thread_cache@gottpoff(%%rip), %0" : "=r"(offset));
    return (fast_cache *)offset;
}

/* Class cls's slot, in a `lea` of its own (gcc would spend a shift and
 * an add on it, or fold it back into an index). */
static inline uintptr_t fast_slot(fast_cache *cache, uintptr_t cls)
{
    uintptr_t slot;
    __asm__("leaq (%[cache],%[cls],8), %[slot]" : [slot] "=r"(slot) : [cache] "r"(cache), [cls] "r"(cls));
    return slot;
}

#define FAST_AT(field) "%%fs:%c[" #field "](%[slot])"
#define FAST_OPERANDS(cache, cls)                                                                    \
    [slot] "r"(fast_slot(cache, cls)), [heads] "i"(offsetof(struct thread_cache, heads)),          \
        [rooms] "i"(offsetof(struct thread_cache, rooms))

static inline struct cache_entry *fast_head(fast_cache *cache, uintptr_t cls)
{
    struct cache_entry *head;
    __asm__ volatile("movq " FAST_AT(heads) ", %[head]" : [head] "=r"(head) : FAST_OPERANDS(cache, cls) : "memory");
    return head;
}

/* The pop's bookkeeping: next heads the bin, which has room for one more. */
static inline void fast_pop(fast_cache *cache, uintptr_t cls, struct cache_entry *next)
{
    __asm__ volatile("movq %[next], " FAST_AT(heads) "\n\taddq $1, " FAST_AT(rooms)
                     :
                     : [next] "r"(next), FAST_OPERANDS(cache, cls)
                     : "memory");
}

/* Take one of the bin's room: true when that left none (negative). */
static inline bool fast_room_take(fast_cache *cache, uintptr_t cls)
{
    bool full;
    __asm__ volatile("subq $1, " FAST_AT(rooms) : "=@ccs"(full) : FAST_OPERANDS(cache, cls) : "memory");
    return full;
}

static inline void fast_push(fast_cache *cache, uintptr_t cls, struct cache_entry *entry)
{
    struct cache_entry *head;
    __asm__ volatile("movq " FAST_AT(heads) ", %[head]\n\tmovq %[head], (%[entry])\n\tmovq %[entry], " FAST_AT(heads)
                     : [head] "=&r"(head)
                     : [entry] "r"(entry), FAST_OPERANDS(cache, cls)
                     : "memory");
}
#else
typedef struct thread_cache fast_cache;

static inline fast_cache *fast_cache_get(void)
{
    return &hmm_thread_cache;
}

static inline struct cache_entry *fast_head(fast_cache *cache, uintptr_t cls)
{
    return cache->heads[cls];
}

static inline void fast_pop(fast_cache *cache, uintptr_t cls, struct cache_entry *next)
{
    cache->heads[cls] = next;
    cache->rooms[cls]++;
}

static inline bool fast_room_take(fast_cache *cache, uintptr_t cls)
{
    return --cache->rooms[cls] < 0;
}

static inline void fast_push(fast_cache *cache, uintptr_t cls, struct cache_entry *entry)
{
    entry->next = cache->heads[cls];
    cache->heads[cls] = entry;
}
#endif

/* The malloc fast path: a pop.  It pops only a head in the sbrk heap: an
 * empty bin (NULL), a bin of blocks in mapped chunks and a link that a
 * write after free overwrote with anything outside the heap all fail the
 * one range check, which took the place of the test for NULL (two
 * instructions more), and the slow path tells them apart (cache_fill): the
 * junk ends in one line, not in a fault at some later malloc.  The next
 * block's line is fetched ahead (one instruction, a no-op for NULL): a bin
 * refilled with a chain another thread handed back holds blocks last
 * written on another core, and each pop waited for its transfer
 * (hmm-bench prodcon, whose producer refills from its consumer's chains,
 * 1.5-1.8 x faster with it; fastcycle, whose bins its own frees fill, 0-5 %
 * slower). */
static inline void *cache_pop(size_t size)
{
    fast_cache *cache = fast_cache_get();
    uintptr_t cls = size_class_lookup(size);
    struct cache_entry *entry = fast_head(cache, cls);
    if (HMM_UNLIKELY(!heap_holds_header(entry)))
        return NULL;
    struct cache_entry *next = entry->next;
    __builtin_prefetch(next);
    fast_pop(cache, cls, next);
    block_flip_state(block_of(entry), BLOCK_CACHED, BLOCK_INUSE);
    return entry;
}

/* Park a block the program held in its bin, whose room was taken. */
static inline void cache_put(struct thread_cache *cache, struct block *b)
{
    struct cache_entry *entry = block_payload(b);
    entry->next = cache->heads[b->cls];
    cache->heads[b->cls] = entry;
    block_set_state(b, BLOCK_CACHED);
}

/* Class cls's keys vouch for the block at b, whose header holds key (want:
 * key as the keys hold it): cls is its class, cut exactly or a unit
 * longer, with the header above untouched.  cls may be any byte: only the
 * keys are read. */
static inline __attribute__((always_inline)) bool cache_bin_vouches(const fast_cache *cache, uintptr_t cls,
                                                                    const struct block *b, uint64_t key,
                                                                    uint64_t want)
{
    if (HMM_UNLIKELY(want != cache->keys[cls]) && want != cache->keys_long[cls])
        return false;
    return HMM_LIKELY(block_next_untouched(b, (uintptr_t)(key >> 28)));
}

void cache_overflow(void *ptr);   /* cache.c: the free fast path's full bin */

/* Every free push into the thread cache, in one place so that its paths
 * cannot drift apart.  It checks that the pointer's header lies in the
 * sbrk heap; that its key is an in-use block's of the class its cls byte
 * names, cut exactly or a unit longer (a double free, an overwritten
 * header or a class forged out of range or to another class does not
 * match); that a sized free's size fits (a block pushed has no canary: its
 * usable bytes are its units less the header); that the header above is
 * untouched (block_next_untouched); and that the bin has room, which it
 * takes.  The fast path (admit NULL) hands a block whose bin is full to
 * cache_overflow (a jump: the pair pays nothing for it), which takes it
 * either way.  It compares the key with the class's keys,
 * which carry KEY_SLOW while every free must reach the slow path
 * (check=full, zero_on_free, sampling): that path (cache_push_slow) makes
 * the same compare with KEY_SLOW added to the header's key, gives the room
 * back when it fails, and asks admit(b, call) (the sampling count, the
 * scrub) before the push.  The relaxed load of the key races only with a
 * double free's claim. */
static inline __attribute__((always_inline)) bool cache_push_block(void *ptr, size_t size,
                                                                   bool (*admit)(struct block *b, const char *call),
                                                                   const char *call)
{
    bool slow = admit != NULL;
    if (HMM_UNLIKELY(!heap_holds_header(ptr)))
        return false;
    struct block *b = block_of(ptr);
    uint64_t key = __atomic_load_n(&b->key, __ATOMIC_RELAXED);
    fast_cache *cache = fast_cache_get();
    uintptr_t cls = key_class(key);
    if (HMM_UNLIKELY(!cache_bin_vouches(cache, cls, b, key, slow ? key ^ KEY_SLOW : key)))
        return false;
    if (HMM_UNLIKELY(size > (uintptr_t)(key >> 28) - BLOCK_HEADER))
        return false;
    bool full = fast_room_take(cache, cls);
    if (HMM_UNLIKELY(full) && !slow) {
        cache_overflow(ptr);
        return true;
    }
    if (HMM_UNLIKELY(full) || (slow && !admit(b, call))) {
        cache->rooms[cls]++;
        return false;
    }
    fast_push(cache, cls, ptr);
    block_flip_state(b, BLOCK_INUSE, BLOCK_CACHED);
    return true;
}

/* The free fast path: a push, or false for the slow path.  A sized free
 * (C++ sized delete) says the block holds size bytes: more than its usable
 * bytes is left to the slow path, which reports it.  cache_push's size 0
 * folds away. */
static inline bool cache_push_sized(void *ptr, size_t size)
{
    return cache_push_block(ptr, size, NULL, NULL);
}

static inline bool cache_push(void *ptr)
{
    return cache_push_sized(ptr, 0);
}

/* malloc_usable_size and realloc's no-op of a block in use of a cached
 * class, without the chunk lookup: the free fast path's checks (the keys
 * of the class its cls byte names, the header above untouched), for the
 * usable bytes of its units less the header; 0 (an unbound cache's keys,
 * a header of zeroes) for anything else, which heap_block then vets. */
static inline size_t cache_usable(const void *ptr)
{
    if (!heap_holds_header(ptr))
        return 0;
    const struct block *b = block_of(ptr);
    uint64_t key = __atomic_load_n(&b->key, __ATOMIC_RELAXED);
    if (key == 0 || !cache_bin_vouches(fast_cache_get(), key_class(key), b, key, key))
        return 0;
    return (size_t)(key >> 28) - BLOCK_HEADER;
}

/* ---- sampling: the heap profiler's view of the engine -------------------
 * lib/ turns it on (prof=true) before any thread binds.  The malloc fast
 * path keeps no count, so with sampling on a bin's list holds only mallocs
 * counted ahead: a block is charged to its class's sample_pops when it
 * enters the list and refunded when it leaves other than by a pop, and the
 * free fast path is off (every class's key has KEY_SLOW) so that no free adds to a list
 * unseen.  A class's countdown is an exponential draw of bytes divided by
 * the class's size, so each class is sampled as a Poisson process over its
 * bytes; uncached sizes count bytes in sample_bytes.  A chosen block leaves
 * with class 0, set in `sampled` for lib/ to record; heap_free and
 * heap_realloc report every block of class 0 to `forget`. */
struct sampling {
    bool on;
    uint64_t (*interval)(void);         /* bytes to the next sample, random */
    void (*forget)(void *ptr);          /* a block of class 0 is freed or resized */
};

extern struct sampling hmm_sampling;

/* ---- the arena lock ------------------------------------------------------
 * Held briefly by the owner's slow path, and by remote drainers, walkers
 * and fork.  Test-and-test-and-set: one atomic exchange to take it and a
 * plain release store to drop it (a pthread mutex pays a second atomic),
 * spinning with pause and then yielding, since its holder may be in a
 * system call through the region.  Not fair, and so not a ticket lock: with
 * hundreds of threads on two cores, handing the lock to one particular
 * descheduled waiter stalls everyone.  __atomic builtins, so that
 * ThreadSanitizer sees the acquire and release.  Zero is unlocked. */
struct spin {
    int held;
};

void spin_wait(struct spin *lock);      /* spin.c */

static inline bool spin_trylock(struct spin *lock)
{
    return !__atomic_exchange_n(&lock->held, 1, __ATOMIC_ACQUIRE);
}

static inline void spin_lock(struct spin *lock)
{
    if (HMM_UNLIKELY(!spin_trylock(lock)))
        spin_wait(lock);
}

static inline void spin_unlock(struct spin *lock)
{
    __atomic_store_n(&lock->held, 0, __ATOMIC_RELEASE);
}

/* A counter the lock holder updates and anyone may read without the lock
 * (statistics): a plain read by its only writer, an atomic store. */
static inline void counter_add(size_t *counter, size_t delta)
{
    __atomic_store_n(counter, *counter + delta, __ATOMIC_RELAXED);
}

static inline void counter_sub(size_t *counter, size_t delta)
{
    __atomic_store_n(counter, *counter - delta, __ATOMIC_RELAXED);
}

static inline size_t counter_read(const size_t *counter)
{
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

/* ---- arenas ------------------------------------------------------------ */

#define BIN_EXACT 64u            /* bins 2..64 hold blocks of exactly that many units; above, four bins per doubling */
#define BIN_COUNT 169u
#define BIN_WORDS ((BIN_COUNT + 63u) / 64u)
#define SMALL_UNITS 66u          /* blocks of at most this many units (1 KiB and a canary) are small */

/* Small blocks and the rest never share a chunk: scattered long-lived small
 * blocks would otherwise cut every large free block into pieces too short
 * for the next large request, and the arena would grow without bound under
 * steady churn.  An arena keeps one set of bins for each use a chunk may
 * have whose blocks are binned (a dedicated chunk's never are), indexed by
 * the use.  bins[i] lists FREE blocks of bin_index(units) == i, and bit i
 * of bitmap is set iff bins[i] is not empty. */
#define BIN_SETS 2u              /* CHUNK_LARGE_BLOCKS, CHUNK_SMALL_BLOCKS */
_Static_assert(CHUNK_LARGE_BLOCKS < BIN_SETS && CHUNK_SMALL_BLOCKS < BIN_SETS && CHUNK_DEDICATED >= BIN_SETS,
               "the binned uses index the bin sets");

struct bin_set {
    uint64_t bitmap[BIN_WORDS];
    struct block *bins[BIN_COUNT];
};

/* Between the thread caches and the bins, an arena keeps freed blocks of
 * each cache class whole, on a central list, so that a cache's
 * flush and its next refill cost a splice (a walk to a cut inside a run, or none
 * when a refill takes whole runs) instead of a merge and a split.
 * central[cls] lists count blocks of class cls, each in state
 * BLOCK_CACHED, as in a bin, with exactly class_units(cls) units (a block a unit
 * longer is merged instead, so that a walk need not sum units), in one of
 * the arena's chunks, not merged with its neighbours; count is at most limit (set with the arena; 0 for class
 * 0).  They count as free bytes, not used ones; a
 * batch adds to them only while they hold less than an eighth of the live
 * bytes (or 1 MiB).  They are merged into the bins (central_flush) before
 * the arena takes a new chunk, when its free memory passes its live bytes
 * or it is being emptied, when a cache is flushed whole, and by
 * malloc_trim and the maintenance thread. */
#define CENTRAL_RUNS 4u   /* runs a central list remembers, the top ones */

/* A run of a central list: the blocks one push added (a flush's run, and
 * the single blocks pushed on top of it since), count of them from first
 * down to last. */
struct central_run {
    struct cache_entry *first, *last;
    uint32_t count;
};

/* runs[0..nruns) describe the top of the list, runs[nruns - 1] first: the
 * top runs[nruns - 1].count blocks end at its last, the next run follows;
 * together they count at most count blocks, and the blocks below them are
 * not described.  A refill takes whole runs and walks to no cut inside
 * one, unless a run is much longer than it wants; the run below gives the
 * list's new head without a load of the cut's cold line. */
struct central_list {
    struct cache_entry *head;
    uint32_t count;
    uint32_t limit;
    uint32_t nruns;
    struct central_run runs[CENTRAL_RUNS];
};

enum arena_state { ARENA_LIVE = 1, ARENA_ORPHANED = 2, ARENA_RETIRED = 3 };

/* The chains a consumer gives back are cut where its frees stop being a
 * run of neighbours, and the owner's next refill takes the chain that goes
 * on from the last one's end: the owner mallocs its blocks in the order
 * it mallocked them before, and two consumers splitting its runs cannot
 * scatter them (hmm-bench xmalloc -t 2: a producer's consecutive mallocs
 * fell from 88 % neighbours to 2 %, and each waited for a line).  An
 * open-addressed table finds a queued chain by its first block: chain
 * is its first block (NULL: the slot is empty), pred the chain before it
 * in its class's queue (NULL: it heads the queue). */
#define HANDOFF_SLOT_BITS 9u
#define HANDOFF_SLOTS (1u << HANDOFF_SLOT_BITS)
#define HANDOFF_INDEXED (HANDOFF_SLOTS - HANDOFF_SLOTS / 4u)   /* a free slot ends every probe */
#define HANDOFF_RUN_MIN 8u   /* neighbours before a gap in a consumer's frees cuts its chain */

struct handoff;
struct handoff_slot {
    struct handoff *chain;
    struct handoff *pred;
};

/* An arena.  Invariants: every chunk in `chunks` has arena == this arena;
 * sets[kind] holds the FREE blocks of the chunks of that kind, and no block
 * of a dedicated chunk; central[cls] holds blocks of class cls that no cache holds,
 * central_bytes their sizes; used_bytes is the sum of the sizes of the
 * blocks neither FREE nor on a central list (in use, cached or pending on
 * the remote stack); free_bytes the sum of the FREE and central ones.  All of it
 * is guarded by lock except `remote` (lock-free, any thread pushes, a lock
 * holder pops all) and the registry fields (registry lock). */
struct arena {
    struct spin lock;
    struct chunk *chunks;
    struct chunk *spare;          /* one wholly free chunk kept back */
    /* counters: changed under the lock with counter_add, read by anyone */
    size_t chunk_count;
    size_t chunk_bytes;
    size_t used_bytes;
    size_t used_blocks;
    size_t free_bytes;
    size_t central_bytes;         /* of free_bytes, on the central lists */
    size_t slack_bytes;           /* of used_bytes, the dedicated blocks' slack past what they asked */
    size_t purged_bytes;          /* of free_bytes, madvised away */
    size_t purged_total;          /* every byte purged so far */
    size_t purge_mark;            /* free bytes left resident by the last purge */
    uint64_t purge_clock;         /* ms, when frees last looked for aged free pages */
    struct block *dirty_newest;   /* free blocks with whole pages not purged */
    struct block *dirty_oldest;
    size_t mallocs;
    size_t frees;
    size_t remote_frees;          /* blocks drained from the remote stack */
    struct bin_set sets[BIN_SETS];
    struct central_list central[CLASS_COUNT];
    /* chains taken off a class's stack of handoffs (below), oldest first,
     * linked through next_chain from handoff_queue to handoff_queue_last */
    struct handoff *handoff_queue[CLASS_COUNT];
    struct handoff *handoff_queue_last[CLASS_COUNT];
    /* the follow of the chain a refill of the class took last: the first
     * block of the chain to take next, when one is queued (0: none) */
    uintptr_t handoff_follow[CLASS_COUNT];
    /* queued chains by their first block, for a refill to find the one
     * that follows (struct handoff_slot); at most HANDOFF_INDEXED of them,
     * the others are taken oldest first only */
    unsigned handoff_indexed;
    struct handoff_slot handoff_index[HANDOFF_SLOTS];
    /* registry: guarded by the registry lock */
    unsigned id;
    unsigned threads;
    unsigned state;               /* enum arena_state */
    struct arena *retired_next;
    struct cds_list_head node;    /* the registry's RCU list */
    ck_stack_t remote __attribute__((aligned(64)));
    unsigned remote_pending;      /* pushes since the last drain (ck_pr) */
    unsigned pins;                /* threads giving blocks back from outside (atomic): see arena_pinned */
    /* Whole bins other threads' caches gave back, one stack of chains per
     * class (struct handoff): lock-free, any thread pushes a chain, a
     * holder of the lock takes the whole stack onto handoff_queue;
     * chained_bytes is what the stacks and queues hold. */
    size_t chained_bytes;
    struct handoff *handoffs[CLASS_COUNT];
};

/* The first block of a chain of cached blocks of one class that another
 * thread's cache gave back to their arena whole, still BLOCK_CACHED and
 * linked through their payloads as a bin is: the owner's refill hangs it
 * on its bin as it is, without a walk.  Its payload also holds the next
 * chain of the stack or queue, the chain's length and its follow, so only
 * classes of 32 bytes and more travel this way.  follow is the payload
 * address of the block just past the chain's last one, away from the one
 * before it, when the chain ends in a run of neighbours (0 otherwise): a
 * key, never dereferenced. */
struct handoff {
    struct cache_entry entry;
    struct handoff *next_chain;
    size_t count;
    uintptr_t follow;
};

#define HANDOFF_MIN_CLASS 2u
_Static_assert(sizeof(struct handoff) == 32, "a handoff's fields fill the 32 bytes of class HANDOFF_MIN_CLASS");

/* ---- cross-file API, by defining file --------------------------------- */

/* os.c: the only file that makes system calls. */
void *os_brk(void *addr);               /* the break after; addr on success; NULL reads */
void *os_map(size_t size);              /* NULL on failure */
void *os_map_aligned(size_t size, size_t alignment);
void *os_map_placed(size_t size, size_t alignment, size_t offset);   /* addr + offset aligned */
void *os_map_node(size_t size);         /* the chunk map's nodes; NULL on failure */
void os_unmap(void *addr, size_t size);
bool os_remap_onto(void *addr, size_t old_size, size_t new_size, void *target);
bool os_remap_in_place(void *addr, size_t old_size, size_t new_size);
/* Pages to drop (os_purge_ranges, PURGE_BATCH at a time; in one call if
 * vector allows it and the kernel takes it); size 0 after a purge: the
 * kernel refused them. */
#define PURGE_BATCH 64u
struct os_range {
    void *addr;
    size_t size;
};
size_t os_purge_ranges(struct os_range *ranges, unsigned count, bool vector);   /* the bytes dropped */
uint64_t os_now_ms(void);
uint64_t os_random(void);
size_t os_page_size(void);
unsigned os_cpu_count(void);
void os_write(int fd, const char *buf, size_t len);
int os_open_write(const char *path);    /* create or truncate, close-on-exec; -1 on failure */
int os_open_read(const char *path);     /* -1 on failure */
bool os_pipe(int fds[2]);               /* non-blocking, close-on-exec */
size_t os_read(int fd, void *buf, size_t len);   /* 0: nothing read */
bool os_wait_readable(int fd, unsigned ms);
void os_close(int fd);
bool os_catch_signal(int sig, void (*handler)(int));
int os_create(const char *path);        /* -1 on failure */
bool os_rename(const char *from, const char *to);
void os_unlink(const char *path);
int os_pid(void);
void os_yield(void);
int os_thread_start(void *(*main)(void *), const char *name);   /* detached; 0 or an errno */
void *os_library_symbol(const char *library, const char *symbol);   /* dlopen'ed; NULL if none */
bool os_library_text(const void *code, uintptr_t *start, uintptr_t *end);   /* of a shared library */
__attribute__((noreturn)) void os_abort(void);
#ifdef HMM_TEST_BUILD
/* Tests fail the calls of a kind after `after` more have succeeded, count
 * of them; read how many calls of a kind were made (failed or not); and
 * how many bytes purges asked the kernel to drop. */
enum os_call { OS_SBRK, OS_MMAP, OS_MREMAP, OS_MADVISE, OS_MAP_NODE, OS_CALL_COUNT };
void hmm_test_os_fail(enum os_call call, int after, int count);
unsigned hmm_test_os_calls(enum os_call call);
size_t hmm_test_os_purged_bytes(void);
/* The system calls purges made (a vector of ranges or one range each);
 * whether the kernel took (or was not asked for) a vector so far. */
unsigned hmm_test_os_purge_calls(void);
bool hmm_test_os_purge_vectored(void);
#endif

/* map.c: which chunk covers an address. */
bool map_prepare(const void *addr, size_t size);
bool map_set(struct chunk *chunk);
void map_clear(struct chunk *chunk);
struct chunk *map_lookup(const void *addr);

/* A link a walk of free or cached blocks is about to follow leads to a
 * header it can read: aligned, in the sbrk heap or a mapped chunk.  A
 * write after free leaves anything in a link. */
static inline bool link_readable(const void *payload)
{
    return ((uintptr_t)payload & (UNIT - 1)) == 0 &&
           (heap_holds_header(payload) || map_lookup(block_of(payload)) != NULL);
}

/* The chunk b's header names (chunk_units), if reading it cannot fault:
 * granule-aligned and in the sbrk heap or a mapped chunk.  No fast path
 * reads chunk_units or prev_units (the header's last 8 bytes), so an
 * underflow of a cached block, or an overflow of the one below, reaches
 * the slow paths: those that only look up a cached block's arena use
 * this, and every merge vets the header whole first (arena.c). */
static inline struct chunk *block_chunk_readable(struct block *b)
{
    struct chunk *c = block_chunk(b);
    if (((uintptr_t)c & (GRANULE - 1)) != 0 || (!heap_holds_header(c) && map_lookup(c) != c))
        return NULL;
    return c;
}

/* region.c: the central sbrk region, and every movement of the break. */
struct region_stats {
    size_t region_bytes, free_bytes, purged_bytes, mapped_bytes, returned_bytes;
    uintptr_t brk;
    uint64_t index_visits;     /* nodes of the free index looked at, ever: its cost */
};
struct chunk *region_take(size_t size, struct arena *owner);
struct chunk *region_take_purged(size_t size, struct arena *owner, bool *purged);   /* none resident */
void region_give(struct chunk *chunk);
void region_give_used(struct chunk *chunk, size_t used, size_t purged);
bool region_grow_chunk(struct chunk *chunk, size_t size);
size_t region_trim(size_t pad);
void region_stats(struct region_stats *out);
int region_check(void);
void region_lock(void);
void region_unlock(void);
void region_child_reset(void);
void *region_sbrk(intptr_t delta);      /* sbrk and brk for the whole program */
int region_brk(void *addr);
/* The arenas' way to the kernel (calls flow arena -> region -> os): the
 * pages inside their free blocks, and the clock their decay runs on. */
size_t region_page_size(void);
size_t region_purge_ranges(struct os_range *ranges, unsigned count);   /* os_purge_ranges */
void region_threads_started(void);      /* the registry: a second thread bound */
uint64_t region_now_ms(void);

/* arena.c: blocks in chunks, bins, split and coalesce, remote frees. */
void arena_init(struct arena *a, unsigned id);
void *arena_malloc(struct arena *a, size_t size);
void *arena_memalign(struct arena *a, size_t alignment, size_t size);
void arena_free(struct arena *a, struct block *b);
void arena_scrub(struct block *b, const char *call);
size_t arena_fill(struct arena *a, unsigned cls, struct cache_entry **list, size_t want, size_t fresh);
size_t arena_free_cached(struct arena *mine, struct cache_entry **list, size_t count);
void arena_free_remote(struct arena *a, struct block *b);
void arena_merge_central(struct arena *a);
void arena_handoffs_stop(void);        /* chains of cached blocks take the remote stack */
bool arena_resize(struct arena *a, struct block *b, size_t size);
void arena_hold(struct block *b, size_t size);
void arena_drain_remote(struct arena *a);
size_t arena_release(struct arena *a, bool keep_spare);
size_t arena_purge(struct arena *a);
bool arena_empty(struct arena *a);
bool arena_sparse(const struct arena *a);
bool arena_pinned(const struct arena *a);
size_t arena_held_bytes(void);
unsigned arena_threads(void);           /* threads bound to an arena, all arenas together */
extern unsigned arena_threads_bound;    /* kept by the registry, under its lock */
/* An orphan (no thread bound) whose last block came back through its
 * remote stack is handed to emptied, which the registry sets before it
 * creates the first arena: the arena knows nothing of the registry. */
void arena_on_orphan_emptied(void (*emptied)(struct arena *a));
size_t block_usable(struct block *b);
bool block_slack_intact(struct block *b);
struct arena *cached_block_arena(struct block *b);   /* the arena of a block leaving a cache */
HMM_COLD __attribute__((noreturn)) void cached_link_broken(const struct cache_entry *entry);
bool arena_needs_dedicated(size_t size);
int arena_check(struct arena *a);

/* The successor of a cached block on a list (a bin, a central list, a
 * chain handed back), before a walk reads it: a block the list holds as
 * cached, or the end.  Otherwise entry, which the program freed, was
 * written after its free. */
static inline bool cached_link_ok(const void *next)
{
    return next == NULL || (link_readable(next) && block_state(block_of(next)) == BLOCK_CACHED);
}

/* A link kept in the payload of the cached block at holder (its next
 * block, or the next chain of a chain's first block), vetted. */
static inline void *cached_link(void *next, const struct cache_entry *holder)
{
    if (HMM_UNLIKELY(!cached_link_ok(next)))
        cached_link_broken(holder);
    return next;
}

static inline struct cache_entry *cached_next(const struct cache_entry *entry)
{
    return cached_link(entry->next, entry);
}

/* cache.c: the slow side of the thread cache. */
uint32_t cache_limit(const struct thread_cache *cache, unsigned cls);
void cache_bind(struct thread_cache *cache, struct arena *a);
void *cache_fill(struct thread_cache *cache, size_t size);
bool cache_make_room(struct thread_cache *cache, struct block *b);
void cache_flush(struct thread_cache *cache);
void cache_release(struct thread_cache *cache, struct block *b);
bool cache_push_slow(void *ptr, const char *call);
void cache_sampling_start(uint64_t (*interval)(void), void (*forget)(void *ptr));
void *sample_uncached(void *ptr, size_t size);

/* heap.c: the engine's front door for lib/: pointers checked, then handed
 * to the cache, the arena, a remote arena or the huge blocks.  The caller
 * has bound the thread (hmm_thread_cache.arena set) before a malloc. */
void *heap_malloc(size_t size);
void *heap_memalign(size_t alignment, size_t size);
void heap_free(void *ptr, const char *call);
void *heap_realloc(void *ptr, size_t size);
size_t heap_usable(void *ptr, const char *call);
struct block *heap_block(void *ptr, const char *call, struct chunk **chunk_out);

/* A block heap_malloc just returned is already zero: a huge block is always
 * a fresh mapping.  Asked of the block, not of mmap_threshold, which
 * mallopt may change meanwhile. */
static inline bool heap_fresh_mapping(void *ptr)
{
    return block_state(block_of(ptr)) == BLOCK_HUGE;
}

/* huge.c: blocks that are their own mapping. */
void *huge_malloc(size_t size, size_t alignment);
void huge_free(struct chunk *chunk, struct block *b);
void *huge_realloc(struct chunk *chunk, struct block *b, size_t size);
size_t huge_usable(struct chunk *chunk, struct block *b);
bool huge_slack_intact(struct chunk *chunk, struct block *b);
void huge_stats(size_t *count, size_t *bytes, size_t *usable);
size_t huge_recently_freed(const void *payload);
void *huge_payload(struct chunk *chunk);

/* registry.c: every arena, live, orphaned or retired. */
struct arena *registry_bind(struct arena *preferred);   /* an orphan to adopt first, or NULL */
void registry_unbind(struct arena *a);
void registry_reclaim(struct arena *a);
void registry_foreach(void (*visit)(struct arena *a, void *ctx), void *ctx);
void registry_lock_all(void);
void registry_unlock_all(void);
void registry_child_reset(struct arena *keep);
void registry_retired(size_t *mallocs, size_t *frees, size_t *purged);   /* counted by retired arenas */

/* engine.c: lib/'s door besides heap.c.  lib/ reads no field of an engine
 * struct (tests/lib_reads_no_engine_struct.sh): it gets summaries. */
struct arena_summary {
    unsigned id;
    unsigned threads;             /* bound to it; 0: orphaned */
    size_t chunks, chunk_bytes;
    size_t used_bytes, used_blocks;   /* not FREE: in use, cached or remote, headers included, slack not */
    size_t free_bytes, purged_bytes;  /* in its bins; of them madvised away */
    size_t purged_total;          /* every byte purged so far */
    size_t mallocs, frees, remote_frees;
    size_t own_cached_bytes, own_cached_blocks;   /* of used: in the calling thread's cache */
};
void *engine_bind(const void *freeing);  /* the thread's exit-key value, or NULL: no arena */
void engine_unbind(void *bound);        /* at thread exit, with engine_bind's value */
void engine_fork_child(void);
void engine_arenas(void (*visit)(const struct arena_summary *s, void *ctx), void *ctx);
void engine_retired(struct arena_summary *s);   /* the counters of arenas retired so far */
int engine_check(void);
size_t engine_trim(size_t pad);
void engine_maintain(size_t pad);

/* report.c: formatting without malloc, and the fatal path. */
extern __thread const char *hmm_call __attribute__((tls_model("initial-exec")));   /* "free", ...: for messages */
size_t fmt_buf(char *buf, size_t cap, const char *fmt, va_list ap);
size_t fmt_str(char *buf, size_t cap, const char *fmt, ...);
void fmt_fd(int fd, const char *fmt, ...);
__attribute__((noreturn)) void fatal(const char *fmt, ...);
void warn(const char *fmt, ...);

/* ---- validators: the invariants written on the structs, for HMM_ASSERT ----
 * Each says whether one header or link is as the engine trusts it to be.
 * Every pointer they follow is looked up in the chunk map first, so that a
 * wild one fails the assertion instead of faulting.  Called with the lock
 * that guards what they read. */

/* b lies in the chunk its header names, and that chunk is valid. */
static inline bool block_in_chunk(struct block *b)
{
    struct chunk *c = map_lookup(b);
    return c != NULL && c == block_chunk(b) && chunk_valid(c) && c->state == CHUNK_ARENA &&
           b >= chunk_first_block(c) && b < chunk_fence(c);
}

/* b's header is live and agrees with both neighbours: the block above
 * knows b's size, the block below (or the chunk's start) is where b says. */
static inline bool block_linked(struct block *b)
{
    if (!block_in_chunk(b) || !block_header_valid(b) || block_next(b) > chunk_fence(block_chunk(b)))
        return false;
    if (block_next(b)->prev_units != b->units)
        return false;
    if (b->prev_units == 0)
        return b == chunk_first_block(block_chunk(b));
    /* The block below may be another thread's, whose fast paths flip its
     * key: read its units inside one atomic load of the key. */
    struct block *below = block_prev(b);
    return block_in_chunk(below) && (uint32_t)(__atomic_load_n(&below->key, __ATOMIC_RELAXED) >> 32) ==
                                        b->prev_units;
}

/* Neither neighbour of b is free: coalescing is done. */
static inline bool block_coalesced(struct block *b)
{
    return block_state(block_next(b)) != BLOCK_FREE &&
           (b->prev_units == 0 || block_state(block_prev(b)) != BLOCK_FREE);
}

static inline struct block *free_next(struct block *b)
{
    return link_decode(&block_links(b)->next_link, block_links(b)->next_link);
}

static inline struct block *free_prev(struct block *b)
{
    return link_decode(&block_links(b)->prev_link, block_links(b)->prev_link);
}

/* b is a free block of the bin whose first block is head, and its bin
 * neighbours are free blocks that point back at it. */
static inline bool block_binned(struct block *head, struct block *b)
{
    if (block_state(b) != BLOCK_FREE || !block_in_chunk(b))
        return false;
    struct block *prev = free_prev(b), *next = free_next(b);
    if (prev == NULL ? head != b
                     : !block_in_chunk(prev) || block_state(prev) != BLOCK_FREE || free_next(prev) != b)
        return false;
    return next == NULL || (block_in_chunk(next) && block_state(next) == BLOCK_FREE && free_prev(next) == b);
}

/* b is parked in a thread cache: a cached block of a cached class, big
 * enough for it. */
static inline bool block_cached(struct block *b)
{
    return block_in_chunk(b) && block_header_valid(b) && block_state(b) == BLOCK_CACHED &&
           block_class(b) != 0 && block_class_valid(b);
}

/* b is on a's central list of class cls: a CACHED block of that class,
 * cut exactly, in one of a's chunks. */
static inline bool block_central(struct arena *a, unsigned cls, struct block *b)
{
    return block_in_chunk(b) && block_chunk(b)->arena == a && block_header_valid(b) &&
           block_state(b) == BLOCK_CACHED && block_class(b) == cls && block_class_valid(b) &&
           b->units == class_units(cls);
}

/* c is one of a's chunks: valid, mapped, linked both ways in a's list,
 * closed by its fence. */
static inline bool chunk_owned(struct arena *a, struct chunk *c)
{
    return chunk_valid(c) && c->state == CHUNK_ARENA && c->arena == a && map_lookup(c) == c &&
           block_state(chunk_fence(c)) == BLOCK_FENCE &&
           (c->prev == NULL ? a->chunks == c : c->prev->next == c) && (c->next == NULL || c->next->prev == c);
}

/* c is a free chunk of the region's index: valid, free, owned by no arena. */
static inline bool chunk_free_valid(const struct chunk *c)
{
    return chunk_valid(c) && c->state == CHUNK_FREE && c->arena == NULL && !(c->flags & CHUNK_MAPPED);
}

/* above starts where c ends, in the same sbrk segment, and knows c's size. */
static inline bool chunk_abuts(const struct chunk *c, const struct chunk *above)
{
    return chunk_valid(c) && chunk_valid(above) && !(c->flags & (CHUNK_SEGMENT_END | CHUNK_MAPPED)) &&
           (const char *)c + c->size == (const char *)above && above->prev_size == c->size;
}

#endif
