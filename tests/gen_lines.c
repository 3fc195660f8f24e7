/* Writes BYTES bytes (roughly) of deterministic pseudo-random text lines to
 * stdout, for the sort smoke test: a key of 1-40 letters, a number, and a
 * tail of 0-120 printable characters, tab-separated.
 *
 * Usage: gen_lines BYTES [SEED] */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

int main(int argc, char **argv)
{
    static char buf[1 << 16];
    unsigned long long want, done = 0;
    uint64_t r;

    if (argc < 2) {
        fprintf(stderr, "usage: %s BYTES [SEED]\n", argv[0]);
        return 2;
    }
    want = strtoull(argv[1], NULL, 0);
    r = argc > 2 ? strtoull(argv[2], NULL, 0) : 1;
    setvbuf(stdout, buf, _IOFBF, sizeof buf);
    while (done < want) {
        char line[200];
        size_t n = 0, k, i;
        /* Few distinct short keys so that sort must compare further. */
        k = rng_range(&r, 1, rng_range(&r, 0, 3) ? 6 : 40);
        for (i = 0; i < k; i++)
            line[n++] = (char)('a' + rng_range(&r, 0, rng_range(&r, 0, 1) ? 3 : 25));
        n += (size_t)sprintf(line + n, "\t%llu\t",
                             (unsigned long long)(rng_next(&r) >> rng_range(&r, 0, 63)));
        k = rng_range(&r, 0, 120);
        for (i = 0; i < k; i++)
            line[n++] = (char)rng_range(&r, 32, 126);
        line[n++] = '\n';
        if (fwrite(line, 1, n, stdout) != n)
            return 1;
        done += n;
    }
    return fflush(stdout) ? 1 : 0;
}
