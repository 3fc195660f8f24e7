/* The heap-misuse suite (issue 10): small programs that each misuse the
 * heap once -- double free; free of a wild, interior or forged pointer;
 * overflow or underflow of a small, medium or large block by 1, 32 or 1 MiB
 * bytes, with no later free, a free of the damaged block, or that and a
 * free of its neighbour; write after free; old data left in freed or new
 * memory -- and then print "unnoticed".  A case is caught when it stops
 * before that line (or, for the zeroing cases, finds the data gone), and
 * caught with a message when the allocator aborted after writing to
 * stderr.  Correct programs that look like misuse (a freed block reused,
 * malloc(0), realloc to 0, writing a block's whole usable size) must run
 * to their end.
 *
 * Not linked with hmm: the cases use the standard names, and run as
 * children under LD_PRELOAD of an allocator, so that the same program
 * compares allocators (stress/misuse prints the table).
 *
 *   heap_misuse_is_caught                    make check: HMM_LIB preloaded,
 *       default options; the cases marked MUST end in one "hmm: " line and
 *       abort, the correct programs run clean
 *   heap_misuse_is_caught table [LIB|-] [HMM_OPTIONS]
 *       one line per case (missed, crash, message) and the counts
 *   heap_misuse_is_caught case NAME          one case, in this process */
#include "config.h"

#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

#include "diag_child.h"

#define SMALL 32
#define MEDIUM 100000
#define LARGE ((size_t)4 << 20)
#define MIB ((size_t)1 << 20)
#define SECRET "hmm-secret-7f3a9"
#define SECRET_LEN (sizeof(SECRET) - 1)
#define JUNK 'A'

/* The compiler must not see through the misuse and fold it away. */
static void *opaque(void *p)
{
    __asm__ volatile("" : "+r"(p));
    return p;
}

/* The pointer about to be misused, for the parent to find in the message. */
static void announce(void *p)
{
    printf("ptr %p\n", p);
    fflush(stdout);
}

static __attribute__((noreturn)) void unnoticed(void)
{
    printf("unnoticed\n");
    exit(0);
}

static void *must_malloc(size_t size)
{
    void *p = malloc(size);
    if (p == NULL) {
        printf("malloc(%zu) failed\n", size);
        exit(2);
    }
    return opaque(p);
}

/* ---- double, wild, interior and forged frees ---------------------------- */

static void double_free(size_t size, bool other_between)
{
    char *p = must_malloc(size), *other = must_malloc(size);
    announce(p);
    free(p);
    if (other_between)
        free(other);
    free(opaque(p));
    unnoticed();
}

static char global_buffer[256] __attribute__((aligned(64)));

static void wild_free(int kind)
{
    char stack[256] __attribute__((aligned(64)));
    void *mapped = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *targets[] = { stack + 64, global_buffer + 64, (char *)mapped + 4096, (char *)(uintptr_t)0x7e5a5a5a5a50 };
    must_malloc(SMALL);
    announce(targets[kind]);
    free(opaque(targets[kind]));
    unnoticed();
}

static void interior_free(size_t size, size_t offset)
{
    char *p = must_malloc(size);
    announce(p + offset);
    free(opaque(p + offset));
    unnoticed();
}

/* A copy of a real block's header (the 16 bytes before it) placed inside
 * another block, or on the stack, and the pointer after it freed; then
 * mallocs of the size, which may hand the fake block out. */
static void forged_free(size_t size, bool on_stack)
{
    static char stack_room[64] __attribute__((aligned(64)));
    char *real = must_malloc(size), *room = must_malloc(4096);
    char *fake = (on_stack ? stack_room : room + 256) + 16;
    memcpy(fake - 16, real - 16, 16);
    announce(fake);
    free(opaque(fake));
    for (int i = 0; i < 8; i++)
        must_malloc(size);
    unnoticed();
}

/* ---- overflow and underflow --------------------------------------------- */

enum after { NO_FREE, FREE_DAMAGED, FREE_BOTH };

/* N bytes written past the end (over) or before the start of a block; then
 * maybe free it, and then its neighbour (the block allocated next). */
