/* hmm_check() finds each of the heap's invariants broken on purpose, says
 * which on one line, and finds the heap sound again once it is restored.
 * Each case runs in a child (this program re-executed with "case NAME"):
 * the child breaks one invariant by hand, expects hmm_check() == -1,
 * restores it, expects hmm_check() == 0, and prints "expect TEXT" lines the
 * parent then looks for in the child's one line of stderr.
 *
 *   free_block_marked_in_use   a binned free block's state flipped to in use
 *   prev_units_wrong           a block's prev_units off by one
 *   block_header_broken        a block's units below the minimum
 *   adjacent_free_blocks       a free block forged right above a free block
 *   bitmap_bit_cleared         a bin's bitmap bit cleared, the bin not empty
 *   used_bytes_off             the arena's used_bytes counter off by a unit
 *   chunk_magic_broken         a chunk header's magic broken
 *   region_free_bytes_off      a free chunk of the region's list a granule
 *                              larger than the list's byte count says
 *   cache_entry_in_use         a thread-cache entry not in the cached state
 *   central_entry_in_use       a block on an arena's central list not in the
 *                              central state
 *   central_run_miscounted     the top run a central list remembers a block
 *                              longer than it is
 *   closing_entry_in_use       a block a closed cache holds to give back (the
 *                              end of a burst) not in the cached state
 *   closing_entry_class_forged such a block's class byte past the classes
 *
 * And HMM_OPTIONS=check=N: a program doing many operations with check=100
 * runs to the end; with the arena's used_bytes off it aborts at the next
 * periodic check with the "check:" fatal line (and runs to the end without
 * the option, so the abort is the option's doing).
 *
 * Test build (libhmm_test): reaches into the engine through internal.h. */
#include "config.h"

#include <limits.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hmm.h"
#include "internal.h"
#include "diag_child.h"

#define MEDIUM 100000  /* above the cached classes (64 KiB): straight to the arena */

