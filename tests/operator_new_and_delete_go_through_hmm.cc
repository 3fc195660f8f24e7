/* C++ operator new and delete, every form, are hmm's (lib/new.c), in a
 * C++ program linked with libhmm:
 *
 *  - each of the 20 operators resolves to libhmm (dladdr), and blocks of
 *    every form, from 1 byte to 8 MiB, are hmm's (malloc_usable_size,
 *    hmm_check) and come back through the matching delete;
 *  - aligned new honours 64, 4096 and 1 MiB;
 *  - new of an impossible size throws std::bad_alloc, after calling the
 *    program's new_handler until it removes itself; nothrow returns nullptr;
 *  - a double delete, a sized delete with a size larger than the block and
 *    an aligned delete of a pointer not so aligned each end the program with
 *    one line "hmm: operator delete(): ..." (or delete[]) and abort; each
 *    runs in a child (this program again, "case NAME").
 *
 * Skips in a --disable-cxx or --disable-override build. */
#include "config.h"

#include <cstddef>
#include <dlfcn.h>
#include <malloc.h>
#include <new>
#include <stdint.h>
#include <string.h>

#include "hmm.h"
#include "diag_child.h"

#define ALIGN(a) static_cast<std::align_val_t>(a)

static const std::size_t impossible = SIZE_MAX / 2;

/* The compiler must neither drop nor fold a new and its delete. */
static void *escape(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
    return p;
}

/* ---- every operator is libhmm's ------------------------------------------ */

struct form {
    const char *name;
    void *address;
};

#define FORM(type, op) { #op " " #type, reinterpret_cast<void *>(static_cast<type>(&::op)) }
typedef const std::nothrow_t &nt;
static const struct form forms[] = {
    FORM(void *(*)(std::size_t), operator new),
    FORM(void *(*)(std::size_t), operator new[]),
    FORM(void *(*)(std::size_t, nt), operator new),
    FORM(void *(*)(std::size_t, nt), operator new[]),
    FORM(void *(*)(std::size_t, std::align_val_t), operator new),
    FORM(void *(*)(std::size_t, std::align_val_t), operator new[]),
    FORM(void *(*)(std::size_t, std::align_val_t, nt), operator new),
    FORM(void *(*)(std::size_t, std::align_val_t, nt), operator new[]),
    FORM(void (*)(void *), operator delete),
    FORM(void (*)(void *), operator delete[]),
    FORM(void (*)(void *, nt), operator delete),
    FORM(void (*)(void *, nt), operator delete[]),
    FORM(void (*)(void *, std::size_t), operator delete),
    FORM(void (*)(void *, std::size_t), operator delete[]),
    FORM(void (*)(void *, std::align_val_t), operator delete),
    FORM(void (*)(void *, std::align_val_t), operator delete[]),
    FORM(void (*)(void *, std::align_val_t, nt), operator delete),
    FORM(void (*)(void *, std::align_val_t, nt), operator delete[]),
    FORM(void (*)(void *, std::size_t, std::align_val_t), operator delete),
    FORM(void (*)(void *, std::size_t, std::align_val_t), operator delete[]),
};

static int every_form_is_libhmms(void)
{
    int failed = 0;
    for (const struct form &f : forms) {
        Dl_info info;
        const char *file = dladdr(f.address, &info) && info.dli_fname ? info.dli_fname : "(none)";
        if (!strstr(file, "libhmm")) {
            printf("FAIL: %s resolves to %s, not libhmm\n", f.name, file);
            failed++;
        }
    }
    printf("%s: %zu operators resolve to libhmm\n", failed ? "FAIL" : "PASS",
           sizeof(forms) / sizeof(forms[0]) - failed);
    return failed;
}

/* ---- blocks of every form are hmm's -------------------------------------- */

static void check_block(void *p, std::size_t size, std::size_t alignment)
{
    CHECK(p != NULL, "new(%zu) returned NULL", size);
    CHECK(malloc_usable_size(p) >= size, "usable %zu < %zu", malloc_usable_size(p), size);
    CHECK((uintptr_t)p % alignment == 0, "%p is not aligned to %zu", p, alignment);
    memset(escape(p), 0xa5, size);
}