static void overrun(size_t size, size_t bytes, bool over, enum after after)
{
    char *p = must_malloc(size), *neighbour = must_malloc(size);
    announce(p);
    memset(opaque(over ? p + size : p - bytes), JUNK, bytes);
    if (after >= FREE_DAMAGED)
        free(p);
    if (after == FREE_BOTH)
        free(neighbour);
    unnoticed();
}

static void malloc_each(char **held, int count, size_t size)
{
    for (int i = 0; i < count; i++)
        held[i] = must_malloc(size);
}

static void free_each(char **held, int count)
{
    for (int i = 0; i < count; i++)
        free(held[i]);
}

/* A 1-byte underflow of a small block, whose free the fast path takes
 * (it reads only the first 8 header bytes), and then rounds of frees and
 * mallocs of its size, so that its bin sends it back to the arena. */
static void underflow_then_churn(size_t size)
{
    enum { HELD = 20000 };
    static char *held[HELD];
    malloc_each(held, HELD, size);
    char *p = held[HELD / 2];
    announce(p);
    memset(opaque(p - 1), JUNK, 1);
    for (int round = 0; round < 4; round++) {
        free_each(held, HELD);
        malloc_each(held, HELD, size);
    }
    unnoticed();
}

/* ---- write after free ---------------------------------------------------- */

static void write_after_free(size_t size)
{
    char *p = must_malloc(size), *held[100];
    free(p);
    announce(p);
    memset(opaque(p), JUNK, size);
    malloc_each(held, 100, size);
    free_each(held, 100);
    unnoticed();
}

/* A block freed between two in use, written past the two links every
 * free block keeps (where a large free block counts its purged pages);
 * then mallocs of its size, the first of which takes it back. */
static void write_after_free_past_links(size_t size)
{
    char *below = must_malloc(size), *p = must_malloc(size), *above = must_malloc(size), *held[100];
    free(p);
    announce(p);
    memset((char *)opaque(p) + 2 * sizeof(void *), JUNK, 2 * sizeof(void *));
    malloc_each(held, 100, size);
    free_each(held, 100);
    free(below);
    free(above);
    unnoticed();
}

/* The link of one block among many freed, most of which went on from the
 * thread's cache to its arena's lists, overwritten; then rounds of mallocs
 * and frees of the size, whose refills and flushes walk those lists. */
static void write_after_free_of_many(size_t size)
{
    enum { HELD = 5000 };
    static char *held[HELD];
    malloc_each(held, HELD, size);
    free_each(held, HELD);
    char *p = held[HELD / 2];
    announce(p);
    memset(opaque(p), JUNK, sizeof(void *));
    for (int round = 0; round < 3; round++) {
        malloc_each(held, HELD, size);
        free_each(held, HELD);
    }
    unnoticed();
}

static void *free_all(void *blocks)
{
    char **held = blocks;
    for (int i = 0; held[i] != NULL; i++)
        free(held[i]);
    return NULL;
}

/* Blocks freed by another thread, which hands them back to their owner's
 * arena as chains, and the two words after every block's link overwritten
 * (where the first block of a chain keeps the next chain and its count);
 * then the owner's mallocs of the size, whose refills take the chains. */
static void write_after_free_handed_back(size_t size)
{
    enum { HELD = 2000 };
    static char *held[HELD + 1];
    malloc_each(held, HELD, size);
    pthread_t freer;
    if (pthread_create(&freer, NULL, free_all, held) != 0 || pthread_join(freer, NULL) != 0)
        exit(2);
    for (int i = 0; i < HELD; i++)
        memset(opaque(held[i] + sizeof(void *)), JUNK, 2 * sizeof(void *));
    malloc_each(held, HELD, size);
    unnoticed();
}

/* ---- old data in freed and new memory ------------------------------------ */

static void fill_secret(char *p, size_t size)
{
    for (size_t at = 0; at + SECRET_LEN <= size; at += SECRET_LEN)
        memcpy(p + at, SECRET, SECRET_LEN);
}

static bool holds_secret(const char *p, size_t size)
{
    return memmem(p, size, SECRET, SECRET_LEN) != NULL;
}

