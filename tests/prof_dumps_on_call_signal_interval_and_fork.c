/* The heap profiler's dumps, with every malloc sampled (prof_sample=1):
 *  - hmm_prof_dump(path) writes a profile whose live bytes grow by the
 *    blocks allocated and fall back when they are freed, and when they are
 *    moved by realloc count once, at their new size;
 *  - hmm_prof_dump(NULL) writes PREFIX.PID.0.heap;
 *  - prof_signal=SIGUSR2: after raise(), the next free writes the next,
 *    and a process asleep writes one too (the maintenance thread does);
 *  - prof_interval=4M: 12 MiB more live writes at least two more;
 *  - threads allocating and freeing 4 x 166 KiB while another dumps
 *    leave the live bytes where they were (but for their TLS);
 *  - fork while a thread dumps in a loop: every child can dump (no lock
 *    inherited held) and its dump is whole;
 *  - without prof, hmm_prof_dump fails with ENOENT.
 * Each case runs in a re-executed child, under the thread cache and under
 * check=full.  And with prof_sample=4096, 200,000 malloc(32)+free pairs
 * take about 1,562 samples whichever path the frees take (the default's,
 * check=full's and zero_on_free's scrubbing one): a free that parks a
 * block in the cache without counting the malloc that will pop it lets
 * the pops go unsampled. */
#include "config.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "diag_child.h"
#include "hmm.h"

#define BLOCKS 100
#define BLOCK 10000                  /* class of 10240 bytes */
#define FORKS 20

static char dir[64];
static void *blocks[BLOCKS];

struct header {
    size_t live_count, live_bytes, total_count, total_bytes, rate;
    int whole;                       /* ends with the mappings, [stack] among them */
};

static struct header read_dump(const char *path)
{
    static char text[1 << 20];
    struct header h = { 0 };
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "no dump %s", path);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    CHECK(sscanf(text, "heap profile: %zu: %zu [%zu: %zu] @ heap_v2/%zu", &h.live_count, &h.live_bytes,
                 &h.total_count, &h.total_bytes, &h.rate) == 5,
          "bad header in %s", path);
    char *maps = strstr(text, "\nMAPPED_LIBRARIES:\n");
    h.whole = maps != NULL && strstr(maps, "[stack]") != NULL && text[n - 1] == '\n';
    return h;
}

static struct header dump_named(const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    CHECK(hmm_prof_dump(path) == 0, "hmm_prof_dump(%s): %s", path, strerror(errno));
    return read_dump(path);
}

/* Files of this process's numbered dumps: PREFIX.PID.SEQ.heap. */
static int numbered_dumps(void)
{
    char start[64];
    snprintf(start, sizeof(start), "t.%d.", (int)getpid());
    DIR *d = opendir(dir);
    CHECK(d != NULL, "opendir");
    int count = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        count += !strncmp(e->d_name, start, strlen(start));
    closedir(d);
    return count;
}

__attribute__((noinline)) static void hold_blocks(size_t size)
{
    for (int i = 0; i < BLOCKS; i++)
        CHECK((blocks[i] = hmm_malloc(size)) != NULL, "malloc");
}

static void free_blocks(void)
{
    for (int i = 0; i < BLOCKS; i++)
        hmm_free(blocks[i]);
}

