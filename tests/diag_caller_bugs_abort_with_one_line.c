/* Caller bugs beyond the double frees of misuse_aborts_with_one_line: each
 * runs in a child process (this program re-executed with "case NAME", and
 * HMM_OPTIONS when the case needs it), which must end with SIGABRT after
 * exactly one line on stderr that starts with "hmm: ", names the call
 * ("free()", "realloc()", ...), the pointer and what is wrong:
 *
 *  - a block header overwritten (the 16 bytes before the block), then free
 *    or realloc: "corrupted block header";
 *  - free of a static and of a global pointer, of memory from mmap, of a
 *    pointer from glibc's malloc (this test links libhmm_test, so glibc's
 *    malloc is still there), realloc of such pointers, free of a
 *    misaligned pointer, malloc_usable_size of a pointer hmm did not
 *    return: "invalid pointer";
 *  - free_sized with a size larger than the block, free_aligned_sized with
 *    an alignment the pointer does not have;
 *  - a block on its owner's remote-free stack whose header is overwritten
 *    before the owner drains the stack: "corrupted remote-free stack";
 *  - with HMM_OPTIONS=check=full, a write one byte past the usable size,
 *    then free: "canary overwritten";
 *  - issue 9, messages that say only what hmm knows, checked word for
 *    word: a double free of a block that has since been merged with the
 *    free block above it is "double free of P (already free)", without the
 *    merged size; a pointer never returned that falls inside a free block
 *    is "invalid pointer P (inside free memory at F)", not a double free;
 *    one inside a huge block is "inside the huge block at H";
 *  - issue 10: a write 1 or 32 bytes past a 4 MiB block (a dedicated
 *    chunk's, whole granules) or a 40 MiB one (its own mapping) into its
 *    slack, then free or realloc: "heap overflow past the block at P
 *    (usable N bytes): canary overwritten", word for word.
 *
 * And two that must not abort: with check=full a freed block reads 0xdf
 * (junk) past its first 16 bytes, where no bin link lives; a write to the
 * last usable byte leaves the canary alone.  Without check=full the junk
 * is not there (so the junk case can tell).  And a dedicated or huge
 * block's usable size is what it asked for (rounded to 16), every byte of
 * it writable, before and after realloc grows it.
 *
 * DESIGN.md, Errors: "Caller bugs ...: one line on stderr naming the call,
 * the pointer and what is wrong, written with write(2); then abort()." */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hmm.h"
#include "internal.h"
#include "diag_child.h"
#include "hmm_probes.h"

static char static_buffer[256] __attribute__((aligned(64)));
char global_buffer[256] __attribute__((aligned(64))) = "a global, initialised buffer";

/* Tell the parent which pointer the bug will name. */
static void announce(const void *p)
{
    printf("ptr %p\n", p);
    fflush(stdout);
}

/* Write over the 16 bytes in front of the block. */
static void *overwritten_header(size_t size)
{
    unsigned char *p = hmm_malloc(size);
    CHECK(p != NULL, "malloc(%zu)", size);
    memset(p - BLOCK_HEADER, 0x41, BLOCK_HEADER);
    return p;
}

/* A block of size beside a live one of the same size, its header
 * overwritten, freed. */
static void header_then_free(size_t size)
{
    void *keep = hmm_malloc(size);
    void *p = overwritten_header(size);
    announce(p);
    hmm_free(p);
    hmm_free(keep);
}

static void header_small_then_free(void)
{
    header_then_free(48);
}

static void header_medium_then_free(void)
{
    header_then_free(40000);
}

static void header_then_realloc(void)
{
    void *p = overwritten_header(300);
    announce(p);
    p = hmm_realloc(p, 5000);
    (void)p;
}

static void free_of_static(void)
{
    announce(static_buffer + 64);
    hmm_free(static_buffer + 64);
}

static void free_of_global(void)
{
    announce(global_buffer + 16);
    hmm_free(global_buffer + 16);
}

static void free_of_mmap_memory(void)
{
    char *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED, "mmap");
    announce(m + 64);
    hmm_free(m + 64);
}