/* A secret written and freed: can the dangling pointer still read it, or
 * the next malloc of the size? */
static void secret_left(size_t size, bool in_new_block)
{
    char *p = must_malloc(size);
    fill_secret(p, size);
    free(p);
    char *look = in_new_block ? must_malloc(size) : opaque(p);
    if (holds_secret(look, size))
        unnoticed();
    printf("zeroed\n");
    exit(0);
}

/* ---- correct programs that must run to the end --------------------------- */

static __attribute__((noreturn)) void correct(void)
{
    printf("ok\n");
    exit(0);
}

static void reuse_freed_blocks(void)
{
    size_t sizes[] = { SMALL, 48, 4096, MEDIUM, LARGE };
    for (int round = 0; round < 200; round++)
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            char *p = must_malloc(sizes[i]);
            memset(p, round, sizes[i]);
            free(p);
        }
    correct();
}

static void zero_sizes(void)
{
    for (int i = 0; i < 1000; i++) {
        char *p = must_malloc(0), *q = realloc(must_malloc(24), 0);
        (void)memcmp(p, p, 0);
        free(p);
        free(q);
    }
    correct();
}

/* Every usable byte written, as malloc_usable_size allows, in random sizes. */
static void whole_usable_size(void)
{
    uint64_t rng = 42;
    char *held[512] = { 0 };
    for (int i = 0; i < 200000; i++) {
        unsigned slot = (unsigned)(rng_next(&rng) % 512);
        free(held[slot]);
        size_t size = (size_t)1 << (rng_next(&rng) % 18);
        held[slot] = must_malloc(size + rng_next(&rng) % size);
        memset(held[slot], JUNK, malloc_usable_size(held[slot]));
    }
    for (int i = 0; i < 512; i++)
        free(held[i]);
    correct();
}

/* ---- the cases ------------------------------------------------------------ */

/* MUST: with hmm's default options (and check=full, zero_on_free=true,
 * and with the heap profiler on, whose frees take the slow push) the case
 * ends with hmm's one line and abort (make check asserts it);
 * MUST_UNNAMED: so too, but the line need not name the pointer: a write
 * after free of a cached block is found at a later malloc, when the block
 * has been handed out again;
 * SCRUBBED: zero_on_free=true leaves no old data (check=full junks only a
 * block's first 256 bytes); CORRECT: a correct program, which runs clean under
 * every option. */
enum expect { MAY = 0, MUST = 1, MUST_UNNAMED = 2, SCRUBBED = 3, CORRECT = 4 };

struct misuse {
    const char *name;
    void (*run)(size_t size, size_t bytes, int variant);
    size_t size, bytes;
    int variant;
    enum expect expect;
};

static void run_double(size_t size, size_t bytes, int variant) { (void)bytes; double_free(size, variant); }
static void run_wild(size_t size, size_t bytes, int variant) { (void)size; (void)bytes; wild_free(variant); }
static void run_interior(size_t size, size_t bytes, int variant) { (void)variant; interior_free(size, bytes); }
static void run_forged(size_t size, size_t bytes, int variant) { (void)bytes; forged_free(size, variant); }
static void run_waf(size_t size, size_t bytes, int variant) { (void)bytes; (void)variant; write_after_free(size); }
static void run_under_churn(size_t size, size_t bytes, int variant) { (void)bytes; (void)variant; underflow_then_churn(size); }
static void run_waf_past_links(size_t size, size_t bytes, int variant) { (void)bytes; (void)variant; write_after_free_past_links(size); }
static void run_waf_many(size_t size, size_t bytes, int variant) { (void)bytes; (void)variant; write_after_free_of_many(size); }
static void run_waf_handed(size_t size, size_t bytes, int variant) { (void)bytes; (void)variant; write_after_free_handed_back(size); }
static void run_secret(size_t size, size_t bytes, int variant) { (void)bytes; secret_left(size, variant); }
static void run_over(size_t size, size_t bytes, int variant) { overrun(size, bytes, true, (enum after)variant); }
static void run_under(size_t size, size_t bytes, int variant) { overrun(size, bytes, false, (enum after)variant); }
static void run_reuse(size_t size, size_t bytes, int variant) { (void)size; (void)bytes; (void)variant; reuse_freed_blocks(); }
static void run_zero(size_t size, size_t bytes, int variant) { (void)size; (void)bytes; (void)variant; zero_sizes(); }
static void run_usable(size_t size, size_t bytes, int variant) { (void)size; (void)bytes; (void)variant; whole_usable_size(); }