static void live_follows_blocks(void)
{
    struct header before = dump_named("a");
    hold_blocks(BLOCK);
    struct header held = dump_named("b");
    CHECK(held.live_count - before.live_count == BLOCKS && held.live_bytes - before.live_bytes >= BLOCKS * BLOCK &&
              held.live_bytes - before.live_bytes <= BLOCKS * (BLOCK + 512),
          "%zu live bytes more after %d blocks of %d", held.live_bytes - before.live_bytes, BLOCKS, BLOCK);
    CHECK(before.whole && held.whole && held.rate == 1, "dumps not whole, or rate %zu", held.rate);
    for (int i = 0; i < BLOCKS; i++)
        CHECK((blocks[i] = hmm_realloc(blocks[i], 3 * BLOCK)) != NULL, "realloc");
    struct header moved = dump_named("c");
    /* a moved block gets its class's room to grow, at most a quarter */
    CHECK(moved.live_count - before.live_count == BLOCKS && moved.live_bytes - before.live_bytes >= BLOCKS * 3 * BLOCK &&
              moved.live_bytes - before.live_bytes <= BLOCKS * 5 * BLOCK,
          "%zu live blocks, %zu bytes more after realloc to %d", moved.live_count - before.live_count,
          moved.live_bytes - before.live_bytes, 3 * BLOCK);
    free_blocks();
    struct header after = dump_named("d");
    CHECK(after.live_bytes == before.live_bytes, "live %zu after freeing, %zu before", after.live_bytes,
          before.live_bytes);
}

/* A process asleep (no call into the allocator: access and nanosleep do
 * not allocate) still answers prof_signal: PREFIX.PID.SEQ.heap appears. */
static int dump_while_asleep(int seq)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/t.%d.%d.heap", dir, (int)getpid(), seq);
    raise(SIGUSR2);
    for (int waited_ms = 0; waited_ms < 5000; waited_ms += 10) {
        if (access(path, F_OK) == 0)
            return 1;
        struct timespec pause = { 0, 10 * 1000 * 1000 };
        nanosleep(&pause, NULL);
    }
    return 0;
}

static void numbered_signal_and_interval(void)
{
    int first = numbered_dumps();
    CHECK(hmm_prof_dump(NULL) == 0, "hmm_prof_dump(NULL)");
    CHECK(numbered_dumps() == first + 1, "no PREFIX.PID.SEQ.heap");
    raise(SIGUSR2);
    hmm_free(hmm_malloc(100));
    CHECK(numbered_dumps() == first + 2, "no dump after SIGUSR2 and a free");
    CHECK(dump_while_asleep(first + 2), "no dump within 5 s of SIGUSR2 while no thread calls the allocator");
    hold_blocks(128 * 1024);
    CHECK(numbered_dumps() >= first + 4, "%d dumps after 12 MiB more with prof_interval=4M",
          numbered_dumps() - first - 2);
    free_blocks();
}

static void *churn(void *arg)
{
    void *mine[1000];
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 1000; i++)
            CHECK((mine[i] = hmm_malloc((size_t)(16 + i % 300))) != NULL, "malloc");
        for (int i = 0; i < 1000; i++)
            hmm_free(mine[i]);
    }
    return arg;
}

static void threads_leave_live_bytes(void)
{
    pthread_t threads[4];
    struct header before = dump_named("e");
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&threads[i], NULL, churn, NULL) == 0, "pthread_create");
    for (int i = 0; i < 20; i++)
        CHECK(dump_named("f").whole, "dump while threads churn not whole");
    for (int i = 0; i < 4; i++)
        CHECK(pthread_join(threads[i], NULL) == 0, "pthread_join");
    struct header after = dump_named("g");
    /* what pthread_create keeps (the threads' TLS) stays; their blocks do not */
    CHECK(after.live_bytes - before.live_bytes < 16 * 1024, "live %zu after the threads, %zu before",
          after.live_bytes, before.live_bytes);
}

static volatile int dumping = 1;

static void *dump_loop(void *arg)
{
    while (dumping)
        dump_named("loop");
    return arg;
}

static void fork_children_dump(void)
{
    pthread_t dumper;
    CHECK(pthread_create(&dumper, NULL, dump_loop, NULL) == 0, "pthread_create");
    for (int i = 0; i < FORKS; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0) {
            alarm(20);
            char name[32];
            snprintf(name, sizeof(name), "child%d", i);
            hmm_free(hmm_malloc(1000));
            _exit(dump_named(name).whole ? 0 : 3);
        }
        int status;
        CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: status %#x", i, status);
    }
    dumping = 0;
    CHECK(pthread_join(dumper, NULL) == 0, "pthread_join");
}