static void free_of_glibc_malloc(void)
{
    char *g = malloc(64);   /* glibc's: libhmm_test does not export malloc */
    CHECK(g != NULL, "glibc malloc");
    memset(g, 0, 64);
    announce(g);
    hmm_free(g);
}

static void realloc_of_glibc_malloc(void)
{
    char *g = malloc(200);
    CHECK(g != NULL, "glibc malloc");
    announce(g);
    g = hmm_realloc(g, 400);
    (void)g;
}

static void realloc_of_static(void)
{
    announce(static_buffer + 128);
    void *p = hmm_realloc(static_buffer + 128, 10);
    (void)p;
}

/* free of a pointer offset bytes into a block of size (its first 64 zero). */
static void free_inside(size_t size, size_t offset)
{
    char *p = hmm_malloc(size);
    CHECK(p != NULL, "malloc");
    memset(p, 0, 64);
    announce(p + offset);
    hmm_free(p + offset);
}

static void free_misaligned(void)
{
    free_inside(64, 8);
}

static void free_misaligned_medium(void)
{
    free_inside(50000, 4);
}

static void usable_size_of_static(void)
{
    announce(static_buffer + 16);
    size_t n = hmm_malloc_usable_size(static_buffer + 16);
    printf("usable %zu\n", n);
}

static void usable_size_of_glibc_malloc(void)
{
    char *g = malloc(64);
    CHECK(g != NULL, "glibc malloc");
    announce(g);
    size_t n = hmm_malloc_usable_size(g);
    printf("usable %zu\n", n);
}

static void free_sized_too_large(void)
{
    char *p = hmm_malloc(100);
    CHECK(p != NULL, "malloc");
    size_t usable = hmm_malloc_usable_size(p);
    announce(p);
    hmm_free_sized(p, usable + 1);
}

static void free_aligned_sized_misaligned(void)
{
    void *held[64];
    char *p = NULL;
    /* a block that is not 4096-aligned (most are not) */
    for (int i = 0; i < 64 && p == NULL; i++) {
        held[i] = hmm_malloc(64);
        if ((uintptr_t)held[i] & 4095)
            p = held[i];
    }
    CHECK(p != NULL, "no block off a page boundary");
    announce(p);
    hmm_free_aligned_sized(p, 4096, 64);
}

static void *free_elsewhere(void *p)
{
    hmm_free(p);   /* not this thread's arena: onto the owner's remote stack */
    return NULL;
}

static void remote_stack_corrupted(void)
{
    /* above the cached classes, so the free goes straight to the remote stack
     * (a cached block goes back with its bin, handed off whole) */
    void *p = hmm_malloc(CLASS_MAX + 1);
    CHECK(p != NULL, "malloc");
    pthread_t t;
    CHECK(pthread_create(&t, NULL, free_elsewhere, p) == 0, "pthread_create");
    CHECK(pthread_join(t, NULL) == 0, "pthread_join");
    struct block *b = block_of(p);
    if (block_state(b) != BLOCK_REMOTE) {
        printf("setup: the block is in state %#x, not on the remote stack\n", block_state(b));
        exit(2);
    }
    announce(p);
    memset(b, 0x41, BLOCK_HEADER);   /* the owner's next slow path drains the stack */
    void *q = hmm_malloc(CLASS_MAX + 1);
    printf("malloc returned %p\n", q);
}

/* A write past a block of size (beside a live one), at usable + beyond. */
static void canary_overwritten_at(size_t size, size_t beyond)
{
    void *keep = hmm_malloc(size);
    unsigned char *p = hmm_malloc(size);
    CHECK(p != NULL && keep != NULL, "malloc");
    size_t usable = hmm_malloc_usable_size(p);
    announce(p);
    p[usable + beyond] = 'x';
    hmm_free(p);
}

static void canary_overwritten(void)
{
    canary_overwritten_at(40, 0);
}

static void canary_overwritten_medium(void)
{
    canary_overwritten_at(3000, 7);
}

/* Where the free memory the message names starts. */
static void announce_at(const void *p)
{
    printf("at %p\n", p);
    fflush(stdout);
}