/* The three sizes of overrun, each with no free (never required), a free
 * of the damaged block, and that and a free of its neighbour. */
#define OVERRUNS(dir, run, sz, SZ, must1, must32, must1M)                                          \
    { dir "_1_" sz "_nofree", run, SZ, 1, NO_FREE, MAY },                                          \
    { dir "_1_" sz "_free", run, SZ, 1, FREE_DAMAGED, must1 },                                     \
    { dir "_1_" sz "_free_both", run, SZ, 1, FREE_BOTH, must1 },                                   \
    { dir "_32_" sz "_nofree", run, SZ, 32, NO_FREE, MAY },                                        \
    { dir "_32_" sz "_free", run, SZ, 32, FREE_DAMAGED, must32 },                                  \
    { dir "_32_" sz "_free_both", run, SZ, 32, FREE_BOTH, must32 },                                \
    { dir "_1M_" sz "_nofree", run, SZ, MIB, NO_FREE, MAY },                                       \
    { dir "_1M_" sz "_free", run, SZ, MIB, FREE_DAMAGED, must1M },                                 \
    { dir "_1M_" sz "_free_both", run, SZ, MIB, FREE_BOTH, must1M }

static const struct misuse cases[] = {
    { "double_free_small", run_double, SMALL, 0, 0, MUST },
    { "double_free_medium", run_double, MEDIUM, 0, 0, MUST },
    { "double_free_large", run_double, LARGE, 0, 0, MUST },
    { "double_free_small_other_between", run_double, SMALL, 0, 1, MUST },
    { "double_free_medium_other_between", run_double, MEDIUM, 0, 1, MUST },
    { "wild_free_stack", run_wild, 0, 0, 0, MUST },
    { "wild_free_global", run_wild, 0, 0, 1, MUST },
    { "wild_free_mmap", run_wild, 0, 0, 2, MUST },
    { "wild_free_random", run_wild, 0, 0, 3, MUST },
    { "interior_free_small", run_interior, SMALL, 16, 0, MUST },
    { "interior_free_small_unaligned", run_interior, SMALL, 8, 0, MUST },
    { "interior_free_medium", run_interior, MEDIUM, 4096, 0, MUST },
    { "interior_free_large", run_interior, LARGE, 65536, 0, MUST },
    { "forged_free_small", run_forged, SMALL, 0, 0, MUST },
    { "forged_free_medium", run_forged, MEDIUM, 0, 0, MUST },
    { "forged_free_large", run_forged, LARGE, 0, 0, MUST },
    { "forged_free_small_static", run_forged, SMALL, 0, 1, MUST },
    OVERRUNS("overflow", run_over, "small", SMALL, MUST, MUST, MAY),
    OVERRUNS("overflow", run_over, "medium", MEDIUM, MUST, MUST, MUST),
    OVERRUNS("overflow", run_over, "large", LARGE, MUST, MUST, MUST),
    OVERRUNS("underflow", run_under, "small", SMALL, MAY, MUST, MAY),
    OVERRUNS("underflow", run_under, "medium", MEDIUM, MUST, MUST, MAY),
    OVERRUNS("underflow", run_under, "large", LARGE, MUST, MUST, MAY),
    { "underflow_1_small_free_then_churn", run_under_churn, SMALL, 0, 0, MUST },
    { "write_after_free_small", run_waf, SMALL, 0, 0, MUST_UNNAMED },
    { "write_after_free_small_of_many", run_waf_many, SMALL, 0, 0, MUST },
    { "write_after_free_small_handed_back", run_waf_handed, 2 * SMALL, 0, 0, MUST_UNNAMED },
    { "write_after_free_medium", run_waf, MEDIUM, 0, 0, MUST },
    { "write_after_free_medium_past_links", run_waf_past_links, MEDIUM, 0, 0, MUST },
    { "write_after_free_large", run_waf, LARGE, 0, 0, MUST },
    { "secret_in_freed_small", run_secret, SMALL, 0, 0, SCRUBBED },
    { "secret_in_freed_medium", run_secret, MEDIUM, 0, 0, SCRUBBED },
    { "secret_in_freed_large", run_secret, LARGE, 0, 0, SCRUBBED },
    { "secret_in_new_small", run_secret, SMALL, 0, 1, SCRUBBED },
    { "secret_in_new_medium", run_secret, MEDIUM, 0, 1, SCRUBBED },
    { "secret_in_new_large", run_secret, LARGE, 0, 1, SCRUBBED },
    { "correct_reuse_freed_blocks", run_reuse, 0, 0, 0, CORRECT },
    { "correct_zero_sizes", run_zero, 0, 0, 0, CORRECT },
    { "correct_whole_usable_size", run_usable, 0, 0, 0, CORRECT },
};