static void plain_forms(std::size_t size)
{
    void *p[6] = { ::operator new(size), ::operator new[](size),
                   ::operator new(size, std::nothrow), ::operator new[](size, std::nothrow),
                   ::operator new(size), ::operator new[](size) };
    for (void *block : p)
        check_block(block, size, alignof(std::max_align_t));
    CHECK(hmm_check() == 0, "hmm_check() after new(%zu)", size);
    ::operator delete(p[0]);
    ::operator delete[](p[1]);
    ::operator delete(p[2], std::nothrow);
    ::operator delete[](p[3], std::nothrow);
    ::operator delete(p[4], size);
    ::operator delete[](p[5], size);
}

static void aligned_forms(std::size_t size, std::size_t alignment)
{
    std::align_val_t al = ALIGN(alignment);
    void *p[6] = { ::operator new(size, al), ::operator new[](size, al),
                   ::operator new(size, al, std::nothrow), ::operator new[](size, al, std::nothrow),
                   ::operator new(size, al), ::operator new[](size, al) };
    for (void *block : p)
        check_block(block, size, alignment);
    CHECK(hmm_check() == 0, "hmm_check() after new(%zu, %zu)", size, alignment);
    ::operator delete(p[0], al);
    ::operator delete[](p[1], al);
    ::operator delete(p[2], al, std::nothrow);
    ::operator delete[](p[3], al, std::nothrow);
    ::operator delete(p[4], size, al);
    ::operator delete[](p[5], size, al);
}

static int blocks_of_every_form_are_hmms(void)
{
    static const std::size_t sizes[] = { 0, 1, 24, 100, 5000, 70000, 300000, (std::size_t)8 << 20 };
    static const std::size_t alignments[] = { 64, 4096, (std::size_t)1 << 20 };
    for (std::size_t size : sizes) {
        plain_forms(size);
        for (std::size_t alignment : alignments)
            aligned_forms(size, alignment);
    }
    CHECK(hmm_check() == 0, "hmm_check() after every delete");
    printf("PASS: new and delete of every form, 0 B to 8 MiB, aligned to 64 B, 4 KiB and 1 MiB\n");
    return 0;
}

/* ---- out of memory --------------------------------------------------------- */

template <typename New> static bool throws_bad_alloc(New call)
{
    try {
        escape(call());
    } catch (const std::bad_alloc &) {
        return true;
    }
    return false;
}

static int impossible_sizes_throw_or_return_null(void)
{
    CHECK(throws_bad_alloc([] { return ::operator new(impossible); }), "new");
    CHECK(throws_bad_alloc([] { return ::operator new[](impossible); }), "new[]");
    CHECK(throws_bad_alloc([] { return ::operator new(impossible, ALIGN(4096)); }), "aligned new");
    CHECK(throws_bad_alloc([] { return ::operator new[](impossible, ALIGN(4096)); }), "aligned new[]");
    CHECK(::operator new(impossible, std::nothrow) == nullptr, "nothrow new");
    CHECK(::operator new[](impossible, std::nothrow) == nullptr, "nothrow new[]");
    CHECK(::operator new(impossible, ALIGN(64), std::nothrow) == nullptr, "aligned nothrow new");
    CHECK(::operator new[](impossible, ALIGN(64), std::nothrow) == nullptr, "aligned nothrow new[]");
    printf("PASS: new of %zu bytes throws std::bad_alloc, nothrow returns nullptr\n", impossible);
    return 0;
}

static int handler_calls;

/* Gives up on its third call, as a handler that has nothing left to free. */
static void give_up_on_third_call(void)
{
    if (++handler_calls == 3)
        std::set_new_handler(nullptr);
}

static int new_handler_runs_before_the_throw(void)
{
    std::set_new_handler(give_up_on_third_call);
    CHECK(throws_bad_alloc([] { return ::operator new(impossible); }), "new with a handler");
    CHECK(handler_calls == 3, "the new_handler ran %d times, not 3", handler_calls);
    handler_calls = 0;
    std::set_new_handler(give_up_on_third_call);
    CHECK(throws_bad_alloc([] { return ::operator new[](impossible, ALIGN(64)); }), "aligned new[]");
    CHECK(handler_calls == 3, "the new_handler ran %d times for aligned new[], not 3", handler_calls);
    printf("PASS: the new_handler ran 3 times, then std::bad_alloc\n");
    return 0;
}