/* Stop with exit 2 when the heap is not laid out as the case needs. */
static void expect_free(void *p, size_t more_than)
{
    struct block *b = block_of(p);
    if (block_state(b) != BLOCK_FREE || block_usable(b) <= more_than) {
        printf("setup: the block at %p is in state %#x, %zu bytes\n", p, block_state(b), block_usable(b));
        exit(2);
    }
}

/* Above the cached classes: freed blocks go straight to the arena's bins. */
#define UNCACHED (256 * 1024)

static void double_free_after_merge(void)
{
    void *p = hmm_malloc(UNCACHED), *above = hmm_malloc(UNCACHED), *keep = hmm_malloc(UNCACHED);
    CHECK(p && above && keep, "malloc");
    hmm_free(above);
    hmm_free(p);   /* takes in the free block above */
    expect_free(p, 2 * UNCACHED);
    announce(p);
    hmm_free(p);
}

static void free_inside_free_block(void)
{
    char *p = hmm_malloc(UNCACHED), *keep = hmm_malloc(UNCACHED);
    CHECK(p && keep, "malloc");
    memset(p, 0, UNCACHED);
    hmm_free(p);
    expect_free(p, UNCACHED - 1);
    announce(p + 4096);
    announce_at(p);
    hmm_free(p + 4096);
}

static void free_inside_huge_block(void)
{
    char *p = hmm_malloc(40 << 20);
    CHECK(p != NULL, "malloc");
    announce(p + 65536);
    announce_at(p);
    hmm_free(p + 65536);
}

/* A block larger than a chunk gets a dedicated one, whole granules, and
 * one above mmap_threshold (32 MiB) its own mapping: the slack past what
 * it asked for starts with a canary. */
#define DEDICATED ((size_t)4 << 20)
#define HUGE ((size_t)40 << 20)

static void slack_overwritten(size_t size, size_t bytes, bool then_realloc)
{
    char *p = hmm_malloc(size);
    CHECK(p != NULL, "malloc");
    announce(p);
    memset(p + size, 'x', bytes);
    if (then_realloc)
        p = hmm_realloc(p, 2 * size);
    hmm_free(p);
}

static void slack_overwritten_1(void)
{
    slack_overwritten(DEDICATED, 1, false);
}

static void slack_overwritten_32_then_realloc(void)
{
    slack_overwritten(DEDICATED, 32, true);
}

static void huge_slack_overwritten_1(void)
{
    slack_overwritten(HUGE, 1, false);
}

/* Not aborts: exit 0 when the freed bytes are junk / the last byte is fine. */
static void junk_probe(void)
{
    size_t of, junk = junk_after_free(&of);
    printf("junk %zu of %zu\n", junk, of);
    exit(0);
}

static void last_usable_byte_is_fine(void)
{
    unsigned char *p = hmm_malloc(40);
    CHECK(p != NULL, "malloc");
    size_t usable = hmm_malloc_usable_size(p);
    p[usable - 1] = 'x';
    hmm_free(p);
    CHECK(hmm_check() == 0, "hmm_check after a write to the last usable byte");
    exit(0);
}

/* A dedicated or huge block's usable size is what it asked for, rounded
 * to 16 bytes, before and after it grows: every usable byte may be
 * written. */
static void usable_is_asked(size_t size)
{
    char *p = hmm_malloc(size + 5);
    CHECK(p != NULL && hmm_malloc_usable_size(p) == size + 16, "usable %zu of a malloc(%zu)",
          p ? hmm_malloc_usable_size(p) : 0, size + 5);
    memset(p, 'x', hmm_malloc_usable_size(p));
    p = hmm_realloc(p, size + size / 2);
    CHECK(p != NULL && hmm_malloc_usable_size(p) == size + size / 2, "usable %zu after realloc",
          p ? hmm_malloc_usable_size(p) : 0);
    memset(p, 'x', hmm_malloc_usable_size(p));
    hmm_free(p);
}

static void dedicated_usable_is_asked(void)
{
    usable_is_asked(DEDICATED);
    usable_is_asked(HUGE);
    CHECK(hmm_check() == 0, "hmm_check after writing every usable byte of dedicated and huge blocks");
    exit(0);
}

