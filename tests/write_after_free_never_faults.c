/* Random writes after free never fault inside hmm.  A program keeps 4,000
 * slots of blocks (8..507 B, one in eight 1..60 KiB) and replaces them at
 * random; at step 150,000 another thread frees a share of the slots, and
 * it goes on.  An odd seed writes 1 to 16 random bytes somewhere in the
 * first 32 of a block the program freed earlier, at step 100,000; an even
 * seed into one the other thread freed, while that thread's cache still
 * holds it (it then exits, and its cache goes back to the blocks' owner).
 * The write may land in a link, a header or plain data: each run must end
 * either at its end or in an abort after exactly one "hmm: " line, never
 * in another signal.
 *
 * Not linked with hmm: every run is a child under LD_PRELOAD of HMM_LIB.
 *
 *   write_after_free_never_faults            make check: RUNS seeds
 *   write_after_free_never_faults run SEED   one run, in this process */
#include <pthread.h>
#include <stdbool.h>

#include "diag_child.h"

#define RUNS 300
#define SLOTS 4000
#define STEPS 300000
#define MISUSE_STEP 100000
#define OTHER_THREAD_STEP 150000
#define FREED_KEPT 64

static char *slot[SLOTS];
static size_t slot_size[SLOTS];
static uint64_t rng;
static char *freed_there[FREED_KEPT];
static size_t freed_there_size[FREED_KEPT];
static int kept_there;
static pthread_barrier_t freed_and_written;

/* The other thread: frees a share of the slots, keeping a few of the
 * blocks, and waits while the program writes into one before it exits. */
static void *free_some(void *unused)
{
    (void)unused;
    uint64_t local = rng;
    for (int i = 0; i < SLOTS / 2; i++) {
        size_t k = rng_next(&local) % SLOTS;
        if (slot[k] != NULL && kept_there < FREED_KEPT) {
            freed_there[kept_there] = slot[k];
            freed_there_size[kept_there++] = slot_size[k];
        }
        free(slot[k]);
        slot[k] = NULL;
    }
    pthread_barrier_wait(&freed_and_written);
    pthread_barrier_wait(&freed_and_written);
    return NULL;
}

static size_t random_size(void)
{
    return rng_next(&rng) % 8 == 0 ? 1024 + rng_next(&rng) % 60000 : 8 + rng_next(&rng) % 500;
}

/* One block freed earlier gets len random bytes at a random offset
 * below 32 (within the block). */
static void write_after_free(char *const *freed, const size_t *sizes, int count)
{
    int d = (int)(rng_next(&rng) % (uint64_t)count);
    size_t at = rng_next(&rng) % 32, len = 1 + rng_next(&rng) % 16;
    if (at >= sizes[d])
        return;
    if (at + len > sizes[d])
        len = sizes[d] - at;
    memset(freed[d] + at, (int)(rng_next(&rng) & 0xff), len);
}

static void run(uint64_t seed)
{
    char *freed[FREED_KEPT];
    size_t freed_size[FREED_KEPT];
    int kept = 0;
    bool there = seed % 2 == 0;
    rng = seed;
    pthread_barrier_init(&freed_and_written, NULL, 2);
    for (long step = 0; step < STEPS; step++) {
        size_t k = rng_next(&rng) % SLOTS;
        if (slot[k] != NULL) {
            if (kept < FREED_KEPT && rng_next(&rng) % 2000 == 0) {
                freed[kept] = slot[k];
                freed_size[kept++] = slot_size[k];
            }
            free(slot[k]);
            slot[k] = NULL;
        } else {
            slot_size[k] = random_size();
            slot[k] = malloc(slot_size[k]);
            CHECK(slot[k] != NULL, "malloc(%zu) failed", slot_size[k]);
            memset(slot[k], 1, slot_size[k] < 64 ? slot_size[k] : 64);
        }
        if (step == MISUSE_STEP && kept > 0 && !there)
            write_after_free(freed, freed_size, kept);
        if (step == OTHER_THREAD_STEP) {
            pthread_t other;
            CHECK(pthread_create(&other, NULL, free_some, NULL) == 0, "thread");
            pthread_barrier_wait(&freed_and_written);
            if (there && kept_there > 0)
                write_after_free(freed_there, freed_there_size, kept_there);
            pthread_barrier_wait(&freed_and_written);
            CHECK(pthread_join(other, NULL) == 0, "thread");
        }
    }
    printf("ran to its end\n");
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "run") == 0) {
        run(strtoull(argv[2], NULL, 10));
        return 0;
    }
    alarm(TEST_TIMEOUT);
    const char *lib = getenv("HMM_LIB");
    if (lib == NULL || access(lib, R_OK) != 0) {
        printf("SKIP: HMM_LIB not set or not readable\n");
        return TEST_SKIP;
    }
    setenv("LD_PRELOAD", lib, 1);
    static struct child c;
    int ended = 0, aborted = 0, failures = 0;
    for (int seed = 1; seed <= RUNS; seed++) {
        char text[24];
        snprintf(text, sizeof(text), "%d", seed);
        child_self(&c, NO_OPTIONS, "run", text, NULL);
        if (child_exited(&c, 0) && strstr(c.out, "ran to its end") != NULL && c.err_len == 0) {
            ended++;
        } else if (child_aborted(&c) && count_lines(c.err) == 1 && strncmp(c.err, "hmm: ", 5) == 0) {
            aborted++;
        } else {
            printf("FAIL: seed %d: %s; stderr [%s]\n", seed, child_how(&c), c.err);
            failures++;
        }
    }
    printf("%d runs: %d ran to their end, %d aborted with one line, %d failed\n", RUNS, ended, aborted,
           failures);
    return failures ? 1 : 0;
}
