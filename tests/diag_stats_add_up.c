/* The statistics add up.
 *
 *  - In one thread: after allocating a known set of blocks (sizes from 1
 *    byte to 40 MiB, some above the 32 MiB mmap threshold, one in a chunk of
 *    its own), hmm_stats().in_use_bytes is the baseline plus the sum of
 *    their malloc_usable_size; after freeing half of them, the baseline plus
 *    what is still held; huge_blocks counts the huge ones held.
 *  - The process totals are the sums of the per-arena rows (in use, free,
 *    cached, slow mallocs and frees), plus the huge blocks' usable bytes
 *    for in use; arena_count matches the rows.
 *  - With four threads each holding blocks (kept alive at a barrier), the
 *    rows still add up to the totals, and the totals hold at least what the
 *    threads hold.
 *  - hmm_stats_print(fd, "json") is valid JSON (python3's json.load) whose
 *    numbers are the struct's; "text" prints non-empty lines holding the
 *    same numbers; an unknown format returns -1 with errno EINVAL and
 *    writes nothing.
 *  - malloc_stats() writes glibc's report to stderr (in use bytes = the
 *    total); mallinfo2() agrees with hmm_stats (uordblks = in use, hblks
 *    and hblkhd = huge blocks and bytes).  The standard names too in an
 *    override build.
 *  - HMM_OPTIONS=stats_at_exit=true prints the text statistics on stderr at
 *    exit (a child, re-executed); without it, or =false, nothing.
 *
 * Links libhmm.la; calls the hmm_* names (and the standard names when
 * HMM_OVERRIDE).  Exits 77 when python3 is missing, after the rest passed. */
#include "config.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hmm.h"
#include "diag_child.h"

#define MiB ((size_t)1 << 20)
#define NTHREADS 4
#define PER_THREAD 40

static int failures;

#define EXPECT(cond, ...)                                                   \
    do {                                                                    \
        if (!(cond)) {                                                      \
            printf("FAIL: %s:%d: %s: ", __FILE__, __LINE__, #cond);        \
            printf(__VA_ARGS__);                                            \
            printf("\n");                                                   \
            failures++;                                                     \
        }                                                                   \
    } while (0)

static void stats(struct hmm_stats *s)
{
    CHECK(hmm_stats(s) == 0, "hmm_stats");
}

/* Totals against the sum of the rows; huge_usable is what the huge blocks
 * alive in the process may use.  Once arenas were retired (their threads
 * exited), the slow mallocs and frees they counted stay in the totals and
 * in no row (tests/stats_totals_outlive_retired_arenas). */
static void rows_add_up(const struct hmm_stats *s, size_t huge_usable, const char *when, bool retired)
{
    size_t in_use = 0, free_bytes = 0, cached = 0;
    uint64_t mallocs = 0, frees = 0;
    EXPECT(s->arena_count == s->arenas_listed || s->arenas_listed == HMM_STATS_ARENAS,
           "%s: %u arenas but %u rows", when, s->arena_count, s->arenas_listed);
    EXPECT(s->arena_count >= 1, "%s: no arena", when);
    if (s->arenas_listed != s->arena_count)
        return;
    for (unsigned i = 0; i < s->arenas_listed; i++) {
        in_use += s->arenas[i].in_use_bytes;
        free_bytes += s->arenas[i].free_bytes;
        cached += s->arenas[i].cached_bytes;
        mallocs += s->arenas[i].mallocs;
        frees += s->arenas[i].frees;
    }
    EXPECT(s->in_use_bytes == in_use + huge_usable,
           "%s: in use %zu, rows %zu + huge usable %zu", when, s->in_use_bytes, in_use, huge_usable);
    EXPECT(s->free_bytes == free_bytes, "%s: free %zu, rows %zu", when, s->free_bytes, free_bytes);
    EXPECT(s->cached_bytes == cached, "%s: cached %zu, rows %zu", when, s->cached_bytes, cached);
    EXPECT(retired ? s->slow_mallocs >= mallocs : s->slow_mallocs == mallocs, "%s: slow mallocs %llu, rows %llu",
           when, (unsigned long long)s->slow_mallocs, (unsigned long long)mallocs);
    EXPECT(retired ? s->slow_frees >= frees : s->slow_frees == frees, "%s: slow frees %llu, rows %llu", when,
           (unsigned long long)s->slow_frees, (unsigned long long)frees);
}

/* ---- one thread ---------------------------------------------------------- */

static const size_t sizes[] = {
    1, 16, 24, 100, 500, 512, 1000, 4096, 5000, 32768, 40000, 200000,
    1 * MiB, 3 * MiB, 33 * MiB, 40 * MiB,
};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))
#define ROUNDS 3