struct misuse {
    const char *name;
    void (*run)(void);
    const char *options;   /* HMM_OPTIONS of the child, NULL for none */
    const char *call;      /* "free" for "free(): " */
    const char *what;      /* the key phrase */
};

static const struct misuse cases[] = {
    { "header_small_then_free", header_small_then_free, NULL, "free", "corrupted block header" },
    { "header_medium_then_free", header_medium_then_free, NULL, "free", "corrupted block header" },
    { "header_then_realloc", header_then_realloc, NULL, "realloc", "corrupted block header" },
    { "free_of_static", free_of_static, NULL, "free", "invalid pointer" },
    { "free_of_global", free_of_global, NULL, "free", "invalid pointer" },
    { "free_of_mmap_memory", free_of_mmap_memory, NULL, "free", "invalid pointer" },
    { "free_of_glibc_malloc", free_of_glibc_malloc, NULL, "free", "invalid pointer" },
    { "realloc_of_glibc_malloc", realloc_of_glibc_malloc, NULL, "realloc", "invalid pointer" },
    { "realloc_of_static", realloc_of_static, NULL, "realloc", "invalid pointer" },
    { "free_misaligned", free_misaligned, NULL, "free", "invalid pointer" },
    { "free_misaligned_medium", free_misaligned_medium, NULL, "free", "invalid pointer" },
    { "usable_size_of_static", usable_size_of_static, NULL, "malloc_usable_size", "invalid pointer" },
    { "usable_size_of_glibc_malloc", usable_size_of_glibc_malloc, NULL, "malloc_usable_size",
      "invalid pointer" },
    { "free_sized_too_large", free_sized_too_large, NULL, "free_sized", "larger than the block" },
    { "free_aligned_sized_misaligned", free_aligned_sized_misaligned, NULL, "free_aligned_sized",
      "not aligned" },
    { "remote_stack_corrupted", remote_stack_corrupted, NULL, "free", "corrupted remote-free stack" },
    { "canary_overwritten", canary_overwritten, "check=full", "free", "canary overwritten" },
    { "canary_overwritten_medium", canary_overwritten_medium, "check=full", "free",
      "canary overwritten" },
    { "double_free_after_merge", double_free_after_merge, NULL, "free", "double free" },
    { "free_inside_free_block", free_inside_free_block, NULL, "free", "invalid pointer" },
    { "free_inside_huge_block", free_inside_huge_block, NULL, "free", "invalid pointer" },
    { "slack_overwritten_1", slack_overwritten_1, NULL, "free", "canary overwritten" },
    { "slack_overwritten_32_then_realloc", slack_overwritten_32_then_realloc, NULL, "realloc",
      "canary overwritten" },
    { "huge_slack_overwritten_1", huge_slack_overwritten_1, NULL, "free", "canary overwritten" },
};

/* Cases whose whole line is checked: after "CALL(): ", a format taking the
 * pointer and the announced "at". */
static const struct {
    const char *name;
    const char *line;
} exact_lines[] = {
    { "double_free_after_merge", "double free of %s (already free)" },
    { "free_inside_free_block", "invalid pointer %s (inside free memory at %s)" },
    { "free_inside_huge_block", "invalid pointer %s (inside the huge block at %s)" },
    { "slack_overwritten_1", "heap overflow past the block at %s (usable 4194304 bytes): canary overwritten" },
    { "slack_overwritten_32_then_realloc",
      "heap overflow past the block at %s (usable 4194304 bytes): canary overwritten" },
    { "huge_slack_overwritten_1", "heap overflow past the block at %s (usable 41943040 bytes): canary overwritten" },
};

/* The line the case expects word for word, or NULL when it names only the
 * key phrase. */
static const char *exact_line(const struct misuse *m, const struct child *c, const char *ptr)
{
    static char line[256];
    char at[64], format[192];
    for (size_t i = 0; i < sizeof(exact_lines) / sizeof(exact_lines[0]); i++)
        if (!strcmp(exact_lines[i].name, m->name)) {
            snprintf(format, sizeof(format), "hmm: %s(): %s\n", m->call, exact_lines[i].line);
            snprintf(line, sizeof(line), format, ptr, child_announced(c, "\nat ", at));
            return line;
        }
    return NULL;
}

