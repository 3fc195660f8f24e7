/* A free of a pointer hmm did not return ends in one line and abort(),
 * never in SIGSEGV inside the free fast path (hmm(3): "any pointer hmm did
 * not return").  The fast path reads the header below the pointer, so each
 * case aims where that read could fault or mislead:
 *
 *  - free((void *)1): an address in the unmapped first page;
 *  - free(p + 1 GiB), p a live block: far above the heap, unmapped;
 *  - a pointer 8 bytes into a page whose neighbour below is unmapped (mmap
 *    two pages, munmap the first): its "header" straddles the hole;
 *  - free(p + 8) and free(p + 16) of a live block: inside hmm's heap.
 *
 * Each case runs in a child (this program again, "case NAME") that must end
 * with SIGABRT after exactly one line "hmm: free(): ... %p ..." naming the
 * pointer. */
#include "config.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "hmm.h"
#include "diag_child.h"

static void *live_block(void)
{
    char *p = hmm_malloc(64);
    CHECK(p != NULL, "malloc(64)");
    memset(p, 0, 64);
    return p;
}

static void *one(void)
{
    return (void *)1;
}

static void *gib_above_block(void)
{
    return (char *)live_block() + ((size_t)1 << 30);
}

static void *page_above_hole(void)
{
    long page = sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED, "mmap");
    CHECK(munmap(m, (size_t)page) == 0, "munmap");
    return m + page + 8;
}

static void *block_plus_8(void)
{
    return (char *)live_block() + 8;
}

static void *block_plus_16(void)
{
    return (char *)live_block() + 16;
}

static const struct wild {
    const char *name;
    void *(*pointer)(void);
} cases[] = {
    { "one", one },
    { "gib_above_block", gib_above_block },
    { "page_above_hole", page_above_hole },
    { "block_plus_8", block_plus_8 },
    { "block_plus_16", block_plus_16 },
};

static void run_case(const struct wild *w)
{
    void *keep = live_block();   /* the thread is bound and its cache in use */
    hmm_free(live_block());
    void *p = w->pointer();
    printf("ptr %p\n", p);
    fflush(stdout);
    hmm_free(p);
    printf("the program went on after the bug\n");
    hmm_free(keep);
    exit(0);
}

static int check_case(const struct wild *w)
{
    struct child c;
    char ptr[64] = "";
    child_self(&c, NULL, "case", w->name, NULL);
    child_announced(&c, "ptr ", ptr);
    return case_verdict(w->name, one_line_abort_fault(&c, ptr, "hmm: free(): "), &c);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    size_t count = sizeof(cases) / sizeof(cases[0]);
    if (argc == 3 && strcmp(argv[1], "case") == 0) {
        for (size_t i = 0; i < count; i++)
            if (!strcmp(argv[2], cases[i].name))
                run_case(&cases[i]);
        fprintf(stderr, "no case %s\n", argv[2]);
        return 2;
    }
    alarm(TEST_TIMEOUT);
    int failures = 0;
    for (size_t i = 0; i < count; i++)
        failures += check_case(&cases[i]);
    printf("%d of %zu wild frees did not end in one line\n", failures, count);
    return failures ? 1 : 0;
}