/* What held blocks may use; the huge ones (all sizes above 32 MiB) apart. */
struct held {
    size_t bytes, huge_bytes, huge_count;
};

static void hold(struct held *h, size_t usable)
{
    h->bytes += usable;
    if (usable > 32 * MiB) {
        h->huge_bytes += usable;
        h->huge_count++;
    }
}

/* The statistics s, taken `when`, against the baseline s0 and what is held. */
static void expect_held(const struct hmm_stats *s0, const struct hmm_stats *s, const struct held *h,
                        const char *when)
{
    EXPECT(s->in_use_bytes == s0->in_use_bytes + h->bytes, "%s: in use %zu, expected baseline %zu + held %zu",
           when, s->in_use_bytes, s0->in_use_bytes, h->bytes);
    EXPECT(s->huge_blocks == s0->huge_blocks + h->huge_count, "%s: huge blocks %zu, expected %zu + %zu", when,
           s->huge_blocks, s0->huge_blocks, h->huge_count);
    rows_add_up(s, h->huge_bytes, when, false);
}

static void one_thread(void)
{
    void *held[NSIZES * ROUNDS];
    size_t usable[NSIZES * ROUNDS];
    struct held all = { 0 }, kept = { 0 }, none = { 0 };
    struct hmm_stats s0, s1, s2;
    size_t n = 0;

    stats(&s0);
    CHECK(s0.huge_blocks == 0, "huge blocks alive before the test: %zu", s0.huge_blocks);
    for (int r = 0; r < ROUNDS; r++)
        for (size_t i = 0; i < NSIZES; i++) {
            held[n] = hmm_malloc(sizes[i]);
            CHECK(held[n] != NULL, "malloc(%zu)", sizes[i]);
            memset(held[n], 0x33, sizes[i] < 4096 ? sizes[i] : 4096);
            usable[n] = hmm_malloc_usable_size(held[n]);
            CHECK(usable[n] >= sizes[i], "usable %zu < %zu", usable[n], sizes[i]);
            hold(&all, usable[n++]);
        }
    stats(&s1);
    expect_held(&s0, &s1, &all, "after allocating");
    EXPECT(s1.huge_bytes >= s0.huge_bytes + all.huge_bytes, "huge bytes %zu < %zu + %zu", s1.huge_bytes,
           s0.huge_bytes, all.huge_bytes);

    /* free every other block */
    for (size_t i = 0; i < n; i++) {
        if (i % 2) {
            hmm_free(held[i]);
            held[i] = NULL;
        } else {
            hold(&kept, usable[i]);
        }
    }
    stats(&s2);
    expect_held(&s0, &s2, &kept, "after freeing half");

    for (size_t i = 0; i < n; i++)
        hmm_free(held[i]);
    stats(&s2);
    expect_held(&s0, &s2, &none, "after freeing all");
    printf("one thread: %zu blocks, %zu bytes usable, %zu huge\n", n, all.bytes, all.huge_count);
}

/* ---- threads holding blocks at a barrier --------------------------------- */

static pthread_barrier_t held_barrier, release_barrier;
static size_t thread_usable[NTHREADS], thread_huge[NTHREADS];

static void *holder(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t r = 1000 + (uint64_t)id;
    void *blocks[PER_THREAD + 1];
    size_t sum = 0;
    for (int i = 0; i < PER_THREAD; i++) {
        size_t size = rng_range(&r, 1, rng_range(&r, 0, 3) ? 2000 : 300000);
        blocks[i] = hmm_malloc(size);
        CHECK(blocks[i] != NULL, "malloc(%zu)", size);
        sum += hmm_malloc_usable_size(blocks[i]);
    }
    blocks[PER_THREAD] = hmm_malloc(33 * MiB);   /* one huge block each */
    CHECK(blocks[PER_THREAD] != NULL, "malloc(33 MiB)");
    thread_huge[id] = hmm_malloc_usable_size(blocks[PER_THREAD]);
    thread_usable[id] = sum;
    pthread_barrier_wait(&held_barrier);
    pthread_barrier_wait(&release_barrier);
    for (int i = 0; i <= PER_THREAD; i++)
        hmm_free(blocks[i]);
    return NULL;
}

