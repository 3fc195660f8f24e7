/* The helper of the options tests (not a test itself): run with
 * HMM_OPTIONS in its environment, it does what argv says and prints
 * "key value" lines on stdout for the test to read.
 *
 *   stats                 the process statistics
 *   huge SIZE...          for each size, whether a malloc of it is a huge
 *                         block: "huge_SIZE 1" (huge_blocks went up) or 0
 *   arenas N              N threads allocate and wait at a barrier:
 *                         "arena_count" while they all hold blocks
 *   cache                 frees blocks of many classes beside a live 30 MiB block: "cached_bytes"
 *   chunk                 a new thread allocates 100 bytes: "chunk_bytes"
 *                         and "chunks" of its (new) arena
 *   burst [MS]            64 MiB of 96 KiB blocks (above the largest cached class) allocated, then freed;
 *                         after MS milliseconds of idling (default 0):
 *                         "footprint_bytes", "region_bytes" and
 *                         "region_free_bytes"
 *   junk                  a block freed: "junk" bytes past its first 16
 *                         that read 0xdf, of "junk_of"
 *   overflow              writes one byte past the usable size and frees
 *   tasks                 after an allocation and 200 ms: "tasks", the
 *                         threads of the process
 *   grown                 a second thread holds 80 MiB; after 200 ms:
 *                         "tasks" and "maint" (threads named hmm-maint)
 *   grown_alone           the same, in the one thread the process has
 *   onecpu ACTION...      runs ACTION again on the first CPU it may use
 *                         alone (the affinity is set before the exec, as
 *                         taskset does, so hmm reads it at start-up)
 *   caught SIG...         after an allocation: "caught_SIG" 1 if the
 *                         process catches signal number SIG, else 0, and
 *                         "tasks"
 *   nothing               allocates a block and exits
 *   prof                  in a new directory, hmm_prof_dump(NULL):
 *                         "prof_on" (it worked), "prof_default_prefix"
 *                         (it wrote hmm.PID.0.heap), "prof_sample" (the
 *                         rate in its header) and "prof_signal" (the first
 *                         signal with a handler, 0: none); no dump at exit
 *
 * Calls the hmm_* names; links libhmm.la. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hmm.h"
#include "hmm_probes.h"
#include "testutil.h"

#define MiB ((size_t)1 << 20)

static void stats(struct hmm_stats *s)
{
    CHECK(hmm_stats(s) == 0, "hmm_stats");
}

static void sleep_ms(unsigned ms)
{
    struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&t, &t) != 0)
        ;
}

static void print_stats(void)
{
    struct hmm_stats s;
    stats(&s);
    printf("in_use_bytes %zu\nfree_bytes %zu\ncached_bytes %zu\nregion_bytes %zu\n"
           "region_free_bytes %zu\nhuge_blocks %zu\nhuge_bytes %zu\nfootprint_bytes %zu\n"
           "arena_count %u\n",
           s.in_use_bytes, s.free_bytes, s.cached_bytes, s.region_bytes, s.region_free_bytes,
           s.huge_blocks, s.huge_bytes, s.footprint_bytes, s.arena_count);
}

static void huge(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        size_t size = strtoull(argv[i], NULL, 0);
        struct hmm_stats s0, s1;
        stats(&s0);
        void *p = hmm_malloc(size);
        CHECK(p != NULL, "malloc(%zu)", size);
        stats(&s1);
        printf("huge_%zu %d\n", size, s1.huge_blocks > s0.huge_blocks);
        hmm_free(p);
    }
}

static void arenas(int n)
{
    printf("arena_count %u\n", stats_while_threads_hold(n, 100000, 1000).arena_count);
}

static void cache(void)
{
    static void *blocks[64][64];
    /* A live block as large as what is freed below: an arena that is being
     * emptied (its live bytes a small part of its chunks) closes the caches
     * that would pin its chunks. */
    void *live = hmm_malloc(30u << 20);
    CHECK(live != NULL, "malloc(30 MiB)");
    for (int c = 0; c < 64; c++) {
        size_t size = 16 + (size_t)c * 500;   /* 16 to 31516 bytes: many classes */
        for (int i = 0; i < 64; i++) {
            blocks[c][i] = hmm_malloc(size);
            CHECK(blocks[c][i] != NULL, "malloc(%zu)", size);
        }
    }
    for (int c = 0; c < 64; c++)
        for (int i = 0; i < 64; i++)
            hmm_free(blocks[c][i]);
    struct hmm_stats s;
    stats(&s);
    printf("cached_bytes %zu\n", s.cached_bytes);
    hmm_free(live);
}

