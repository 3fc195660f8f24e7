/* A block header damaged by an overflow from the block below, or forged,
 * stops the program at the next free of the block with one line
 * ("hmm: free(): corrupted block header at ...") and abort(): never a
 * crash, a hang, or a later malloc that returns a block shorter than asked.
 *
 *  - overflow N, N = 1..16: write N bytes past the usable end of a live
 *    block, into the header of the live block just above it, then free
 *    that one;
 *  - forge CLASS: the header's class byte set to a value no block has
 *    (just past the real classes, the one after, 0xff) with the rest of
 *    the header intact, then free;
 *  - wrong_class: a 48-byte block's class set to the 80-byte class, then
 *    free and malloc(80): either the free stops the program with the
 *    line, or malloc(80) returns a block of at least 80 usable bytes;
 *  - key WORD: the header's first 8 bytes (tag, class, state, units) set
 *    to WORD, a header of zeroes and of zeroes but for one bit, with the
 *    default options and with check=full (whose thread cache keys carry
 *    KEY_SLOW, which the slow path's push takes off the header's key):
 *    the free must not read past the header on the units such a key says.
 *
 * Each case runs in a child (this program again, "case NAME ARG"). */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "hmm.h"
#include "internal.h"
#include "diag_child.h"

#define OVERFLOW_BYTE 0x41

/* Whatever a free accepted shows up in the next blocks handed out. */
static void go_on(void)
{
    for (int i = 0; i < 4; i++) {
        size_t sizes[] = { 48, 80 };
        for (int k = 0; k < 2; k++) {
            void *q = hmm_malloc(sizes[k]);
            CHECK(q != NULL, "malloc(%zu)", sizes[k]);
            size_t usable = hmm_malloc_usable_size(q);
            if (usable < sizes[k]) {
                printf("malloc(%zu) returned a block of %zu usable bytes\n", sizes[k], usable);
                exit(1);
            }
        }
    }
    printf("the program went on after the bug\n");
    exit(0);
}

/* Two live 48-byte blocks, lower just below upper. */
static void adjacent_pair(char **lower, char **upper)
{
    char *p[16];
    for (int i = 0; i < 16; i++) {
        p[i] = hmm_malloc(48);
        CHECK(p[i] != NULL, "malloc(48)");
    }
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++)
            if (block_next(block_of(p[i])) == block_of(p[j])) {
                *lower = p[i];
                *upper = p[j];
                return;
            }
    CHECK(0, "no two adjacent 48-byte blocks among 16");
}

static void overflow(size_t bytes)
{
    char *lower, *upper;
    adjacent_pair(&lower, &upper);
    size_t usable = hmm_malloc_usable_size(lower);
    CHECK(lower + usable == (char *)block_of(upper), "the upper header is not right past the lower block");
    memset(lower + usable, OVERFLOW_BYTE, bytes);
    printf("ptr %p\n", (void *)upper);
    hmm_free(upper);
    go_on();
}

/* A live 48-byte block of a bound thread (its bins open) with its class
 * byte, or its whole key, set to value, then freed. */
static void forge(bool whole_key, uint64_t value)
{
    void *warm = hmm_malloc(48);
    hmm_free(warm);
    char *p = hmm_malloc(48);
    CHECK(p != NULL, "malloc(48)");
    if (whole_key)
        block_of(p)->key = value;
    else
        block_of(p)->cls = (uint8_t)value;
    printf("ptr %p\n", (void *)p);
    hmm_free(p);
    go_on();
}

static int check_one_line(const char *name, const struct child *c)
{
    char ptr[64] = "";
    const char *line = strstr(c->out, "ptr ");
    if (line)
        sscanf(line + 4, "%63s", ptr);
    const char *why = NULL;
    if (!child_aborted(c))
        why = "did not end with SIGABRT";
    else if (!ptr[0])
        why = "the child did not reach the free";
    else if (count_lines(c->err) != 1 || c->err[c->err_len - 1] != '\n')
        why = "not exactly one line on stderr";
    else if (strncmp(c->err, "hmm: free(): ", 13) != 0 || !strstr(c->err, "corrupted block header"))
        why = "the line is not 'hmm: free(): corrupted block header ...'";
    else if (!strstr(c->err, ptr))
        why = "the line does not name the pointer";
    if (why) {
        printf("FAIL: %s: %s (%s); stdout [%s] stderr [%s]\n", name, why, child_how(c), c->out, c->err);
        return 1;
    }
    printf("PASS: %s: %s", name, c->err);
    return 0;
}

static int run_with(const char *options, const char *name, const char *arg, bool may_go_on)
{
    struct child c;
    char label[96];
    snprintf(label, sizeof(label), "%s %s%s%s", name, arg, options ? " " : "", options ? options : "");
    child_self(&c, options, "case", name, arg);
    if (may_go_on && child_exited(&c, 0) && c.err_len == 0) {
        printf("PASS: %s: the offset was not trusted (%s)", label, c.out);
        return 0;
    }
    return check_one_line(label, &c);
}

static int run(const char *name, const char *arg, bool may_go_on)
{
    return run_with(NULL, name, arg, may_go_on);
}

/* A header of zeroes, and of zeroes but for one bit, each bit in turn. */
static int run_keys(const char *options)
{
    int failures = 0;
    char arg[32];
    for (int bit = -1; bit < 64; bit++) {
        snprintf(arg, sizeof(arg), "%#llx", bit < 0 ? 0ull : 1ull << bit);
        failures += run_with(options, "key", arg, false);
    }
    return failures;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 4 && strcmp(argv[1], "case") == 0) {
        alarm(20);   /* a hang is a failure, not a stuck test */
        unsigned long long arg = strtoull(argv[3], NULL, 0);
        if (!strcmp(argv[2], "overflow"))
            overflow(arg);
        if (!strcmp(argv[2], "forge") || !strcmp(argv[2], "key"))
            forge(!strcmp(argv[2], "key"), arg);
        fprintf(stderr, "no case %s\n", argv[2]);
        return 2;
    }
    alarm(TEST_TIMEOUT);
    int failures = 0;
    char arg[32];
    for (int bytes = 1; bytes <= 16; bytes++) {
        snprintf(arg, sizeof(arg), "%d", bytes);
        failures += run("overflow", arg, false);
    }
    unsigned forged[] = { CLASS_COUNT, CLASS_COUNT + 1, 0xff };
    for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
        snprintf(arg, sizeof(arg), "%u", forged[i]);
        failures += run("forge", arg, false);
    }
    snprintf(arg, sizeof(arg), "%u", size_class(80));
    failures += run("forge", arg, true);
    failures += run_keys(NULL);
    failures += run_keys("check=full");
    printf("%d case(s) failed\n", failures);
    return failures ? 1 : 0;
}