static void threads_hold(void)
{
    pthread_t t[NTHREADS];
    struct hmm_stats s0, s;
    size_t held = 0, huge = 0;

    stats(&s0);
    CHECK(s0.huge_blocks == 0, "huge blocks alive before the threads: %zu", s0.huge_blocks);
    CHECK(pthread_barrier_init(&held_barrier, NULL, NTHREADS + 1) == 0, "barrier");
    CHECK(pthread_barrier_init(&release_barrier, NULL, NTHREADS + 1) == 0, "barrier");
    for (int i = 0; i < NTHREADS; i++)
        CHECK(pthread_create(&t[i], NULL, holder, (void *)(intptr_t)i) == 0, "pthread_create");
    pthread_barrier_wait(&held_barrier);
    stats(&s);
    for (int i = 0; i < NTHREADS; i++) {
        held += thread_usable[i] + thread_huge[i];
        huge += thread_huge[i];
    }
    EXPECT(s.huge_blocks == NTHREADS, "%zu huge blocks, the threads hold %d", s.huge_blocks, NTHREADS);
    rows_add_up(&s, huge, "threads holding blocks", false);
    /* other threads' caches count as in use, so at least what they hold */
    EXPECT(s.in_use_bytes >= s0.in_use_bytes + held, "in use %zu < baseline %zu + held by threads %zu",
           s.in_use_bytes, s0.in_use_bytes, held);
    EXPECT(s.arena_count >= 2, "four threads allocating share one arena (arena_count %u)", s.arena_count);
    pthread_barrier_wait(&release_barrier);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&held_barrier);
    pthread_barrier_destroy(&release_barrier);
    stats(&s);
    rows_add_up(&s, 0, "after the threads exited", true);
    printf("threads: %d threads held %zu bytes in %u arenas\n", NTHREADS, held, s.arena_count);
}

/* ---- printing ------------------------------------------------------------ */

static int temp_file(char *path)
{
    strcpy(path, "/tmp/hmm-diag-stats-XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
    return fd;
}

static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    ssize_t n;
    CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek");
    while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    return len;
}

static int contains_number(const char *text, unsigned long long value)
{
    char digits[32];
    snprintf(digits, sizeof(digits), "%llu", value);
    for (const char *p = strstr(text, digits); p; p = strstr(p + 1, digits))
        if ((p == text || p[-1] < '0' || p[-1] > '9') && (p[strlen(digits)] < '0' || p[strlen(digits)] > '9'))
            return 1;
    return 0;
}

static const char *python3(void)
{
    const char *py = getenv("PYTHON3");
    return py && *py ? py : "python3";
}

/* Returns 0 when checked, 1 when python3 is missing. */
static int json_matches(void)
{
    static char text[65536];
    char path[64], command[1024], line[256];
    struct hmm_stats s;
    int fd = temp_file(path);
    void *hold = hmm_malloc(1000), *huge = hmm_malloc(33 * MiB);
    CHECK(hold && huge, "malloc");

    stats(&s);
    CHECK(hmm_stats_print(fd, "json") == 0, "hmm_stats_print(json)");
    size_t len = read_all(fd, text, sizeof(text));
    EXPECT(len > 2 && text[len - 1] == '\n' && count_lines(text) == 1,
           "the JSON is not one line ending in a newline: [%s]", text);

    int command_len = snprintf(command, sizeof(command),
             "'%s' -c 'import json,sys\n"
             "d = json.load(open(sys.argv[1]))\n"
             "for k, v in d.items():\n"
             "    if k != \"arenas\": print(k, int(v))\n"
             "print(\"rows\", len(d[\"arenas\"]))\n"
             "for i, a in enumerate(d[\"arenas\"]):\n"
             "    for k, v in a.items(): print(\"%%d.%%s\" %% (i, k), int(v))\n"
             "' %s 2>&1", python3(), path);
    CHECK(command_len > 0 && (size_t)command_len < sizeof(command), "the python3 command is too long");
    FILE *py = popen(command, "r");
    CHECK(py != NULL, "popen");
    int keys = 0;
    unsigned long long rows = (unsigned long long)-1;
    static char output[65536];
    size_t out_len = 0;
    while (fgets(line, sizeof(line), py)) {
        size_t l = strlen(line);
        if (out_len + l < sizeof(output)) {
            memcpy(output + out_len, line, l + 1);
            out_len += l;
        }
        char key[64];
        unsigned long long value;
        if (sscanf(line, "%63s %llu", key, &value) != 2)
            continue;
        keys++;
#define FIELD(name) else if (!strcmp(key, #name)) EXPECT(value == (unsigned long long)s.name, \
            "json %s = %llu, struct %llu", key, value, (unsigned long long)s.name)
        if (0) {}
        FIELD(in_use_bytes); FIELD(free_bytes); FIELD(cached_bytes); FIELD(region_bytes);
        FIELD(region_free_bytes); FIELD(region_break); FIELD(mapped_chunk_bytes);
        FIELD(huge_blocks); FIELD(huge_bytes); FIELD(returned_bytes); FIELD(footprint_bytes);
        FIELD(slow_mallocs); FIELD(slow_frees); FIELD(arena_count);
#undef FIELD
        else if (!strcmp(key, "rows"))
            rows = value;
        else {
            unsigned row;
            char field[48];
            if (sscanf(key, "%u.%47s", &row, field) == 2 && row < s.arenas_listed) {
                const struct hmm_arena_stats *a = &s.arenas[row];
#define ROW(name) else if (!strcmp(field, #name)) EXPECT(value == (unsigned long long)a->name, \
            "json arenas[%u].%s = %llu, struct %llu", row, field, value, (unsigned long long)a->name)
                if (0) {}
                ROW(id); ROW(threads); ROW(orphaned); ROW(chunks); ROW(chunk_bytes);
                ROW(in_use_bytes); ROW(free_bytes); ROW(cached_bytes); ROW(mallocs); ROW(frees);
                ROW(remote_frees);
#undef ROW
            }
        }
    }
    int status = pclose(py);
    unlink(path);
    close(fd);
    hmm_free(hold);
    hmm_free(huge);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        printf("SKIP: json: %s is not there (%s)\n", python3(), output);
        return 1;
    }
    EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "python3 could not parse the JSON: %s [%s]",
           output, text);
    EXPECT(keys >= 14, "only %d numbers in the JSON: [%s]", keys, output);
    EXPECT(rows == s.arenas_listed, "the JSON has %llu arena rows, the struct %u", rows, s.arenas_listed);
    printf("json: %d numbers match the struct\n", keys);
    return 0;
}

