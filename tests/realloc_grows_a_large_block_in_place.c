/* realloc grows a large block where it lies when the break can make the
 * room: a block in the region's top chunk, or under a free top chunk too
 * small to make up the difference alone (the pad each growth of the break
 * leaves).  A move would copy every byte, the untouched ones too: a buffer
 * grown by doubling from 2 to 16 MiB, one byte written at each size, would
 * make megabytes resident that the program never wrote.  So: the pointer
 * stays, the written bytes survive, and the resident set grows by no more
 * than a few pages per step. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "hmm.h"
#include "testutil.h"

#define MiB ((size_t)1 << 20)

int main(void)
{
    size_t size = 2 * MiB;
    unsigned char *buffer = hmm_malloc(size);
    CHECK(buffer != NULL, "malloc(%zu) failed", size);
    buffer[0] = 0xa5;
    buffer[size - 1] = 1;
    size_t resident_before = resident_bytes();
    for (unsigned step = 2; size < 16 * MiB; step++) {
        size *= 2;
        unsigned char *grown = hmm_realloc(buffer, size);
        CHECK(grown != NULL, "realloc to %zu failed", size);
        CHECK(grown == buffer, "realloc to %zu MiB moved the block from %p to %p", size / MiB,
              (void *)buffer, (void *)grown);
        CHECK(grown[0] == 0xa5 && grown[size / 2 - 1] == step - 1, "realloc to %zu lost bytes", size);
        grown[size - 1] = (unsigned char)step;
    }
    size_t grew = resident_bytes() - resident_before;
    CHECK(grew < MiB, "growing to %zu MiB made %zu KiB resident", size / MiB, grew / 1024);
    hmm_free(buffer);
    printf("grew to %zu MiB in place, %zu KiB more resident\n", size / MiB, grew / 1024);
    return 0;
}
