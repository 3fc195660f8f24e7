/* Scenario fork: hammer threads work (and share the fork pool) while the
 * main thread forks; each child verifies and frees what it inherited,
 * works, starts threads, and every 8th forks again. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "torture.h"

#define FORK_OWN 4

static int wait_child(pid_t pid, double timeout, int *status)
{
    double deadline = now_s() + timeout;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            die(EXIT_USAGE, "hmm-stress: waitpid(%d): %s\n", (int)pid, strerror(errno));
        if (now_s() >= deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, status, 0) < 0 && errno == EINTR)
                ;
            return 1;
        }
        sleep_us(200);
    }
}

static void *child_thread_main(void *arg)
{
    struct worker *w = arg;
    alloc_slots(w);
    while (!worker_done(w))
        step(w, false);
    free_all_slots(w, "before free in a fork child's thread");
    free(w->slots);
    return NULL;
}

/* Work done by every fork child (and grandchild): only the forking thread
 * exists here; every other arena is orphaned. */
static struct blk child_slots[64];

static void child_work(struct worker *cw)
{
    struct blk big;
    /* Not calloc: under ThreadSanitizer that is TSan's allocator, which
     * (gcc 12's libtsan) can deadlock in a child forked by a threaded
     * process.  Only the hmm_* calls are under test here. */
    memset(child_slots, 0, sizeof child_slots);
    cw->slots = child_slots;
    cw->nslots = sizeof child_slots / sizeof child_slots[0];
    cw->nlive = 0;
    cw->live_bytes = 0;
    for (int i = 0; i < 2000; i++)
        step(cw, false);
    /* One huge block grown by realloc (mremap) and shrunk again. */
    alloc_blk(cw, &big, 2 * MiB + 123);
    realloc_blk(cw, &big, 3 * MiB + 7);
    realloc_blk(cw, &big, 100);
    free_blk(cw, &big, "before free of a child's huge block");
    free_all_slots(cw, "before free in a fork child");
    cw->slots = NULL;
}

static pid_t fork_parent;

__attribute__((noreturn)) static void child_main(int k, struct blk *own, int depth)
{
    struct worker cw = {0};
    /* Do not outlive a parent killed by a test's timeout. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != fork_parent)
        _exit(EXIT_USAGE);
    /* Not worker_init: the tag counter may be mid-update in the copy. */
    cw.tag = (UINT64_C(1) << 22) + (uint64_t)k * 4 + (uint64_t)depth;
    cw.rng = mix64(opt.seed ^ cw.tag) | 1;
    cw.nslots = 64;
    cw.budget = 16 * MiB;

    if (depth == 0) {
        /* The parent held the pool lock across fork: the pool is consistent. */
        for (int i = 0; i < FORK_OWN; i++)
            verify_blk(&own[i], "inherited from the parent's main thread, in the child");
        for (unsigned i = 0; i < fpool.n; i++)
            verify_blk(&fpool.b[i], "inherited from a parent's hammer thread, in the child");
        /* Free the blocks of the orphaned arenas, and the main thread's. */
        while (fpool.n > 0) {
            struct blk b = fpool.b[--fpool.n];
            free_blk(&cw, &b, "before free of an inherited block in the child");
        }
        pthread_mutex_unlock(&fpool.mu);
        for (int i = 0; i < FORK_OWN; i++)
            free_blk(&cw, &own[i], "before free of an inherited block in the child");
    }
    child_work(&cw);

    if (!UNDER_TSAN && depth == 0 && opt.child_threads > 0) {
        /* pthread_create allocates; the new threads get arenas in the child. */
        struct worker tw[8];
        int nt = opt.child_threads > 8 ? 8 : opt.child_threads;
        memset(tw, 0, sizeof tw);
        for (int i = 0; i < nt; i++) {
            tw[i].tag = cw.tag + (uint64_t)(i + 1) * 4096;
            tw[i].rng = mix64(opt.seed ^ tw[i].tag) | 1;
            tw[i].nslots = 64;
            tw[i].budget = 8 * MiB;
            tw[i].ops_limit = 1000;
            int e = pthread_create(&tw[i].th, NULL, child_thread_main, &tw[i]);
            if (e)
                die(EXIT_USAGE, "hmm-stress: fork child %d: pthread_create: %s\n", k, strerror(e));
        }
        for (int i = 0; i < nt; i++)
            pthread_join(tw[i].th, NULL);
    }

    if (depth == 0 && k % 8 == 0) {
        /* Fork again from the child. */
        fork_parent = getpid();
        pid_t pid = fork();
        if (pid < 0)
            die(EXIT_USAGE, "hmm-stress: fork in a child: %s\n", strerror(errno));
        if (pid == 0)
            child_main(k, NULL, 1);
        int st;
        if (wait_child(pid, opt.fork_timeout, &st))
            die(EXIT_HANG, "hmm-stress: grandchild %d of fork %d hung for %.0f s; killed\n", (int)pid, k,
                opt.fork_timeout);
        if (WIFSIGNALED(st))
            die(EXIT_USAGE, "hmm-stress: grandchild of fork %d killed by signal %d\n", k, WTERMSIG(st));
        if (WEXITSTATUS(st))
            _exit(WEXITSTATUS(st));
    }
    if (opt.check_ms && hmm_check() != 0)
        die(EXIT_CORRUPT, "hmm-stress: hmm_check() failed in fork child %d\n", k);
    _exit(0);
}

