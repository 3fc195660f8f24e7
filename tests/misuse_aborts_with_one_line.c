/* Caller bugs stop the program: a double free (of a small, a medium, an
 * aligned and a huge block), a free of a pointer hmm never returned (the
 * stack, the middle of a block) and a realloc of a freed block each end in
 * abort() after one line on stderr that names the call and the pointer.
 * Never silently continue on a corrupted heap (DESIGN.md, Errors).
 *
 * Each case runs in a child (this program again, tests/diag_child.h).
 * Uses the hmm_* names only. */
#include "config.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hmm.h"
#include "diag_child.h"

/* The child tells the parent which pointer it is about to misuse, so that
 * the parent can look for it in the message. */
static void announce(const void *p)
{
    printf("ptr %p\n", p);
    fflush(stdout);
}

static void double_free_of(size_t size)
{
    void *p = hmm_malloc(size);
    announce(p);
    hmm_free(p);
    hmm_free(p);
}

static void double_free_small(void)
{
    double_free_of(24);
}

static void double_free_medium(void)
{
    double_free_of(100000);
}

static void double_free_after_other_frees(void)
{
    /* the block sits in the thread cache between two others */
    void *a = hmm_malloc(48), *p = hmm_malloc(48), *b = hmm_malloc(48);
    announce(p);
    hmm_free(a);
    hmm_free(p);
    hmm_free(b);
    hmm_free(p);
}

static void double_free_aligned(void)
{
    void *p = hmm_memalign(4096, 5000);
    announce(p);
    hmm_free(p);
    hmm_free(p);
}

static void double_free_huge(void)
{
    void *p = hmm_malloc(40u << 20);
    void *keep = hmm_malloc(40u << 20);   /* so that the address is not reused */
    announce(p);
    hmm_free(p);
    hmm_free(p);
    hmm_free(keep);
}

static void free_of_stack_pointer(void)
{
    char on_stack[64];
    announce(on_stack + 16);
    hmm_free(on_stack + 16);
}

static void free_of_interior_pointer(void)
{
    char *p = hmm_malloc(1000);
    announce(p + 64);
    hmm_free(p + 64);
}

static void realloc_of_freed_block(void)
{
    void *p = hmm_malloc(200);
    announce(p);
    hmm_free(p);
    p = hmm_realloc(p, 400);
    (void)p;
}

struct misuse {
    const char *name;
    void (*run)(void);
    const char *call;   /* the call the message must name */
};

static const struct misuse cases[] = {
    { "double_free_small", double_free_small, "free" },
    { "double_free_medium", double_free_medium, "free" },
    { "double_free_after_other_frees", double_free_after_other_frees, "free" },
    { "double_free_aligned", double_free_aligned, "free" },
    { "double_free_huge", double_free_huge, "free" },
    { "free_of_stack_pointer", free_of_stack_pointer, "free" },
    { "free_of_interior_pointer", free_of_interior_pointer, "free" },
    { "realloc_of_freed_block", realloc_of_freed_block, "realloc" },
};

/* Runs one case in a child (this program again, with HMM_OPTIONS as it
 * is); returns 1 if it did not abort with one line naming the call and
 * the pointer. */
static int run_case(const struct misuse *m)
{
    struct child c;
    char ptr[64];
    child_self(&c, getenv("HMM_OPTIONS"), "case", m->name, NULL);
    child_announced(&c, "ptr ", ptr);
    const char *why = one_line_abort_fault(&c, ptr, "hmm: ");
    if (!why && !strstr(c.err, m->call))
        why = "the line does not name the call";
    return case_verdict(m->name, why, &c);
}

static void (*case_named(const char *name))(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (!strcmp(name, cases[i].name))
            return cases[i].run;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "case") == 0)
        return child_case_ran(argv[2], case_named(argv[2]));
    struct tally t = tally_start(argc, argv);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (tally_wants(&t, cases[i].name))
            tally_add(&t, run_case(&cases[i]), 1);
    CHECK(hmm_check() == 0, "hmm_check() failed in the parent");
    return tally_end(&t);
}
