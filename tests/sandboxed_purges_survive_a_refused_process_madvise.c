/* Purges of many ranges go to the kernel as one process_madvise only once
 * a second thread has allocated, and a refusal costs nothing.  Each case
 * runs in a fresh child under a seccomp filter that traps process_madvise
 * (a SIGSYS handler counts the attempt and makes it fail with EPERM, as a
 * sandbox that refuses it would), allocates a 64 MiB burst of 64 B..64 KiB
 * blocks, frees it in a stride walk and reports the attempts and its
 * resident set:
 *   - one thread: never tried (a single-threaded sandboxed worker whose
 *     filter kills unlisted calls must never make it);
 *   - two threads: tried once, then madvise for each range from the
 *     refusal on (not once per purge);
 *   - two threads with purge_vector=false: never tried;
 * and in every case the burst is given back as without the filter:
 * within 16 MiB of the start right after the last free.  (x86-64 only:
 * the handler sets the call's result in rax.) */
#include "plain_names.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "diag_child.h"
#include "testutil.h"

#if defined(__x86_64__) && defined(SYS_process_madvise)
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#define MiB ((size_t)1 << 20)
#define BURST (64 * MiB)
#define MAX_BLOCKS 200000
#define STRIDE 7919u
#define SLACK (16 * MiB)
#define SKIPPED 77              /* automake's exit status of a skipped test */

static volatile sig_atomic_t attempts;

static void refuse(int sig, siginfo_t *info, void *context)
{
    (void)sig;
    (void)info;
    attempts++;
    ((ucontext_t *)context)->uc_mcontext.gregs[REG_RAX] = -EPERM;
}

static void trap_process_madvise(void)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_madvise, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = { .len = sizeof(filter) / sizeof(filter[0]), .filter = filter };
    struct sigaction action = { .sa_sigaction = refuse, .sa_flags = SA_SIGINFO };
    CHECK(sigaction(SIGSYS, &action, NULL) == 0, "sigaction: %s", strerror(errno));
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
        printf("SKIP: no seccomp filter here: %s\n", strerror(errno));
        exit(SKIPPED);
    }
}

static void *allocate_once(void *arg)
{
    (void)arg;
    free(malloc(64));
    return NULL;
}

static unsigned char *block[MAX_BLOCKS];

/* The child: the filter, a second thread if asked, the burst. */
static int burst(bool threaded)
{
    trap_process_madvise();
    if (threaded) {
        pthread_t thread;
        CHECK(pthread_create(&thread, NULL, allocate_once, NULL) == 0, "pthread_create");
        CHECK(pthread_join(thread, NULL) == 0, "pthread_join");
    }
    uint64_t rng = test_seed(8);
    size_t small = 0, large = 0, n = 0, start = resident_bytes();
    while (small + large < BURST) {
        size_t size = small <= large ? rng_log_size(&rng, 64, 1024) : rng_log_size(&rng, 1024, 65536);
        CHECK(n < MAX_BLOCKS && (block[n] = malloc(size)) != NULL, "malloc(%zu) failed after %zu blocks", size, n);
        memset(block[n++], 0xb5, size);
        *(size < 1024 ? &small : &large) += size;
    }
    for (size_t i = 0, at = 0; i < n; i++, at = (at + STRIDE) % n)
        free(block[at]);
    printf("attempts %d start_mib %zu after_mib %zu\n", (int)attempts, start / MiB, resident_bytes() / MiB);
    return 0;
}

struct sandbox_case {
    const char *options;
    const char *threads;
    int attempts;
};

static const struct sandbox_case cases[] = {
    { NO_OPTIONS, "one", 0 },
    { NO_OPTIONS, "two", 1 },
    { "purge_vector=false", "two", 0 },
};

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "burst") == 0)
        return burst(strcmp(argv[2], "two") == 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct sandbox_case *c = &cases[i];
        static struct child child;
        char *args[] = { argv[0], "burst", (char *)c->threads, NULL };
        child_run(&child, "/proc/self/exe", c->options, args);
        if (WIFEXITED(child.status) && WEXITSTATUS(child.status) == SKIPPED) {
            printf("%s", child.out);
            return SKIPPED;
        }
        int tried = -1;
        size_t start = 0, after = 0;
        const char *report = strstr(child.out, "attempts ");
        CHECK(WIFEXITED(child.status) && WEXITSTATUS(child.status) == 0 && report != NULL &&
                  sscanf(report, "attempts %d start_mib %zu after_mib %zu", &tried, &start, &after) == 3,
              "%s thread(s), HMM_OPTIONS=%s: the child failed (status %d): %s%s", c->threads,
              c->options ? c->options : "(unset)", child.status, child.out, child.err);
        printf("%s thread(s), HMM_OPTIONS=%s: %s", c->threads, c->options ? c->options : "(unset)", report);
        CHECK(tried == c->attempts, "process_madvise tried %d times, not %d", tried, c->attempts);
        CHECK(after <= start + SLACK / MiB, "%zu MiB resident after the last free, %zu at the start", after, start);
    }
    return 0;
}
#else
int main(void)
{
    printf("SKIP: the seccomp trap's handler is written for x86-64\n");
    return 77;   /* automake's exit status of a skipped test */
}
#endif