static struct hmm_stats before_thread;

static void *new_arena(void *arg)
{
    (void)arg;
    void *p = hmm_malloc(100);
    CHECK(p != NULL, "malloc");
    struct hmm_stats s;
    stats(&s);
    for (unsigned i = 0; i < s.arenas_listed; i++) {
        int known = 0;
        for (unsigned j = 0; j < before_thread.arenas_listed; j++)
            known |= before_thread.arenas[j].id == s.arenas[i].id;
        if (!known)
            printf("chunk_bytes %zu\nchunks %zu\n", s.arenas[i].chunk_bytes, s.arenas[i].chunks);
    }
    hmm_free(p);
    return NULL;
}

static void chunk(void)
{
    pthread_t t;
    void *mine = hmm_malloc(100);
    stats(&before_thread);
    CHECK(pthread_create(&t, NULL, new_arena, NULL) == 0, "pthread_create");
    pthread_join(t, NULL);
    hmm_free(mine);
}

static void burst(unsigned idle_ms)
{
    burst_64mib();
    if (idle_ms)
        sleep_ms(idle_ms);
    struct hmm_stats s;
    stats(&s);
    printf("footprint_bytes %zu\nregion_bytes %zu\nregion_free_bytes %zu\n", s.footprint_bytes,
           s.region_bytes, s.region_free_bytes);
}

static void junk(void)
{
    size_t of, count = junk_after_free(&of);
    printf("junk %zu\njunk_of %zu\n", count, of);
}

static void overflow(void)
{
    void *keep = hmm_malloc(40);
    unsigned char *p = hmm_malloc(40);
    CHECK(keep && p, "malloc");
    size_t usable = hmm_malloc_usable_size(p);
    printf("ptr %p\n", (void *)p);
    fflush(stdout);
    p[usable] = 'x';
    hmm_free(p);
    printf("went on\n");
}

/* The threads of the process, and how many of them are named name. */
static int count_tasks(const char *name, int *named)
{
    int count = 0;
    *named = 0;
    DIR *d = opendir("/proc/self/task");
    CHECK(d != NULL, "opendir /proc/self/task");
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        count++;
        char path[64], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f != NULL && fgets(comm, sizeof comm, f) != NULL)
            *named += strncmp(comm, name, strlen(name)) == 0;
        if (f != NULL)
            fclose(f);
    }
    closedir(d);
    return count;
}

static void tasks(void)
{
    void *p = hmm_malloc(100);
    CHECK(p != NULL, "malloc");
    sleep_ms(200);
    int named;
    printf("tasks %d\n", count_tasks("hmm-maint", &named));
    hmm_free(p);
}

static void caught(int argc, char **argv)
{
    void *p = hmm_malloc(100);
    CHECK(p != NULL, "malloc");
    for (int i = 2; i < argc; i++) {
        struct sigaction action;
        CHECK(sigaction(atoi(argv[i]), NULL, &action) == 0, "sigaction %s", argv[i]);
        printf("caught_%s %d\n", argv[i], action.sa_handler != SIG_DFL && action.sa_handler != SIG_IGN);
    }
    int named;
    printf("tasks %d\n", count_tasks("hmm-maint", &named));
    hmm_free(p);
}

#define GROWN_BLOCKS 1280                 /* of 64 KiB: 80 MiB */

static void *hold_80_mib(void *arg)
{
    void **blocks = arg;
    for (int i = 0; i < GROWN_BLOCKS; i++) {
        blocks[i] = hmm_malloc(64 * 1024);
        CHECK(blocks[i] != NULL, "malloc(64 KiB)");
    }
    return NULL;
}

static void grown(void)
{
    static void *blocks[GROWN_BLOCKS];
    void *p = hmm_malloc(100);
    CHECK(p != NULL, "malloc");
    pthread_t t;
    CHECK(pthread_create(&t, NULL, hold_80_mib, blocks) == 0, "pthread_create");
    CHECK(pthread_join(t, NULL) == 0, "pthread_join");
    sleep_ms(200);
    int named, count = count_tasks("hmm-maint", &named);
    printf("tasks %d\nmaint %d\n", count, named);
    for (int i = 0; i < GROWN_BLOCKS; i++)
        hmm_free(blocks[i]);
    hmm_free(p);
}