static void text_and_bad_formats(void)
{
    static char text[65536];
    char path[64];
    struct hmm_stats s;
    int fd = temp_file(path);

    stats(&s);
    CHECK(hmm_stats_print(fd, "text") == 0, "hmm_stats_print(text)");
    size_t len = read_all(fd, text, sizeof(text));
    EXPECT(len > 0 && text[len - 1] == '\n', "the text does not end in a newline: [%s]", text);
    EXPECT(!strstr(text, "\n\n") && text[0] != '\n', "an empty line in the text: [%s]", text);
    EXPECT(count_lines(text) >= 2, "the text has %d lines: [%s]", count_lines(text), text);
    EXPECT(contains_number(text, s.in_use_bytes), "the text lacks in use = %zu: [%s]", s.in_use_bytes, text);
    EXPECT(contains_number(text, s.region_bytes), "the text lacks region = %zu: [%s]", s.region_bytes, text);
    int lines = count_lines(text);

    CHECK(ftruncate(fd, 0) == 0, "ftruncate");
    errno = 0;
    EXPECT(hmm_stats_print(fd, "xml") == -1 && errno == EINVAL, "format xml: errno %d", errno);
    errno = 0;
    EXPECT(hmm_stats_print(fd, "") == -1 && errno == EINVAL, "format \"\": errno %d", errno);
    errno = 0;
    EXPECT(hmm_stats_print(fd, "JSON") == -1 && errno == EINVAL, "format JSON: errno %d", errno);
    errno = 0;
    EXPECT(hmm_stats_print(fd, NULL) == -1 && errno == EINVAL, "format NULL: errno %d", errno);
    EXPECT(read_all(fd, text, sizeof(text)) == 0, "a bad format wrote [%s]", text);
    unlink(path);
    close(fd);
    printf("text: %d lines; bad formats refused\n", lines);
}

/* The value after "label = " on the last line that has it. */
static unsigned long long glibc_field(const char *text, const char *label)
{
    unsigned long long value = (unsigned long long)-1;
    for (const char *p = strstr(text, label); p; p = strstr(p + 1, label)) {
        const char *eq = strchr(p, '=');
        if (eq)
            value = strtoull(eq + 1, NULL, 10);
    }
    return value;
}

