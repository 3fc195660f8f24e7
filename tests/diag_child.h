/* Helpers of the diagnostics tests (issue 4): run a program -- usually the
 * test itself again, through /proc/self/exe, so that HMM_OPTIONS is read
 * afresh at its first allocation -- with a chosen HMM_OPTIONS and
 * arguments, and collect its exit status, stdout and stderr.
 *
 * A fork child inherits an allocator that has already read its options, so
 * every case that depends on HMM_OPTIONS re-executes.  Core dumps are off in
 * the child (the abort cases would otherwise leave cores behind). */
#ifndef HMM_DIAG_CHILD_H
#define HMM_DIAG_CHILD_H

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define CHILD_OUT_MAX 65536

struct child {
    int status;                    /* as from waitpid */
    char out[CHILD_OUT_MAX];       /* its stdout */
    char err[CHILD_OUT_MAX];       /* its stderr */
    size_t out_len, err_len;
};

/* Unset: leave HMM_OPTIONS out of the child's environment. */
#define NO_OPTIONS ((const char *)0)

/* Run path with args (args[0] is argv[0], NULL-terminated) and
 * HMM_OPTIONS=options (or without it), and wait for it; fails the test
 * when the child cannot be started. */
static inline void child_run(struct child *c, const char *path, const char *options,
                             char *const args[])
{
    int out[2], err[2];
    pid_t pid;

    memset(c, 0, sizeof(*c));
    CHECK(pipe(out) == 0 && pipe(err) == 0, "pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        struct rlimit no_core = { 0, 0 };
        setrlimit(RLIMIT_CORE, &no_core);
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(out[0]);
        close(out[1]);
        close(err[0]);
        close(err[1]);
        signal(SIGABRT, SIG_DFL);
        if (options)
            setenv("HMM_OPTIONS", options, 1);
        else
            unsetenv("HMM_OPTIONS");
        execv(path, args);
        fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
        _exit(126);
    }
    close(out[1]);
    close(err[1]);
    struct pollfd fds[2] = { { out[0], POLLIN, 0 }, { err[0], POLLIN, 0 } };
    int open_fds = 2;
    while (open_fds > 0) {
        if (poll(fds, 2, -1) < 0) {
            CHECK(errno == EINTR, "poll: %s", strerror(errno));
            continue;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char *buf = i == 0 ? c->out : c->err;
            size_t *len = i == 0 ? &c->out_len : &c->err_len;
            char sink[4096];
            ssize_t n;
            if (*len < CHILD_OUT_MAX - 1)
                n = read(fds[i].fd, buf + *len, CHILD_OUT_MAX - 1 - *len);
            else
                n = read(fds[i].fd, sink, sizeof(sink));
            if (n > 0 && *len < CHILD_OUT_MAX - 1) {
                *len += (size_t)n;
            } else if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            }
        }
    }
    c->out[c->out_len] = '\0';
    c->err[c->err_len] = '\0';
    while (waitpid(pid, &c->status, 0) < 0)
        CHECK(errno == EINTR, "waitpid: %s", strerror(errno));
}

/* The test itself again, with HMM_OPTIONS=options and up to three
 * arguments after argv[0] (pass NULL for the ones left out). */
static inline void child_self(struct child *c, const char *options, const char *a1,
                              const char *a2, const char *a3)
{
    char *args[5] = { (char *)"self", (char *)a1, (char *)(a1 ? a2 : NULL),
                      (char *)(a1 && a2 ? a3 : NULL), NULL };
    child_run(c, "/proc/self/exe", options, args);
}

static inline int child_aborted(const struct child *c)
{
    return WIFSIGNALED(c->status) && WTERMSIG(c->status) == SIGABRT;
}

static inline int child_exited(const struct child *c, int code)
{
    return WIFEXITED(c->status) && WEXITSTATUS(c->status) == code;
}