#define CASE_COUNT (sizeof(cases) / sizeof(cases[0]))

/* ---- the parent ----------------------------------------------------------- */

enum outcome { MISSED, CRASH, MESSAGE, ZEROED, RAN_CLEAN };

static const char *outcome_names[] = { "missed", "crash", "message", "zeroed", "ran-clean" };

static enum outcome classify(const struct child *c)
{
    if (strstr(c->out, "unnoticed") != NULL || child_exited(c, 2) ||
        (WIFSIGNALED(c->status) && WTERMSIG(c->status) == SIGALRM))
        return MISSED;
    if (child_exited(c, 0))
        return strstr(c->out, "ok\n") ? RAN_CLEAN : strstr(c->out, "zeroed") ? ZEROED : CRASH;
    if (child_aborted(c) && c->err_len > 0)
        return MESSAGE;
    return CRASH;
}

static void run_case(struct child *c, const struct misuse *m, const char *options)
{
    child_self(c, options, "case", m->name, NULL);
}

/* A MUST case: SIGABRT after one "hmm: " line that names the pointer, or
 * the 1 MiB chunk that holds it (a free chunk has no blocks), when named. */
static const char *must_failure(const struct child *c, bool named_ptr)
{
    void *ptr = NULL;
    char named[2][32];
    const char *line = strstr(c->out, "ptr ");
    if (line)
        sscanf(line + 4, "%p", &ptr);
    snprintf(named[0], sizeof(named[0]), "%p ", ptr);
    snprintf(named[1], sizeof(named[1]), "%p ", (void *)((uintptr_t)ptr & ~(MIB - 1)));
    if (!child_aborted(c))
        return "did not end with SIGABRT";
    if (count_lines(c->err) != 1 || strncmp(c->err, "hmm: ", 5) != 0)
        return "not exactly one 'hmm: ' line on stderr";
    if (named_ptr && ptr != NULL && !strstr(c->err, named[0]) && !strstr(c->err, named[1]))
        return "the line does not name the pointer";
    return NULL;
}

static bool zeroing(const char *options)
{
    return options != NO_OPTIONS && strcmp(options, "zero_on_free=true") == 0;
}

/* Whether make check asserts how the case ends under options.  With the
 * profiler on (it loads libunwind) the heap is laid out otherwise, and a
 * 1 MiB overrun may run off its end before any free; blocks freed by
 * another thread travel one by one, not as chains; and a sampled block
 * leaves the cache at its free, so the one written after free among many
 * may have merged into a larger free block, where the junk is harmless. */
static bool profiler_changes_the_case(const struct misuse *m)
{
    return m->bytes == MIB || m->run == run_waf_handed || m->run == run_waf_many;
}

static bool asserted(const struct misuse *m, const char *options)
{
    if (options != NO_OPTIONS && strncmp(options, "prof=", 5) == 0 && profiler_changes_the_case(m))
        return false;
    return m->expect == MUST || m->expect == MUST_UNNAMED || m->expect == CORRECT ||
           (m->expect == SCRUBBED && zeroing(options));
}