/* Why the child's end is not the one line the case wants; NULL when it is. */
static const char *misuse_fault(const struct misuse *m, const struct child *c, const char *ptr,
                                const char *call, const char *exact)
{
    const char *why = one_line_abort_fault(c, ptr, "hmm: ");
    if (why)
        return why;
    if (!strstr(c->err, call))
        return "the line does not name the call";
    if (!strstr(c->err, m->what))
        return "the line does not say what is wrong";
    if (exact && strcmp(c->err, exact) != 0)
        return "the line is not word for word the one expected";
    return NULL;
}

static int run_misuse(const struct misuse *m)
{
    struct child c;
    char call[64];
    char ptr[64];
    child_self(&c, m->options, "case", m->name, NULL);
    child_announced(&c, "ptr ", ptr);
    const char *exact = exact_line(m, &c, ptr);
    snprintf(call, sizeof(call), "%s(): ", m->call);
    const char *why = misuse_fault(m, &c, ptr, call, exact);
    if (why) {
        printf("FAIL: %s [%s]: %s (%s, expected %s..%s..%s%s%s); stdout [%s] stderr [%s]\n", m->name,
               m->options ? m->options : "", why, child_how(&c), call, ptr, m->what,
               exact ? ", exactly " : "", exact ? exact : "", c.out, c.err);
        return 1;
    }
    printf("PASS: %s: %s", m->name, c.err);
    return 0;
}

static int run_junk(const char *options, int expect_all)
{
    struct child c;
    child_self(&c, options, "case", "junk_after_free", NULL);
    size_t junk = 0, total = 0;
    const char *line = strstr(c.out, "junk ");
    if (!child_exited(&c, 0) || !line || sscanf(line, "junk %zu of %zu", &junk, &total) != 2 ||
        c.err_len != 0) {
        printf("FAIL: junk_after_free [%s]: %s; stdout [%s] stderr [%s]\n", options ? options : "",
               child_how(&c), c.out, c.err);
        return 1;
    }
    if (expect_all ? junk != total || total == 0 : junk == total) {
        printf("FAIL: junk_after_free [%s]: %zu of %zu freed bytes read 0xdf, expected %s\n",
               options ? options : "", junk, total, expect_all ? "all" : "not all");
        return 1;
    }
    printf("PASS: junk_after_free [%s]: %zu of %zu bytes junk\n", options ? options : "", junk, total);
    return 0;
}

static int run_quiet(const char *name, const char *options)
{
    struct child c;
    child_self(&c, options, "case", name, NULL);
    if (!child_exited(&c, 0) || c.err_len != 0) {
        printf("FAIL: %s [%s]: %s; stderr [%s]\n", name, options ? options : "", child_how(&c), c.err);
        return 1;
    }
    printf("PASS: %s [%s]\n", name, options ? options : "");
    return 0;
}

static void (*case_named(const char *name))(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (!strcmp(name, cases[i].name))
            return cases[i].run;
    return NULL;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "case") == 0) {
        if (!strcmp(argv[2], "junk_after_free"))
            junk_probe();
        if (!strcmp(argv[2], "last_usable_byte_is_fine"))
            last_usable_byte_is_fine();
        if (!strcmp(argv[2], "dedicated_usable_is_asked"))
            dedicated_usable_is_asked();
        return child_case_ran(argv[2], case_named(argv[2]));
    }

    struct tally t = tally_start(argc, argv);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (tally_wants(&t, cases[i].name))
            tally_add(&t, run_misuse(&cases[i]), 1);
    if (tally_wants(&t, "junk_after_free"))
        tally_add(&t, run_junk("check=full", 1) + run_junk(NO_OPTIONS, 0), 2);
    if (tally_wants(&t, "last_usable_byte_is_fine"))
        tally_add(&t, run_quiet("last_usable_byte_is_fine", "check=full"), 1);
    if (tally_wants(&t, "dedicated_usable_is_asked"))
        tally_add(&t, run_quiet("dedicated_usable_is_asked", NO_OPTIONS) +
                      run_quiet("dedicated_usable_is_asked", "check=full"), 2);
    return tally_end(&t);
}