/* How the child ended, for messages. */
static inline const char *child_how(const struct child *c)
{
    static char text[64];
    if (WIFEXITED(c->status))
        snprintf(text, sizeof(text), "exit %d", WEXITSTATUS(c->status));
    else if (WIFSIGNALED(c->status))
        snprintf(text, sizeof(text), "signal %d (%s)", WTERMSIG(c->status),
                 strsignal(WTERMSIG(c->status)));
    else
        snprintf(text, sizeof(text), "status %#x", c->status);
    return text;
}

/* Number of lines (newline-terminated or not) in text. */
static inline int count_lines(const char *text)
{
    int lines = 0;
    for (const char *p = text; *p; p++)
        if (*p == '\n' || p[1] == '\0')
            lines++;
    return lines;
}

/* The value after "key " on the line of text that starts with "key ", or
 * def when there is none.  Probes print "key value" lines on stdout. */
static inline long long child_value(const struct child *c, const char *key, long long def)
{
    size_t klen = strlen(key);
    for (const char *line = c->out; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
            return strtoll(line + klen + 1, NULL, 0);
    return def;
}

/* Prints the child's HMM_OPTIONS, its stdout, and its stderr if any. */
static inline void child_show(const struct child *c, const char *options)
{
    printf("HMM_OPTIONS=%s\n%s", options ? options : "(unset)", c->out);
    if (c->err_len)
        printf("stderr: %s", c->err);
}

/* A case a child runs by its name. */
struct named_case {
    const char *name;
    void (*run)(void);
};

/* The word after key ("ptr " or "\nat ") in the child's stdout, where it
 * announced a pointer as printed by %p; "" when it did not. */
static inline const char *child_announced(const struct child *c, const char *key, char text[64])
{
    const char *line = strstr(c->out, key);
    text[0] = '\0';
    if (line)
        sscanf(line + strlen(key), "%63s", text);
    return text;
}

/* Why the child is not a clean report of a caller's bug: it must have
 * announced ptr and ended with SIGABRT, with exactly one line on stderr
 * that starts with prefix and names ptr.  NULL when it is. */
static inline const char *one_line_abort_fault(const struct child *c, const char *ptr, const char *prefix)
{
    static char why[128];
    if (!child_aborted(c))
        return "did not end with SIGABRT";
    if (!ptr[0])
        return "the child did not reach the bug";
    if (count_lines(c->err) != 1 || c->err[c->err_len - 1] != '\n')
        return "not exactly one line on stderr";
    if (strncmp(c->err, prefix, strlen(prefix)) != 0) {
        snprintf(why, sizeof(why), "the line does not start with '%s'", prefix);
        return why;
    }
    return strstr(c->err, ptr) ? NULL : "the line does not name the pointer";
}

/* Prints PASS with the child's line, or FAIL with why, how it ended and
 * its output, for the case name; returns 1 when it failed. */
static inline int case_verdict(const char *name, const char *why, const struct child *c)
{
    if (why) {
        printf("FAIL: %s: %s (%s); stdout [%s] stderr [%s]\n", name, why, child_how(c), c->out, c->err);
        return 1;
    }
    printf("PASS: %s: %s", name, c->err);
    return 0;
}

/* The child's side of a case that must not return: runs it (run NULL: no
 * case of that name, exit 2) and says so if the program goes on. */
static inline int child_case_ran(const char *name, void (*run)(void))
{
    if (!run) {
        fprintf(stderr, "no case %s\n", name);
        return 2;
    }
    run();
    printf("the program went on after the bug\n");
    return 0;
}

/* ---- the parent's run of a test's cases ---------------------------------- */

/* The cases a test ran and those that failed; only (argv[1]) picks the
 * cases whose name has it. */
struct tally {
    int ran, failed;
    const char *only;
};

/* The alarm against a hang, line-buffered stdout, and the tally. */
static inline struct tally tally_start(int argc, char **argv)
{
    alarm(TEST_TIMEOUT);
    setvbuf(stdout, NULL, _IOLBF, 0);
    return (struct tally){ 0, 0, argc > 1 ? argv[1] : NULL };
}

/* Whether the case named name runs (a NULL name only without a filter). */
static inline int tally_wants(const struct tally *t, const char *name)
{
    return !t->only || (name && strstr(name, t->only));
}

static inline void tally_add(struct tally *t, int failures, int cases)
{
    t->failed += failures;
    t->ran += cases;
}

/* Prints the count and returns the exit status; no case run fails. */
static inline int tally_end(const struct tally *t)
{
    CHECK(t->ran > 0, "no case matches %s", t->only ? t->only : "");
    printf("%d of %d cases failed\n", t->failed, t->ran);
    return t->failed ? 1 : 0;
}

/* ---- tests/options_probe ------------------------------------------------- */

/* Run tests/options_probe (next to this program) with HMM_OPTIONS=options
 * and the arguments in the space-separated string args. */
static inline void child_probe(struct child *c, const char *options, const char *args)
{
    static char path[4096];
    char words[256], *argv[16];
    int argc = 0;
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 32);
    CHECK(n > 0, "readlink /proc/self/exe");
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    CHECK(slash != NULL, "no directory in %s", path);
    strcpy(slash + 1, "options_probe");
    CHECK(access(path, X_OK) == 0, "%s is not there", path);
    CHECK(strlen(args) < sizeof(words), "too many arguments");
    strcpy(words, args);
    argv[argc++] = path;
    for (char *w = strtok(words, " "); w && argc < 15; w = strtok(NULL, " "))
        argv[argc++] = w;
    argv[argc] = NULL;
    child_run(c, path, options, argv);
}

