/* The region keeps free chunks resident up to twice the largest chunk
 * given back lately (a program cycling buffers does not fault them in
 * again); a chunk that realloc reserved for a growing block counts by
 * what its block used, not by its untouched reserve.  A block grown to
 * 2 MiB reserves 16 MiB (a 17 MiB chunk) and is freed; then eight 1.5 MiB
 * blocks, every byte written, are freed: the break falls back and RSS
 * returns to within 8 MiB of before them.  While the reserve counted,
 * the limit was 34 MiB and all 12 MiB stayed resident.  Default options
 * (decay_ms 10 s, longer than the test), no call. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "hmm.h"
#include "testutil.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define BUFFERS 8
#define BUFFER (3 * MiB / 2)

int main(void)
{
    unsigned char *grown = hmm_malloc(100 * KiB);
    CHECK(grown != NULL, "malloc failed");
    grown = hmm_realloc(grown, 2 * MiB);
    CHECK(grown != NULL, "realloc to 2 MiB failed");
    memset(grown, 1, 2 * MiB);
    hmm_free(grown);
    resident_bytes();   /* its stdio's first blocks come before the count */
    size_t before = resident_bytes();
    static void *buffer[BUFFERS];
    for (int i = 0; i < BUFFERS; i++) {
        buffer[i] = hmm_malloc(BUFFER);
        CHECK(buffer[i] != NULL, "malloc(%zu) failed", BUFFER);
        memset(buffer[i], 0x5a, BUFFER);
    }
    size_t peak = resident_bytes();
    for (int i = BUFFERS - 1; i >= 0; i--)
        hmm_free(buffer[i]);
    size_t after = resident_bytes();
    printf("RSS %zu KiB, %zu with the buffers, %zu after freeing them\n", before / KiB, peak / KiB, after / KiB);
    CHECK(after < before + 8 * MiB, "%zu MiB of freed buffers stayed resident", (after - before) / MiB);
    return 0;
}