/* auto starts no thread in a process with one thread, however large. */
static void grown_alone(void)
{
    static void *blocks[GROWN_BLOCKS];
    hold_80_mib(blocks);
    sleep_ms(200);
    int named, count = count_tasks("hmm-maint", &named);
    printf("tasks %d\nmaint %d\n", count, named);
    for (int i = 0; i < GROWN_BLOCKS; i++)
        hmm_free(blocks[i]);
}

static void on_one_cpu(char **action)
{
    cpu_set_t allowed, one;
    CHECK(sched_getaffinity(0, sizeof(allowed), &allowed) == 0, "sched_getaffinity");
    CPU_ZERO(&one);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &allowed)) {
            CPU_SET(cpu, &one);
            break;
        }
    CHECK(sched_setaffinity(0, sizeof(one), &one) == 0, "sched_setaffinity");
    action[-1] = (char *)"options_probe";
    execv("/proc/self/exe", action - 1);
    CHECK(0, "execv: %s", strerror(errno));
}

/* The first signal the profiler may take that has a handler set. */
static int handled_signal(void)
{
    int candidates[] = { SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH };
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        struct sigaction now;
        if (sigaction(candidates[i], NULL, &now) == 0 && now.sa_handler != SIG_DFL)
            return candidates[i];
    }
    for (int sig = 34; sig <= 64; sig++) {
        struct sigaction now;
        if (sigaction(sig, NULL, &now) == 0 && now.sa_handler != SIG_DFL)
            return sig;
    }
    return 0;
}

static void prof(void)
{
    char dir[] = "/tmp/hmm-probe-XXXXXX", name[64], header[128] = "";
    CHECK(mkdtemp(dir) != NULL && chdir(dir) == 0, "mkdtemp");
    int on = hmm_prof_dump(NULL) == 0;
    snprintf(name, sizeof(name), "hmm.%d.0.heap", (int)getpid());
    FILE *f = fopen(name, "r");
    size_t rate = 0;
    if (f != NULL) {
        CHECK(fgets(header, sizeof(header), f) != NULL, "empty dump");
        fclose(f);
        unlink(name);
        CHECK(sscanf(header, "heap profile: %*u: %*u [%*u: %*u] @ heap_v2/%zu", &rate) == 1, "header [%s]", header);
    }
    CHECK(chdir("/") == 0 && rmdir(dir) == 0, "rmdir %s", dir);
    printf("prof_on %d\nprof_default_prefix %d\nprof_sample %zu\nprof_signal %d\n", on, f != NULL, rate,
           handled_signal());
    fflush(stdout);
    _exit(0);
}

int main(int argc, char **argv)
{
    alarm(TEST_TIMEOUT);
    setvbuf(stdout, NULL, _IOLBF, 0);
    CHECK(argc >= 2, "usage: options_probe ACTION [ARGS]");
    const char *action = argv[1];
    if (!strcmp(action, "stats"))
        print_stats();
    else if (!strcmp(action, "huge"))
        huge(argc, argv);
    else if (!strcmp(action, "arenas"))
        arenas(argc > 2 ? atoi(argv[2]) : 4);
    else if (!strcmp(action, "cache"))
        cache();
    else if (!strcmp(action, "grown"))
        grown();
    else if (!strcmp(action, "grown_alone"))
        grown_alone();
    else if (!strcmp(action, "onecpu") && argc > 2)
        on_one_cpu(&argv[2]);
    else if (!strcmp(action, "chunk"))
        chunk();
    else if (!strcmp(action, "burst"))
        burst(argc > 2 ? (unsigned)atoi(argv[2]) : 0);
    else if (!strcmp(action, "junk"))
        junk();
    else if (!strcmp(action, "overflow"))
        overflow();
    else if (!strcmp(action, "tasks"))
        tasks();
    else if (!strcmp(action, "prof"))
        prof();
    else if (!strcmp(action, "caught"))
        caught(argc, argv);
    else if (!strcmp(action, "nothing"))
        hmm_free(hmm_malloc(1234));
    else
        CHECK(0, "unknown action %s", action);
    return 0;
}
