/* report.c's formatter: each conversion hmm's messages use, widths, and a
 * buffer too short, which gets what fits and a terminator while the full
 * length is returned (as snprintf does).  It must not allocate: this
 * program's malloc, calloc and realloc abort while the formatter runs. */
#include "internal.h"
#include "testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);

static volatile int trapping;

static void trap(const char *call)
{
    if (!trapping)
        return;
    static const char line[] = "FAIL: the formatter called ";
    (void)!write(2, line, sizeof(line) - 1);
    (void)!write(2, call, strlen(call));
    (void)!write(2, "\n", 1);
    abort();
}

/* fmt_str with the malloc family trapped (CHECK's fprintf may allocate). */
static size_t format(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    trapping = 1;
    size_t len = fmt_buf(buf, cap, fmt, ap);
    trapping = 0;
    va_end(ap);
    return len;
}

void *malloc(size_t size)
{
    trap("malloc");
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size)
{
    trap("calloc");
    return __libc_calloc(count, size);
}

void *realloc(void *ptr, size_t size)
{
    trap("realloc");
    return __libc_realloc(ptr, size);
}

static void expect(const char *got, size_t len, const char *want)
{
    CHECK(strcmp(got, want) == 0, "formatted \"%s\", expected \"%s\"", got, want);
    CHECK(len == strlen(want), "returned length %zu for \"%s\"", len, want);
}

/* The trap is live: a malloc while trapping aborts the process. */
static void trap_works(void)
{
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        trapping = 1;
        void *p = malloc(16);
        _exit(p != NULL ? 0 : 1);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "a trapped malloc did not abort (status %#x)", status);
}

int main(void)
{
    trap_works();
    char buf[128];
    size_t len = format(buf, sizeof buf, "%s|%c|%d|%d|%u|%x", "free()", 'x', -42, 0, 4000000000u, 0xbeefu);
    expect(buf, len, "free()|x|-42|0|4000000000|beef");
    len = format(buf, sizeof buf, "%zu %lu %llu %lld", (size_t)1 << 40, 7ul, 18446744073709551615ull,
                  -9223372036854775807ll - 1);
    expect(buf, len, "1099511627776 7 18446744073709551615 -9223372036854775808");
    len = format(buf, sizeof buf, "%p %p", (void *)0x7f0012345670, (void *)0);
    expect(buf, len, "0x7f0012345670 0x0");
    len = format(buf, sizeof buf, "[%5u][%3zu][%2s]", 42u, (size_t)123456, "abc");
    expect(buf, len, "[   42][123456][abc]");
    len = format(buf, sizeof buf, "100%% %q");
    expect(buf, len, "100% ?");

    char small[8];
    len = format(small, sizeof small, "hmm: %s", "too long to fit");
    CHECK(len == strlen("hmm: too long to fit"), "a truncated line returns %zu, not its full length", len);
    CHECK(strcmp(small, "hmm: to") == 0, "truncated to \"%s\"", small);
    CHECK(format(NULL, 0, "%u", 12345u) == 5, "no buffer: the length alone");
    return 0;
}
