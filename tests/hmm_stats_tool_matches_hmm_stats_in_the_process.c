/* hmm-stats PID (tools/hmm-stats) shows a running process's statistics,
 * and they are the ones the process gets from hmm_stats_print: the test
 * re-executes itself with HMM_OPTIONS=stats_signal=..., four threads
 * allocate and hold their blocks, the main thread prints its own
 * statistics (text and JSON) and runs hmm-stats on its own pid, which must
 * print the same bytes (cache_size=0: the calling thread's cache is the one
 * difference between two callers).  A process started without
 * stats_signal is not sent the signal (an uncaught SIGUSR1 would kill it):
 * hmm-stats says why in one line and fails; one that catches the signal
 * named by -s but never answers makes it give up after -t seconds. */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag_child.h"
#include "hmm.h"

#define HOLDERS 4

static pthread_barrier_t held, release;

static void *holder(void *arg)
{
    size_t n = (size_t)(uintptr_t)arg;
    void *small = hmm_malloc(100 * n), *large = hmm_malloc(50000 * n);
    CHECK(small && large, "malloc");
    pthread_barrier_wait(&held);
    pthread_barrier_wait(&release);
    hmm_free(small);
    hmm_free(large);
    return NULL;
}

static const char *tool_path(void)
{
    static char path[4096];
    const char *env = getenv("HMM_STATS_TOOL");
    if (env != NULL)
        return env;
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 32);
    CHECK(n > 0, "readlink /proc/self/exe");
    path[n] = '\0';
    strcpy(strrchr(path, '/') + 1, "../tools/hmm-stats");
    return path;
}

/* hmm-stats [--json] on this process; run by shell when not NULL (the
 * script is sh, and a user may start it with bash). */
static void run_tool(struct child *c, const char *format, const char *shell)
{
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    char *args[] = { (char *)(shell ? shell : "hmm-stats"), (char *)tool_path(),
                     (char *)(strcmp(format, "json") ? "--" : "--json"), pid, NULL };
    if (shell == NULL)
        memmove(&args[1], &args[2], 3 * sizeof(args[0]));
    child_run(c, shell ? shell : tool_path(), NO_OPTIONS, args);
}

/* What hmm_stats_print writes in this process. */
static void own_stats(const char *format, char *out, size_t cap)
{
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    CHECK(hmm_stats_print(fds[1], format) == 0, "hmm_stats_print");
    close(fds[1]);
    ssize_t n = read(fds[0], out, cap - 1);
    CHECK(n > 0, "read");
    out[n] = '\0';
    close(fds[0]);
}

static int compare(const char *format, const char *shell)
{
    static struct child tool;
    static char own[CHILD_OUT_MAX];
    own_stats(format, own, sizeof(own));
    run_tool(&tool, format, shell);
    const char *by = shell ? shell : "sh";
    if (!child_exited(&tool, 0) || strcmp(tool.out, own) != 0) {
        printf("FAIL: hmm-stats (%s, by %s): %s, stderr [%s]\n  hmm-stats printed [%s]\n  the process has [%s]\n",
               format, by, child_how(&tool), tool.err, tool.out, own);
        return 1;
    }
    printf("PASS: hmm-stats (%s, by %s) printed what hmm_stats_print has:\n%s", format, by, tool.out);
    return 0;
}

/* The process hmm-stats looks at: HOLDERS threads hold blocks meanwhile. */
static int serve(void)
{
    pthread_t t[HOLDERS];
    CHECK(pthread_barrier_init(&held, NULL, HOLDERS + 1) == 0, "barrier");
    CHECK(pthread_barrier_init(&release, NULL, HOLDERS + 1) == 0, "barrier");
    for (size_t i = 0; i < HOLDERS; i++)
        CHECK(pthread_create(&t[i], NULL, holder, (void *)(i + 1)) == 0, "pthread_create");
    pthread_barrier_wait(&held);
    struct hmm_stats s;
    hmm_stats(&s);
    int failures = compare("json", NULL) + compare("text", NULL) + compare("text", "/bin/bash");
    if (s.arena_count < HOLDERS) {
        printf("FAIL: %u arenas, expected at least %d\n", s.arena_count, HOLDERS);
        failures++;
    }
    pthread_barrier_wait(&release);
    for (int i = 0; i < HOLDERS; i++)
        pthread_join(t[i], NULL);
    return failures ? 1 : 0;
}

/* Without stats_signal: one line naming the option, and this process lives. */
static int refused(void)
{
    static struct child tool;
    hmm_free(hmm_malloc(100));
    run_tool(&tool, "text", NULL);
    if (child_exited(&tool, 0) || count_lines(tool.err) != 1 || !strstr(tool.err, "stats_signal") ||
        tool.out_len != 0) {
        printf("FAIL: hmm-stats on a process without stats_signal: %s, stdout [%s], stderr [%s]\n",
               child_how(&tool), tool.out, tool.err);
        return 1;
    }
    printf("PASS: hmm-stats on a process without stats_signal: %s", tool.err);
    return 0;
}

static void on_usr1(int sig)
{
    (void)sig;
}

/* hmm-stats ARGS... PID: its exit code and its one line on stderr. */
static int tool_fails(const char *a1, const char *a2, const char *a3, const char *a4, int code, const char *says)
{
    static struct child tool;
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    char *args[] = { (char *)"hmm-stats", (char *)a1, (char *)a2, (char *)a3, (char *)a4, pid, NULL };
    child_run(&tool, tool_path(), NO_OPTIONS, args);
    if (!child_exited(&tool, code) || count_lines(tool.err) < 1 || !strstr(tool.err, says) || tool.out_len != 0) {
        printf("FAIL: hmm-stats %s %s %s %s: %s (expected exit %d), stderr [%s]\n", a1, a2, a3, a4,
               child_how(&tool), code, tool.err);
        return 1;
    }
    printf("PASS: hmm-stats %s %s %s %s: exit %d, %s", a1, a2, a3, a4, code, tool.err);
    return 0;
}

/* -s names a signal the process catches (its own handler here, not
 * hmm's): no answer comes, and -t 1 gives up after a second, exit 1; a
 * bad -t is a usage error, exit 2. */
static int times_out(void)
{
    hmm_free(hmm_malloc(100));
    struct sigaction action = { .sa_handler = on_usr1 };
    CHECK(sigaction(SIGUSR1, &action, NULL) == 0, "sigaction");
    return tool_fails("-s", "SIGUSR1", "-t", "1", 1, "did not answer within 1 s") +
           tool_fails("-s", "USR1", "--timeout", "soon", 2, "not a whole number of seconds");
}

static int in_child(const char *options, const char *action)
{
    static struct child c;
    child_self(&c, options, action, NULL, NULL);
    printf("HMM_OPTIONS=%s, %s: %s\n%s%s", options ? options : "(unset)", action, child_how(&c), c.out, c.err);
    return child_exited(&c, 0) ? 0 : 1;
}

int main(int argc, char **argv)
{
    alarm(TEST_TIMEOUT);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1)
        return !strcmp(argv[1], "serve") ? serve() : !strcmp(argv[1], "times_out") ? times_out() : refused();
    int failures = in_child("stats_signal=SIGUSR1,cache_size=0", "serve") +
                   in_child("stats_signal=USR2,cache_size=0,background_thread=false", "serve") +
                   in_child(NO_OPTIONS, "refused") + in_child(NO_OPTIONS, "times_out");
    printf("%d of 4 cases failed\n", failures);
    return failures ? 1 : 0;
}