static void malloc_stats_to_stderr(void (*report)(void), const char *name)
{
    static char text[8192];
    char path[64];
    struct hmm_stats s;
    int fd = temp_file(path);
    int saved = dup(2);
    CHECK(saved >= 0, "dup");
    void *huge = hmm_malloc(33 * MiB);
    CHECK(huge != NULL, "malloc");
    fflush(stderr);
    CHECK(dup2(fd, 2) == 2, "dup2");
    stats(&s);
    report();
    dup2(saved, 2);
    close(saved);
    read_all(fd, text, sizeof(text));
    unlink(path);
    close(fd);
    hmm_free(huge);
    EXPECT(count_lines(text) >= 2, "%s wrote nothing much to stderr: [%s]", name, text);
    EXPECT(glibc_field(text, "in use bytes") == s.in_use_bytes,
           "%s: total in use bytes %llu, hmm_stats %zu: [%s]", name, glibc_field(text, "in use bytes"),
           s.in_use_bytes, text);
    EXPECT(glibc_field(text, "max mmap regions") == s.huge_blocks,
           "%s: mmap regions %llu, huge blocks %zu: [%s]", name, glibc_field(text, "max mmap regions"),
           s.huge_blocks, text);
    printf("%s: %d lines on stderr, in use bytes = %zu\n", name, count_lines(text), s.in_use_bytes);
}

static void mallinfo2_agrees(struct mallinfo2 (*info)(void), const char *name)
{
    void *huge = hmm_malloc(40 * MiB), *small = hmm_malloc(300);
    CHECK(huge && small, "malloc");
    struct hmm_stats s;
    stats(&s);
    struct mallinfo2 mi = info();
    EXPECT(mi.uordblks == s.in_use_bytes, "%s: uordblks %zu, in use %zu", name, mi.uordblks, s.in_use_bytes);
    EXPECT(mi.hblks == s.huge_blocks && mi.hblks >= 1, "%s: hblks %zu, huge blocks %zu", name, mi.hblks,
           s.huge_blocks);
    EXPECT(mi.hblkhd == s.huge_bytes, "%s: hblkhd %zu, huge bytes %zu", name, mi.hblkhd, s.huge_bytes);
    EXPECT(mi.fordblks >= s.free_bytes, "%s: fordblks %zu < free in arenas %zu", name, mi.fordblks,
           s.free_bytes);
    hmm_free(huge);
    hmm_free(small);
    printf("%s: uordblks %zu, hblks %zu\n", name, mi.uordblks, mi.hblks);
}

/* ---- stats_at_exit ------------------------------------------------------- */

static void child_exit_main(void)
{
    void *p = hmm_malloc(1234);
    CHECK(p != NULL, "malloc");
    /* what the exit report will look like, for the parent */
    hmm_stats_print(1, "text");
}

static void stats_at_exit(void)
{
    struct child c;
    child_self(&c, "stats_at_exit=true", "exit", NULL, NULL);
    char first_out[256] = "", first_err[256] = "";
    sscanf(c.out, "%255[^\n]", first_out);
    sscanf(c.err, "%255[^\n]", first_err);
    EXPECT(child_exited(&c, 0), "stats_at_exit=true: the child %s", child_how(&c));
    EXPECT(c.err_len > 0 && !strstr(c.err, "\n\n") && count_lines(c.err) == count_lines(c.out),
           "stats_at_exit=true: stderr has %d lines, the text report %d: [%s]", count_lines(c.err),
           count_lines(c.out), c.err);
    EXPECT(first_out[0] && !strcmp(first_out, first_err),
           "stats_at_exit=true: stderr does not start like the text report: [%s] vs [%s]", first_err,
           first_out);

    child_self(&c, NO_OPTIONS, "exit", NULL, NULL);
    EXPECT(child_exited(&c, 0) && c.err_len == 0, "no options: %s, stderr [%s]", child_how(&c), c.err);
    child_self(&c, "stats_at_exit=false", "exit", NULL, NULL);
    EXPECT(child_exited(&c, 0) && c.err_len == 0, "stats_at_exit=false: %s, stderr [%s]", child_how(&c),
           c.err);
    printf("stats_at_exit: the report at exit, nothing without it\n");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 2 && !strcmp(argv[1], "exit")) {
        child_exit_main();
        return 0;
    }
    alarm(TEST_TIMEOUT);
    printf("statistics add up\n");   /* stdio's buffer exists before any baseline */

    one_thread();
    threads_hold();
    int no_python = json_matches();
    text_and_bad_formats();
    malloc_stats_to_stderr(hmm_malloc_stats, "hmm_malloc_stats");
    mallinfo2_agrees(hmm_mallinfo2, "hmm_mallinfo2");
#ifdef HMM_OVERRIDE
    malloc_stats_to_stderr(malloc_stats, "malloc_stats");
    mallinfo2_agrees(mallinfo2, "mallinfo2");
#endif
    stats_at_exit();

    CHECK(hmm_check() == 0, "hmm_check at the end");
    printf("%d failures\n", failures);
    if (failures)
        return 1;
    return no_python ? TEST_SKIP : 0;
}
