/* Run with prof=true, a program whose two threads leak 16 MiB each from
 * leak_memory() while the main thread keeps a steady set of about 2 MiB
 * from steady_set(), churned 50 times over, writes a heap profile at exit
 * in which `google-pprof --text --inuse_space PROGRAM DUMP` lists
 * leak_memory first, with 32 MiB within 20 %.  Sampled at 64 KiB (about
 * 512 samples of the leak, so the estimate is within 5 % in one run of
 * three), under the thread cache and under check=full, which turns the
 * cache off.  Skipped (77) without google-pprof (Debian google-perftools). */
#include "config.h"

#include <dirent.h>
#include <pthread.h>

#include "diag_child.h"
#include "hmm.h"

#define LEAK_BLOCK 4096
#define LEAK_BLOCKS 4096                   /* per thread: 16 MiB */
#define LEAK_MIB 32.0
#define STEADY_BLOCKS 2000

static void *steady[STEADY_BLOCKS];
static void *volatile sink;

__attribute__((noinline)) static void leak_memory(void)
{
    for (int i = 0; i < LEAK_BLOCKS; i++) {
        char *p = hmm_malloc(LEAK_BLOCK);
        CHECK(p != NULL, "malloc");
        p[0] = 1;
        sink = p;
    }
}

__attribute__((noinline)) static void steady_set(int rounds)
{
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < STEADY_BLOCKS; i++) {
            hmm_free(steady[i]);
            steady[i] = hmm_malloc(1000 + (size_t)(i % 7) * 16);
            CHECK(steady[i] != NULL, "malloc");
        }
    }
}

static void *leaker(void *arg)
{
    (void)arg;
    leak_memory();
    return NULL;
}

static void run(void)
{
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&threads[i], NULL, leaker, NULL) == 0, "pthread_create");
    steady_set(50);
    for (int i = 0; i < 2; i++)
        CHECK(pthread_join(threads[i], NULL) == 0, "pthread_join");
}

/* The one file in dir: the dump at exit. */
static void find_dump(const char *dir, char *path, size_t cap)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL, "opendir %s", dir);
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            snprintf(path, cap, "%s/%s", dir, e->d_name);
            found++;
        }
    }
    closedir(d);
    CHECK(found == 1, "%d files in %s, expected the one dump", found, dir);
}

/* The first function of pprof's text report, and its megabytes. */
static void pprof_top(const char *program, const char *dump, char *name, double *mib)
{
    char command[8192], line[1024];
    snprintf(command, sizeof(command), "google-pprof --text --inuse_space '%s' '%s' 2>/dev/null", program,
             dump);
    FILE *pipe = popen(command, "r");
    CHECK(pipe != NULL, "popen");
    int after_total = 0;
    name[0] = '\0';
    while (fgets(line, sizeof(line), pipe)) {
        printf("  %s", line);
        if (!after_total)
            after_total = !strncmp(line, "Total:", 6);
        else if (!name[0])
            CHECK(sscanf(line, "%lf %*s %*s %*s %*s %255s", mib, name) == 2, "cannot read [%s]", line);
    }
    pclose(pipe);
    CHECK(name[0], "no function in google-pprof's report of %s", dump);
}

static int check_leak(const char *extra)
{
    char dir[] = "/tmp/hmm-prof-XXXXXX", options[512], dump[4096], program[4096], name[256];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(options, sizeof(options), "prof=true,prof_sample=64K,prof_prefix=%s/leak%s", dir, extra);
    struct child c;
    child_self(&c, options, "run", NULL, NULL);
    CHECK(child_exited(&c, 0), "%s: %s; stderr [%s]", options, child_how(&c), c.err);
    find_dump(dir, dump, sizeof(dump));
    ssize_t n = readlink("/proc/self/exe", program, sizeof(program) - 1);
    CHECK(n > 0, "readlink");
    program[n] = '\0';
    double mib = 0;
    printf("HMM_OPTIONS=%s\n", options);
    pprof_top(program, dump, name, &mib);
    unlink(dump);
    rmdir(dir);
    if (strcmp(name, "leak_memory") != 0 || mib < LEAK_MIB * 0.8 || mib > LEAK_MIB * 1.2) {
        printf("FAIL: first is %s with %.1f MiB, expected leak_memory with %.0f MiB +- 20%%\n", name, mib,
               LEAK_MIB);
        return 1;
    }
    printf("PASS: leak_memory first, %.1f MiB of %.0f\n", mib, LEAK_MIB);
    return 0;
}

int main(int argc, char **argv)
{
    alarm(TEST_TIMEOUT);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && !strcmp(argv[1], "run")) {
        run();
        return 0;
    }
    if (system("command -v google-pprof >/dev/null 2>&1") != 0) {
        printf("SKIP: google-pprof not found (Debian package google-perftools)\n");
        return TEST_SKIP;
    }
    return check_leak("") | check_leak(",check=full");
}