/* A number with an optional K, M or G suffix. */
static inline long long parse_scaled(const char *s, const char **end)
{
    char *e;
    long long v = strtoll(s, &e, 0);
    if (*e == 'K') v <<= 10, e++;
    else if (*e == 'M') v <<= 20, e++;
    else if (*e == 'G') v <<= 30, e++;
    *end = e;
    return v;
}

/* Check the child's "key value" lines against conditions such as
 * "arena_count == 1; cached_bytes > 64K; junk == junk_of" (operators
 * == != < <= > >=; the right side a number, with K, M or G, or a key).
 * Returns NULL when every condition holds, else the first that does not. */
static inline const char *child_meets(const struct child *c, const char *conditions)
{
    static char failed[256];
    const char *p = conditions;
    while (*p) {
        char key[64];
        char op[3] = "";
        int used = 0;
        while (*p == ' ' || *p == ';')
            p++;
        if (!*p)
            break;
        const char *start = p;
        if (sscanf(p, "%63s %2[=!<>]%n", key, op, &used) != 2)
            return "malformed condition";
        p += used;
        while (*p == ' ')
            p++;
        long long want, got = child_value(c, key, LLONG_MIN);
        if ((*p >= 'a' && *p <= 'z') || *p == '_') {   /* another key */
            char other[64];
            int n = 0;
            if (sscanf(p, "%63[a-z_0-9]%n", other, &n) != 1)
                return "malformed condition";
            p += n;
            want = child_value(c, other, LLONG_MAX);
        } else {
            want = parse_scaled(p, &p);
        }
        int ok = got != LLONG_MIN &&
                 (!strcmp(op, "==") ? got == want : !strcmp(op, "!=") ? got != want :
                  !strcmp(op, "<") ? got < want : !strcmp(op, "<=") ? got <= want :
                  !strcmp(op, ">") ? got > want : !strcmp(op, ">=") ? got >= want : 0);
        if (!ok) {
            size_t len = strcspn(start, ";");
            snprintf(failed, sizeof(failed), "%.*s (got %lld)", (int)len, start, got);
            return failed;
        }
    }
    return NULL;
}

#endif
