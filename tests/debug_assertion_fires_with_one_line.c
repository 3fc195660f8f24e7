/* In the debug build (./configure --enable-debug), a header or link the
 * engine trusts, broken by hand, stops the program at the next operation
 * that relies on it, with one line naming the assertion, the file, the line
 * and the function: "hmm: assertion `COND' failed at FILE:LINE (FUNC)".
 * Each case runs in a child (this program re-executed with "case NAME"):
 *
 *   prev_units_broken    the block above a block in use forgets its size;
 *                        freeing the block checks the header above in every
 *                        build, and names an overflow (heap_block)
 *   bin_link_broken      a binned free block's next link points nowhere;
 *                        a malloc takes it off its bin (bin_remove), which
 *                        checks the links in every build: its own line,
 *                        "hmm: malloc(): corrupted free list: ...", comes
 *                        before the assertion
 *   region_chunk_broken  a chunk in the region's free index says it belongs
 *                        to an arena; a new chunk takes it out of the index
 *                        (free_remove)
 *
 * Other builds skip (77): their assertions compile to nothing.
 * Test build (libhmm_test): reaches into the engine through internal.h. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "hmm.h"
#include "internal.h"
#include "diag_child.h"

#define MEDIUM 100000   /* above the cached classes: straight to the arena */
#define CHUNK_FILLER 900000  /* one to a 1 MiB chunk */

/* Three medium blocks, each right above the one before. */
static void three_adjacent(char *p[3])
{
    for (int attempt = 0; attempt < 16; attempt++) {
        for (int i = 0; i < 3; i++) {
            p[i] = hmm_malloc(MEDIUM);
            CHECK(p[i] != NULL, "malloc");
        }
        if (block_next(block_of(p[0])) == block_of(p[1]) && block_next(block_of(p[1])) == block_of(p[2]))
            return;
    }
    CHECK(0, "no three adjacent blocks");
}

static void prev_units_broken(void)
{
    char *p[3];
    three_adjacent(p);
    block_of(p[1])->prev_units++;
    hmm_free(p[0]);
}

static void bin_link_broken(void)
{
    char *p[3];
    three_adjacent(p);
    hmm_free(p[1]);
    CHECK(hmm_check() == 0, "the heap is not sound before the case");
    struct free_links *links = block_links(block_of(p[1]));
    links->next_link = link_encode(&links->next_link, (void *)(uintptr_t)0x1000);
    hmm_malloc(MEDIUM);
}

/* Of two emptied chunks the arena keeps one as its spare and gives the
 * other back to the region's index of free chunks. */
static void region_chunk_broken(void)
{
    char *spare = hmm_malloc(CHUNK_FILLER), *freed = hmm_malloc(CHUNK_FILLER);
    char *above = hmm_malloc(CHUNK_FILLER);
    CHECK(spare && freed && above, "malloc");
    struct chunk *c = block_chunk(block_of(freed));
    hmm_free(spare);
    hmm_free(freed);
    CHECK(c->state == CHUNK_FREE, "the chunk did not go back to the region");
    c->state = CHUNK_ARENA;
    hmm_malloc(CHUNK_FILLER);
    hmm_malloc(CHUNK_FILLER);
}

static const struct {
    const char *name;
    void (*run)(void);
    const char *start;      /* of the line */
    const char *function;   /* in the line */
} cases[] = {
    { "prev_units_broken", prev_units_broken, "hmm: free(): heap overflow into the header after the block",
      "usable 100000 bytes" },
    { "bin_link_broken", bin_link_broken, "hmm: malloc(): corrupted free list: ", "write after free" },
    { "region_chunk_broken", region_chunk_broken, "hmm: assertion `", "(free_remove)" },
};

#define CASES (sizeof(cases) / sizeof(cases[0]))

static int run_case(size_t i)
{
    struct child c;
    child_self(&c, NO_OPTIONS, "case", cases[i].name, NULL);
    bool assertion = strcmp(cases[i].start, "hmm: assertion `") == 0;
    if (child_aborted(&c) && count_lines(c.err) == 1 && strncmp(c.err, cases[i].start, strlen(cases[i].start)) == 0 &&
        (!assertion || strstr(c.err, "' failed at ")) && strstr(c.err, cases[i].function)) {
        printf("%s: %s", cases[i].name, c.err);
        return 0;
    }
    printf("FAIL %s: expected an abort with one line \"%s... %s\", got %s and stderr:\n%s\n", cases[i].name,
           cases[i].start, cases[i].function, child_how(&c), c.err);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "case") == 0) {
        for (size_t i = 0; i < CASES; i++)
            if (!strcmp(argv[2], cases[i].name))
                cases[i].run();
        printf("the case ran to the end\n");
        return 0;
    }
#ifndef HMM_DEBUG
    printf("SKIP: not a debug build (./configure --enable-debug): assertions are compiled out\n");
    return TEST_SKIP;
#endif
    alarm(TEST_TIMEOUT);
    int failures = 0;
    for (size_t i = 0; i < CASES; i++)
        failures += run_case(i);
    return failures ? 1 : 0;
}
