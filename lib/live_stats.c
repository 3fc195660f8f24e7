/* Statistics of a running process, on request (hmm-stats PID), off unless
 * HMM_OPTIONS names stats_signal: a library may not claim a signal by
 * default.  The same pipe wakes the thread for prof_signal's dumps.  The signal's handler only writes a byte to a pipe, since it may
 * interrupt the allocator itself; the maintenance thread, which waits on
 * the pipe between its passes, answers with hmm_stats_print's JSON and text
 * in /tmp/hmm-stats.PID.json and /tmp/hmm-stats.PID, the text last, each
 * written to a new file of the process's user and renamed into place, so
 * that a reader sees a whole file or none.  Requests that arrive together
 * get one answer. */
#include "lib.h"
#include "prof.h"

#include <errno.h>
#include <string.h>

#define STATS_PATH "/tmp/hmm-stats.%d%s"

/* The request pipe: the handler writes to [1], the maintenance thread reads
 * [0]; -1 while there is none (off, or in a fork child until its thread
 * starts again, so that the parent's thread never answers for the child). */
static int request_fds[2] = { -1, -1 };

/* Async-signal-safe: wake the maintenance thread with a byte saying why. */
void live_stats_poke(char why)
{
    int saved = errno;
    int fd = __atomic_load_n(&request_fds[1], __ATOMIC_RELAXED);
    if (fd >= 0)
        os_write(fd, &why, 1);
    errno = saved;
}

static void on_request(int sig)
{
    (void)sig;
    live_stats_poke(REQUEST_STATS);
}

/* The pipe serves hmm-stats and prof_signal's dumps alike. */
bool live_stats_wanted(void)
{
    return hmm_options.stats_signal != 0 || (prof_options.on && prof_options.signal != 0);
}

/* Called before the maintenance thread starts; once per process. */
void live_stats_start(void)
{
    int fds[2];
    if (!live_stats_wanted() || request_fds[0] >= 0)
        return;
    if (!os_pipe(fds)) {
        warn("stats_signal: cannot make a pipe; hmm-stats requests are not answered");
        return;
    }
    request_fds[0] = fds[0];
    __atomic_store_n(&request_fds[1], fds[1], __ATOMIC_RELEASE);
    if (hmm_options.stats_signal != 0 && !os_catch_signal(hmm_options.stats_signal, on_request))
        warn("stats_signal: cannot catch signal %d; hmm-stats requests are not answered",
             hmm_options.stats_signal);
}

static void write_stats(int pid, const char *format, const char *suffix)
{
    char path[64], temporary[80];
    fmt_str(path, sizeof(path), STATS_PATH, pid, suffix);
    fmt_str(temporary, sizeof(temporary), "%s.tmp", path);
    int fd = os_create(temporary);
    if (fd < 0) {
        warn("stats_signal: cannot create %s", temporary);
        return;
    }
    hmm_stats_print(fd, format);
    os_close(fd);
    if (!os_rename(temporary, path)) {
        warn("stats_signal: cannot rename %s to %s", temporary, path);
        os_unlink(temporary);
    }
}

/* Whether hmm-stats asked among the bytes waiting. */
static bool stats_requested(int fd)
{
    char bytes[64];
    bool stats = false;
    for (size_t n; (n = os_read(fd, bytes, sizeof(bytes))) > 0;)
        stats = stats || memchr(bytes, REQUEST_STATS, n) != NULL;
    return stats;
}

/* The maintenance thread's pause between passes: ms, answering requests
 * meanwhile (without a signal to answer, only a pause). */
void live_stats_wait(unsigned ms)
{
    uint64_t end = os_now_ms() + ms;
    for (uint64_t now = os_now_ms(); now < end; now = os_now_ms()) {
        if (!os_wait_readable(request_fds[0], (unsigned)(end - now)))
            continue;
        if (stats_requested(request_fds[0])) {
            write_stats(os_pid(), "json", ".json");
            write_stats(os_pid(), "text", "");
        }
        prof_poll();
    }
}

/* In a fork child: the pipe is the parent's; the child's own thread makes
 * another when it starts.  The handler stays. */
void live_stats_child_reset(void)
{
    int write_end = __atomic_exchange_n(&request_fds[1], -1, __ATOMIC_ACQ_REL);
    if (write_end < 0)
        return;
    os_close(write_end);
    os_close(request_fds[0]);
    request_fds[0] = -1;
}