static int run_case(const char *extra)
{
    char options[256];
    snprintf(dir, sizeof(dir), "/tmp/hmm-prof-XXXXXX");
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(options, sizeof(options),
             "prof=true,prof_sample=1,prof_final=false,prof_signal=SIGUSR2,prof_interval=4M,prof_prefix=%s/t%s",
             dir, extra);
    struct child c;
    child_self(&c, options, "run", dir, NULL);
    char command[128];
    snprintf(command, sizeof(command), "rm -rf '%s'", dir);
    CHECK(system(command) == 0, "rm");
    if (!child_exited(&c, 0)) {
        printf("FAIL: HMM_OPTIONS=%s: %s\n  stdout [%s]\n  stderr [%s]\n", options, child_how(&c), c.out, c.err);
        return 1;
    }
    printf("PASS: HMM_OPTIONS=%s\n%s", options, c.out);
    return 0;
}

#define RATE_PAIRS 200000
#define RATE_SAMPLE 4096
#define RATE_EXPECTED (RATE_PAIRS * 32 / RATE_SAMPLE)

static void rate_pairs(void)
{
    for (int i = 0; i < RATE_PAIRS; i++) {
        void *p = hmm_malloc(32);
        CHECK(p != NULL, "malloc");
        *(volatile char *)p = 1;
        hmm_free(p);
    }
    printf("samples %zu\n", dump_named("rate").total_count);
}

/* The samples of RATE_PAIRS pairs, a Poisson count: within a third of the
 * expected (20 standard deviations). */
static int rate_holds(const char *extra)
{
    char options[256];
    snprintf(dir, sizeof(dir), "/tmp/hmm-prof-XXXXXX");
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(options, sizeof(options), "prof=true,prof_sample=%d,prof_final=false%s", RATE_SAMPLE, extra);
    struct child c;
    child_self(&c, options, "rate", dir, NULL);
    char command[128];
    snprintf(command, sizeof(command), "rm -rf '%s'", dir);
    CHECK(system(command) == 0, "rm");
    long long samples = child_value(&c, "samples", -1);
    if (!child_exited(&c, 0) || samples < RATE_EXPECTED * 2 / 3 || samples > RATE_EXPECTED * 4 / 3) {
        printf("FAIL: HMM_OPTIONS=%s: %lld samples, about %d expected (%s)\n  stderr [%s]\n", options, samples,
               RATE_EXPECTED, child_how(&c), c.err);
        return 1;
    }
    printf("PASS: HMM_OPTIONS=%s: %lld samples, about %d expected\n", options, samples, RATE_EXPECTED);
    return 0;
}

static int off_fails(void)
{
    struct child c;
    child_self(&c, "", "off", NULL, NULL);
    if (!child_exited(&c, 0)) {
        printf("FAIL: prof off: %s\n  stderr [%s]\n", child_how(&c), c.err);
        return 1;
    }
    printf("PASS: without prof, hmm_prof_dump fails with ENOENT\n");
    return 0;
}

int main(int argc, char **argv)
{
    alarm(TEST_TIMEOUT);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 2 && !strcmp(argv[1], "run")) {
        snprintf(dir, sizeof(dir), "%s", argv[2]);
        live_follows_blocks();
        numbered_signal_and_interval();
        threads_leave_live_bytes();
        fork_children_dump();
        printf("live bytes, realloc, numbered, signal, interval, threads and %d forks: right\n", FORKS);
        return 0;
    }
    if (argc > 2 && !strcmp(argv[1], "rate")) {
        snprintf(dir, sizeof(dir), "%s", argv[2]);
        rate_pairs();
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "off")) {
        CHECK(hmm_prof_dump("/dev/null") == -1 && errno == ENOENT, "hmm_prof_dump without prof");
        return 0;
    }
    return run_case("") | run_case(",check=full") | rate_holds("") | rate_holds(",check=full") |
           rate_holds(",zero_on_free=true") | off_fails();
}