/* Why an asserted case did not end as expected, or NULL. */
static const char *expectation_failure(const struct misuse *m, const struct child *c)
{
    switch (m->expect) {
    case MUST:
        return must_failure(c, true);
    case MUST_UNNAMED:
        return must_failure(c, false);
    case SCRUBBED:
        return classify(c) == ZEROED && c->err_len == 0 ? NULL : "old data left in freed or new memory";
    case CORRECT:
        return classify(c) == RAN_CLEAN && c->err_len == 0 ? NULL : "a correct program did not run clean";
    default:
        return NULL;
    }
}

static int assert_hmm(void)
{
    const char *lib = getenv("HMM_LIB");
    if (lib == NULL || access(lib, R_OK) != 0) {
        printf("SKIP: HMM_LIB not set or not readable\n");
        return TEST_SKIP;
    }
    setenv("LD_PRELOAD", lib, 1);
    const char *option_sets[] = { NO_OPTIONS, "check=full", "zero_on_free=true", "prof=true,prof_final=false" };
    size_t sets = sizeof(option_sets) / sizeof(option_sets[0]);
    /* Without libunwind the profiler warns once: no case has one line. */
    if (dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL) == NULL) {
        printf("SKIP: the cases under prof=true (no libunwind.so.8)\n");
        sets--;
    }
    int failures = 0;
    static struct child c;
    for (size_t o = 0; o < sets; o++)
        for (size_t i = 0; i < CASE_COUNT; i++) {
            const struct misuse *m = &cases[i];
            if (!asserted(m, option_sets[o]))
                continue;
            run_case(&c, m, option_sets[o]);
            const char *why = expectation_failure(m, &c);
            const char *shown = option_sets[o] ? option_sets[o] : "default";
            if (why) {
                printf("FAIL: %s (%s): %s (%s); stdout [%s] stderr [%s]\n", m->name, shown, why, child_how(&c),
                       c.out, c.err);
                failures++;
            } else {
                printf("PASS: %s (%s): %s", m->name, shown, m->expect == MUST || m->expect == MUST_UNNAMED ? c.err : "as expected\n");
            }
        }
    printf("%d case(s) failed\n", failures);
    return failures ? 1 : 0;
}

static int table(const char *lib, const char *options)
{
    if (lib != NULL && strcmp(lib, "-") != 0)
        setenv("LD_PRELOAD", lib, 1);
    else
        unsetenv("LD_PRELOAD");
    int counts[RAN_CLEAN + 1] = { 0 }, hmm_lines = 0, misuses = 0, false_positives = 0;
    static struct child c;
    for (size_t i = 0; i < CASE_COUNT; i++) {
        run_case(&c, &cases[i], options && *options ? options : NO_OPTIONS);
        enum outcome o = classify(&c);
        if (cases[i].expect == CORRECT) {
            false_positives += o != RAN_CLEAN || c.err_len > 0;
        } else {
            counts[o]++;
            misuses++;
            hmm_lines += o == MESSAGE && strncmp(c.err, "hmm: ", 5) == 0;
        }
        char *nl = strchr(c.err, '\n');
        if (nl)
            *nl = '\0';
        printf("%-36s %-9s %s\n", cases[i].name, outcome_names[o], o == MESSAGE ? c.err : "");
    }
    printf("misuses %d caught %d message %d hmm_message %d zeroed %d missed %d false_positives %d\n",
           misuses, misuses - counts[MISSED], counts[MESSAGE], hmm_lines, counts[ZEROED], counts[MISSED],
           false_positives);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "case") == 0) {
        alarm(20);
        printf("case %s\n", argv[2]);   /* stdio's buffer is taken before the case starts */
        for (size_t i = 0; i < CASE_COUNT; i++)
            if (strcmp(argv[2], cases[i].name) == 0)
                cases[i].run(cases[i].size, cases[i].bytes, cases[i].variant);
        fprintf(stderr, "no case %s\n", argv[2]);
        return 3;
    }
    alarm(TEST_TIMEOUT);
    unsetenv("LD_PRELOAD");
    if (argc >= 2 && strcmp(argv[1], "table") == 0)
        return table(argc > 2 ? argv[2] : NULL, argc > 3 ? argv[3] : NULL);
    return assert_hmm();
}
