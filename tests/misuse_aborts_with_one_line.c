/* Caller bugs stop the program: a double free (of a small, a medium, an
 * aligned and a huge block), a free of a pointer hmm never returned (the
 * stack, the middle of a block) and a realloc of a freed block each end in
 * abort() after one line on stderr that names the call and the pointer.
 * Never silently continue on a corrupted heap (DESIGN.md, Errors).
 *
 * Each case runs in a child process; its stderr is read through a pipe.
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
#include "testutil.h"

static int announce_fd = -1;

/* The child tells the parent which pointer it is about to misuse, so that
 * the parent can look for it in the message. */
static void announce(void *p)
{
    char text[32];
    int len = snprintf(text, sizeof text, "%p", p);
    if (write(announce_fd, text, (size_t)len) != len)
        _exit(3);
    close(announce_fd);
}

static void double_free_small(void)
{
    void *p = hmm_malloc(24);
    announce(p);
    hmm_free(p);
    hmm_free(p);
}

static void double_free_medium(void)
{
    void *p = hmm_malloc(100000);
    announce(p);
    hmm_free(p);
    hmm_free(p);
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

/* Runs one case in a child; returns 1 if it did not abort with a message
 * naming the call and the pointer. */
static int run_case(const struct misuse *m)
{
    int fds[2], ptrfds[2], status;
    char out[4096], ptrtext[64];
    size_t len = 0;
    ssize_t n;
    pid_t pid;
    char *nl;

    CHECK(pipe(fds) == 0 && pipe(ptrfds) == 0, "pipe");
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        close(fds[0]);
        close(ptrfds[0]);
        announce_fd = ptrfds[1];
        dup2(fds[1], 2);
        signal(SIGABRT, SIG_DFL);
        m->run();
        _exit(0);
    }
    close(fds[1]);
    close(ptrfds[1]);
    n = read(ptrfds[0], ptrtext, sizeof ptrtext - 1);
    ptrtext[n > 0 ? n : 0] = '\0';
    close(ptrfds[0]);
    while (len < sizeof out - 1 && (n = read(fds[0], out + len, sizeof out - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(fds[0]);
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid");

    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT) {
        printf("FAIL: %s: the program went on (status %#x); stderr: [%s]\n", m->name, status,
               out);
        return 1;
    }
    if (!strstr(out, m->call)) {
        printf("FAIL: %s: the message does not name %s(): [%s]\n", m->name, m->call, out);
        return 1;
    }
    if (!ptrtext[0] || !strstr(out, ptrtext)) {
        printf("FAIL: %s: the message does not name the pointer %s: [%s]\n", m->name,
               ptrtext, out);
        return 1;
    }
    nl = strchr(out, '\n');
    if (!nl || nl[1] != '\0') {
        printf("FAIL: %s: not exactly one line on stderr: [%s]\n", m->name, out);
        return 1;
    }
    printf("PASS: %s: %s", m->name, out);
    return 0;
}

int main(int argc, char **argv)
{
    size_t i;
    int failures = 0, ran = 0;

    alarm(TEST_TIMEOUT);
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (argc > 1 && !strstr(cases[i].name, argv[1]))
            continue;
        failures += run_case(&cases[i]);
        ran++;
    }
    CHECK(ran > 0, "no case matches");
    CHECK(hmm_check() == 0, "hmm_check() failed in the parent");
    printf("%d of %d cases failed\n", failures, ran);
    return failures ? 1 : 0;
}