static void expect(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void expect(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("expect ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

static struct arena *my_arena(void)
{
    struct arena *a = hmm_thread_cache.arena;
    CHECK(a != NULL, "the thread has no arena");
    return a;
}

/* Four medium blocks, each right above the one before. */
static void four_adjacent(char *p[4])
{
    for (int attempt = 0; attempt < 16; attempt++) {
        for (int i = 0; i < 4; i++) {
            p[i] = hmm_malloc(MEDIUM);
            CHECK(p[i] != NULL, "malloc");
        }
        if (block_next(block_of(p[0])) == block_of(p[1]) && block_next(block_of(p[1])) == block_of(p[2]) &&
            block_next(block_of(p[2])) == block_of(p[3]))
            return;
        /* not adjacent: keep them (so the next ones come from elsewhere) and retry */
    }
    CHECK(0, "no four adjacent blocks");
}

/* The first hmm_check must fail, the second (after restore) pass. */
static void must_fail(const char *what)
{
    CHECK(hmm_check() == -1, "hmm_check() missed: %s", what);
}

static void must_pass(const char *what)
{
    fflush(stdout);
    CHECK(hmm_check() == 0, "hmm_check() still fails after restoring: %s", what);
}

static void sound_before(void)
{
    CHECK(hmm_check() == 0, "the heap is not sound before the case");
}

static void free_block_marked_in_use(void)
{
    char *p[4];
    four_adjacent(p);
    sound_before();
    hmm_free(p[1]);
    struct block *b = block_of(p[1]);
    CHECK(block_state(b) == BLOCK_FREE, "the freed block is in state %#x", block_state(b));
    expect("is not a free block");
    expect("%p", (void *)p[1]);
    block_set_state(b, BLOCK_INUSE);
    must_fail("a binned block marked in use");
    block_set_state(b, BLOCK_FREE);
    must_pass("a binned block marked in use");
}

static void prev_units_wrong(void)
{
    char *p[4];
    four_adjacent(p);
    sound_before();
    struct block *b = block_of(p[2]);
    expect("does not know the block below it");
    expect("%p", (void *)p[2]);
    b->prev_units += 1;
    must_fail("prev_units off by one");
    b->prev_units -= 1;
    must_pass("prev_units off by one");
}

static void block_header_broken(void)
{
    char *p[4];
    four_adjacent(p);
    sound_before();
    struct block *b = block_of(p[2]);
    uint32_t units = b->units;
    expect("block header at %p is broken", (void *)b);
    b->units = 1;
    must_fail("units below the minimum");
    b->units = units;
    must_pass("units below the minimum");
}

static void adjacent_free_blocks(void)
{
    char *p[4];
    four_adjacent(p);
    sound_before();
    hmm_free(p[1]);
    CHECK(block_state(block_of(p[1])) == BLOCK_FREE, "the freed block is not free");
    struct block *forged = block_of(p[2]);
    expect("are adjacent");
    expect("free blocks %p and %p", (void *)p[1], (void *)p[2]);
    block_set_state(forged, BLOCK_FREE);
    must_fail("two adjacent free blocks");
    block_set_state(forged, BLOCK_INUSE);
    must_pass("two adjacent free blocks");
}

static void bitmap_bit_cleared(void)
{
    char *p[4];
    four_adjacent(p);
    hmm_free(p[1]);
    sound_before();
    struct arena *a = my_arena();
    struct bin_set *set = NULL;
    unsigned i = BIN_COUNT;
    for (unsigned kind = 0; kind < BIN_SETS && i == BIN_COUNT; kind++)
        for (set = &a->sets[kind], i = 0; i < BIN_COUNT && set->bins[i] == NULL;)
            i++;
    CHECK(i < BIN_COUNT, "every bin is empty");
    CHECK((set->bitmap[i / 64] >> (i % 64)) & 1, "bin %u is not in the bitmap", i);
    expect("bitmap disagrees with bin %u", i);
    set->bitmap[i / 64] &= ~(1ull << (i % 64));
    must_fail("a bitmap bit cleared");
    set->bitmap[i / 64] |= 1ull << (i % 64);
    must_pass("a bitmap bit cleared");
}

static void used_bytes_off(void)
{
    char *p[4];
    four_adjacent(p);
    sound_before();
    struct arena *a = my_arena();
    size_t used = a->used_bytes;
    expect("blocks in use add up to %zu bytes, the arena counts %zu", used, used + UNIT);
    a->used_bytes += UNIT;
    must_fail("used_bytes off by a unit");
    a->used_bytes -= UNIT;
    must_pass("used_bytes off by a unit");
}

static void chunk_magic_broken(void)
{
    char *p[4];
    four_adjacent(p);
    sound_before();
    struct chunk *c = block_chunk(block_of(p[0]));
    CHECK(chunk_valid(c) && c->state == CHUNK_ARENA, "the block's chunk is not an arena chunk");
    expect("chunk %p has a broken header", (void *)c);
    c->magic ^= 0x10;
    must_fail("a chunk's magic broken");
    c->magic ^= 0x10;
    must_pass("a chunk's magic broken");
}

/* The free chunk of the region that now covers addr (it may have merged
 * with a free chunk below it). */
static struct chunk *free_chunk_covering(char *addr)
{
    char *at = (char *)((uintptr_t)addr & ~(uintptr_t)(GRANULE - 1));
    for (int steps = 0; steps < 4096; steps++, at -= GRANULE) {
        struct chunk *c = (struct chunk *)at;
        if (chunk_valid(c) && c->state == CHUNK_FREE && (char *)c + c->size > addr)
            return c;
    }
    return NULL;
}

static void region_free_bytes_off(void)
{
    /* nothing trimmed or purged: the freed chunk stays on the free list */
    CHECK(hmm_mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1, "mallopt(M_TRIM_THRESHOLD)");
    char *x = hmm_malloc(3 << 20), *y = hmm_malloc(3 << 20);
    CHECK(x != NULL && y != NULL, "malloc");
    struct chunk *cx = block_chunk(block_of(x));
    CHECK(chunk_valid(cx) && cx->state == CHUNK_ARENA, "the block's chunk is not an arena chunk");
    if (cx->flags & CHUNK_MAPPED) {
        printf("skip: the chunk is mmap'ed (sbrk failed), it is unmapped when freed\n");
        exit(TEST_SKIP);
    }
    hmm_free(x);
    struct chunk *c = free_chunk_covering((char *)cx);
    CHECK(c != NULL, "no free chunk covers the freed chunk %p", (void *)cx);
    sound_before();
    expect("hmm_check: region: free chunks add up to");
    c->size += GRANULE;
    must_fail("a free chunk larger than the list's byte count");
    c->size -= GRANULE;
    must_pass("a free chunk larger than the list's byte count");
    hmm_free(y);
}

static void cache_entry_in_use(void)
{
    void *keep = hmm_malloc(48), *p = hmm_malloc(48);
    CHECK(keep != NULL && p != NULL, "malloc");
    hmm_free(p);
    struct block *b = block_of(p);
    if (block_state(b) != BLOCK_CACHED) {
        printf("skip: the block did not go to the thread cache (state %#x)\n", block_state(b));
        exit(TEST_SKIP);
    }
    sound_before();
    expect("thread cache: entry %p", p);
    expect("is not a cached block");
    block_set_state(b, BLOCK_INUSE);
    must_fail("a cache entry in use");
    block_set_state(b, BLOCK_CACHED);
    must_pass("a cache entry in use");
    hmm_free(keep);
}

/* Enough 48-byte blocks freed that the thread cache overflows onto the
 * arena's central list of their class: its first block. */
static struct block *central_block(void **held, size_t count)
{
    for (size_t i = 0; i < count; i++)
        CHECK((held[i] = hmm_malloc(48)) != NULL, "malloc");
    for (size_t i = 0; i < count; i++)
        hmm_free(held[i]);
    struct cache_entry *head = my_arena()->central[size_class(48)].head;
    if (head == NULL) {
        printf("skip: no block went to the central list\n");
        exit(TEST_SKIP);
    }
    return block_of(head);
}

static void central_entry_in_use(void)
{
    static void *held[1000];
    struct block *b = central_block(held, 1000);
    sound_before();
    expect("on central list %u is not a central block of its class", size_class(48));
    block_set_state(b, BLOCK_INUSE);
    must_fail("a central entry in use");
    block_set_state(b, BLOCK_CACHED);
    must_pass("a central entry in use");
}

static void central_run_miscounted(void)
{
    static void *held[1000];
    central_block(held, 1000);
    struct central_list *list = &my_arena()->central[size_class(48)];
    CHECK(list->nruns != 0, "the central list remembers no run");
    sound_before();
    expect("run %u of central list %u is not its", list->nruns - 1, size_class(48));
    list->runs[list->nruns - 1].count++;
    must_fail("a central run miscounted");
    list->runs[list->nruns - 1].count--;
    must_pass("a central run miscounted");
}

/* ---- check=N ------------------------------------------------------------ */

#define SLOTS 512

static void random_ops(unsigned long ops, uint64_t seed)
{
    static void *slot[SLOTS];
    for (unsigned long i = 0; i < ops; i++) {
        size_t k = rng_range(&seed, 0, SLOTS - 1);
        if (slot[k]) {
            hmm_free(slot[k]);
            slot[k] = NULL;
        } else {
            size_t size = rng_range(&seed, 0, 9) ? rng_range(&seed, 1, 600) : rng_range(&seed, 600, 70000);
            slot[k] = hmm_malloc(size);
            CHECK(slot[k] != NULL, "malloc(%zu)", size);
            memset(slot[k], 0x5a, size < 64 ? size : 64);
        }
    }
    for (size_t k = 0; k < SLOTS; k++) {
        hmm_free(slot[k]);
        slot[k] = NULL;
    }
}

static void periodic_ok(void)
{
    random_ops(20000, 7);
    CHECK(hmm_check() == 0, "hmm_check after the run");
    printf("done\n");
}

static void periodic_broken(void)
{
    char *p[4];
    four_adjacent(p);
    struct arena *a = my_arena();
    a->used_bytes += UNIT;
    random_ops(1000, 11);
    a->used_bytes -= UNIT;
    printf("done\n");
}

/* A burst freed until the thread's cache closes: its last frees wait on
 * the closing list; the newest of them, once the heap is checked sound. */
static struct block *closing_block(void)
{
    enum { BURST = 16384, SIZE = 1500, STRIDE = 7919 };
    static void *held[BURST];
    for (size_t i = 0; i < BURST; i++)
        CHECK((held[i] = hmm_malloc(SIZE)) != NULL, "malloc");
    for (size_t i = 0, at = 0; i < BURST; i++, at = (at + STRIDE) % BURST)
        hmm_free(held[at]);
    struct cache_entry *e = hmm_thread_cache.closing;
    if (e == NULL) {
        printf("skip: nothing waits on the closing list\n");
        exit(TEST_SKIP);
    }
    sound_before();
    expect("closing list: entry %p", (void *)e);
    expect("is not a cached block of the thread's arena");
    return block_of(e);
}

static void closing_entry_in_use(void)
{
    struct block *b = closing_block();
    block_set_state(b, BLOCK_INUSE);
    must_fail("a closing entry in use");
    block_set_state(b, BLOCK_CACHED);
    must_pass("a closing entry in use");
}

static void closing_entry_class_forged(void)
{
    struct block *b = closing_block();
    uint8_t cls = b->cls;
    b->cls = 200;
    must_fail("a closing entry's class forged");
    b->cls = cls;
    must_pass("a closing entry's class forged");
}

static const struct named_case cases[] = {
    { "free_block_marked_in_use", free_block_marked_in_use },
    { "prev_units_wrong", prev_units_wrong },
    { "block_header_broken", block_header_broken },
    { "adjacent_free_blocks", adjacent_free_blocks },
    { "bitmap_bit_cleared", bitmap_bit_cleared },
    { "used_bytes_off", used_bytes_off },
    { "chunk_magic_broken", chunk_magic_broken },
    { "region_free_bytes_off", region_free_bytes_off },
    { "cache_entry_in_use", cache_entry_in_use },
    { "central_entry_in_use", central_entry_in_use },
    { "central_run_miscounted", central_run_miscounted },
    { "closing_entry_in_use", closing_entry_in_use },
    { "closing_entry_class_forged", closing_entry_class_forged },
};

static int run_broken(const struct named_case *b)
{
    struct child c;
    child_self(&c, NO_OPTIONS, "case", b->name, NULL);
    if (child_exited(&c, TEST_SKIP)) {
        printf("SKIP: %s: %s", b->name, c.out);
        return 0;
    }
    const char *why = NULL;
    if (!child_exited(&c, 0))
        why = "the child failed";
    else if (count_lines(c.err) != 1 || c.err[c.err_len - 1] != '\n')
        why = "not exactly one line on stderr";
    else if (strncmp(c.err, "hmm: hmm_check: ", 16) != 0)
        why = "the line does not start with 'hmm: hmm_check: '";
    int expectations = 0;
    for (const char *line = strstr(c.out, "expect "); !why && line; line = strstr(line + 1, "\nexpect ")) {
        if (*line == '\n')
            line++;
        char text[256];
        size_t len = strcspn(line + 7, "\n");
        CHECK(len < sizeof(text), "expectation too long");
        memcpy(text, line + 7, len);
        text[len] = '\0';
        expectations++;
        if (!strstr(c.err, text)) {
            printf("FAIL: %s: the line does not say '%s'\n", b->name, text);
            why = "the line does not name what is broken";
        }
    }
    if (!why && expectations == 0)
        why = "the child set no expectation";
    return case_verdict(b->name, why, &c);
}

static int run_periodic(void)
{
    struct child c;
    int failures = 0;

    child_self(&c, "check=100", "case", "periodic_ok", NULL);
    if (!child_exited(&c, 0) || !strstr(c.out, "done") || c.err_len != 0) {
        printf("FAIL: check=100 on a sound heap: %s; stdout [%s] stderr [%s]\n", child_how(&c), c.out, c.err);
        failures++;
    } else {
        printf("PASS: check=100 on a sound heap: 20000 operations\n");
    }

    child_self(&c, "check=100", "case", "periodic_broken", NULL);
    const char *fatal_line = strstr(c.err, "hmm: check: ");
    if (!child_aborted(&c) || !fatal_line || !strstr(c.err, "hmm: hmm_check: ") ||
        strstr(c.out, "done") || (fatal_line != c.err && fatal_line[-1] != '\n') ||
        !strchr(fatal_line, '\n') || strchr(fatal_line, '\n')[1] != '\0') {
        printf("FAIL: check=100 with used_bytes off: expected abort with the 'hmm: check: ' line last: "
               "%s; stdout [%s] stderr [%s]\n", child_how(&c), c.out, c.err);
        failures++;
    } else {
        printf("PASS: check=100 with used_bytes off: %s", c.err);
    }

    child_self(&c, NO_OPTIONS, "case", "periodic_broken", NULL);
    if (!child_exited(&c, 0) || !strstr(c.out, "done") || c.err_len != 0) {
        printf("FAIL: no check option with used_bytes off: expected no periodic check: %s; "
               "stdout [%s] stderr [%s]\n", child_how(&c), c.out, c.err);
        failures++;
    } else {
        printf("PASS: without check=N the same program runs to the end\n");
    }
    return failures;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "case") == 0) {
        if (!strcmp(argv[2], "periodic_ok"))
            periodic_ok();
        else if (!strcmp(argv[2], "periodic_broken"))
            periodic_broken();
        else {
            size_t i;
            for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                if (!strcmp(argv[2], cases[i].name))
                    break;
            CHECK(i < sizeof(cases) / sizeof(cases[0]), "no case %s", argv[2]);
            cases[i].run();
        }
        return 0;
    }

    struct tally t = tally_start(argc, argv);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (tally_wants(&t, cases[i].name))
            tally_add(&t, run_broken(&cases[i]), 1);
    if (tally_wants(&t, "periodic"))
        tally_add(&t, run_periodic(), 3);
    CHECK(hmm_check() == 0, "hmm_check() in the parent");
    return tally_end(&t);
}