/* ---- caller bugs: one line and abort --------------------------------------- */

static void *announced(void *p)
{
    printf("ptr %p\n", p);
    fflush(stdout);
    return escape(p);
}

/* Read back through a volatile: the compiler sees no use after delete. */
static void double_delete(void)
{
    void *volatile p = announced(::operator new(48));
    ::operator delete(p);
    ::operator delete(p);
}

static void double_array_delete(void)
{
    void *volatile p = announced(::operator new[](48));
    ::operator delete[](p);
    ::operator delete[](p);
}

static void sized_delete_too_large(void)
{
    ::operator delete(announced(::operator new(100)), 4096);
}

static void sized_array_delete_too_large(void)
{
    ::operator delete[](announced(::operator new[](100)), 4096);
}

static void sized_aligned_delete_too_large(void)
{
    ::operator delete(announced(::operator new(100, ALIGN(64))), 4096, ALIGN(64));
}

/* A 64-aligned block that is not 4096-aligned, deleted as 4096-aligned. */
static void aligned_delete_misaligned(void)
{
    void *p = ::operator new(100, ALIGN(64));
    while ((uintptr_t)p % 4096 == 0)
        p = ::operator new(100, ALIGN(64));
    ::operator delete(announced(p), ALIGN(4096));
}

struct bug {
    const char *name;
    void (*run)(void);
    const char *prefix;    /* the line starts so */
    const char *says;      /* and holds this */
};

static const struct bug bugs[] = {
    { "double_delete", double_delete, "hmm: operator delete(): ", "" },
    { "double_array_delete", double_array_delete, "hmm: operator delete[](): ", "" },
    { "sized_delete_too_large", sized_delete_too_large, "hmm: operator delete(): ",
      "size 4096 is larger than the block" },
    { "sized_array_delete_too_large", sized_array_delete_too_large, "hmm: operator delete[](): ",
      "size 4096 is larger than the block" },
    { "sized_aligned_delete_too_large", sized_aligned_delete_too_large, "hmm: operator delete(): ",
      "size 4096 is larger than the block" },
    { "aligned_delete_misaligned", aligned_delete_misaligned, "hmm: operator delete(): ",
      "is not aligned to 4096" },
};

static int bug_aborts_with_one_line(const struct bug &b)
{
    struct child c;
    char ptr[64] = "";
    child_self(&c, NULL, "case", b.name, NULL);
    child_announced(&c, "ptr ", ptr);
    const char *why = one_line_abort_fault(&c, ptr, b.prefix);
    if (!why && !strstr(c.err, b.says))
        why = "the line does not say what was wrong";
    return case_verdict(b.name, why, &c);
}

int main(int argc, char **argv)
{
#if !defined(HMM_CXX) || !defined(HMM_OVERRIDE)
    (void)argc;
    (void)argv;
    printf("SKIP: built with --disable-cxx or --disable-override: no operator new in libhmm\n");
    return TEST_SKIP;
#else
    if (argc == 3 && strcmp(argv[1], "case") == 0) {
        void (*run)(void) = NULL;
        for (const struct bug &b : bugs)
            if (!strcmp(argv[2], b.name))
                run = b.run;
        return child_case_ran(argv[2], run);
    }
    struct tally t = tally_start(argc, argv);
    tally_add(&t, every_form_is_libhmms(), sizeof(forms) / sizeof(forms[0]));
    tally_add(&t, blocks_of_every_form_are_hmms(), 1);
    tally_add(&t, impossible_sizes_throw_or_return_null(), 1);
    tally_add(&t, new_handler_runs_before_the_throw(), 1);
    for (const struct bug &b : bugs)
        tally_add(&t, bug_aborts_with_one_line(b), 1);
    return tally_end(&t);
#endif
}