/* Forks one child while the hammers run; returns how long fork+wait took. */
static double fork_once(int k, struct worker *mw)
{
    struct blk own[FORK_OWN];
    for (int i = 0; i < FORK_OWN; i++)
        alloc_blk(mw, &own[i], i == 0 ? 2 * MiB : pick_size(mw) % (64 * KiB) + 1);
    double tf = now_s();
    pthread_mutex_lock(&fpool.mu);
    pid_t pid = fork();
    if (pid < 0)
        die(EXIT_USAGE, "hmm-stress: fork: %s\n", strerror(errno));
    if (pid == 0)
        child_main(k, own, 0);
    pthread_mutex_unlock(&fpool.mu);
    int st;
    if (wait_child(pid, opt.fork_timeout, &st))
        die(EXIT_HANG, "hmm-stress: fork child %d (pid %d) hung for %.0f s; killed\n", k, (int)pid,
            opt.fork_timeout);
    if (WIFSIGNALED(st))
        die(EXIT_USAGE, "hmm-stress: fork child %d (pid %d) killed by signal %d (%s)\n", k, (int)pid,
            WTERMSIG(st), strsignal(WTERMSIG(st)));
    if (WEXITSTATUS(st))
        die(WEXITSTATUS(st), "hmm-stress: fork child %d (pid %d) failed with exit status %d\n", k, (int)pid,
            WEXITSTATUS(st));
    double took = now_s() - tf;
    for (int i = 0; i < FORK_OWN; i++)
        free_blk(mw, &own[i], "before free in the parent after fork");
    return took;
}

double run_fork(unsigned n)
{
    double t0 = now_s();
    double deadline = opt.seconds > 0 ? t0 + opt.seconds : 0;
    struct group *g = group_start(n, 0, default_slots(), default_budget(), 0, true);
    group_go(g);

    struct worker mw = {0};
    worker_init(&mw, 0, 0, 16 * MiB, 0);
    int forks = 0;
    double slowest = 0;
    fork_parent = getpid();
    for (;; forks++) {
        if (deadline > 0 ? now_s() >= deadline : forks >= opt.forks)
            break;
        double took = fork_once(forks, &mw);
        if (took > slowest)
            slowest = took;
        if (opt.sample_ms)
            monitor_tick(NULL);
    }
    atomic_store(&g_stop, 1);
    group_join(g);
    pthread_mutex_lock(&fpool.mu);
    while (fpool.n > 0) {
        struct blk b = fpool.b[--fpool.n];
        free_blk(&mw, &b, "before the final free of a pooled block");
    }
    pthread_mutex_unlock(&fpool.mu);
    add_totals(&mw);
    double el = now_s() - t0;
    info("hmm-stress: fork: %d children (each verified %d inherited blocks, allocated, freed and exited; "
         "every 8th forked again), slowest fork+wait %.3f s\n",
         forks, FORK_OWN, slowest);
    return el;
}
