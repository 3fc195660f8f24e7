/* A growing block that realloc moves into a chunk of its own keeps room
 * there to grow in place, even when another chunk is taken right above it
 * (another thread's, in a program with two).  A buffer doubled from
 * 600 KB to 4.8 MB, one byte written at each size, moves once: without
 * the room each later doubling moved too, and each copy made the whole
 * old size resident.  The room is slack: malloc_usable_size stays what
 * was asked. */
#include "config.h"

#include <stdio.h>

#include "hmm.h"
#include "testutil.h"

#define KB ((size_t)1000)
#define MiB ((size_t)1 << 20)

int main(void)
{
    size_t size = 300 * KB;
    unsigned char *buffer = hmm_malloc(size), *neighbour = hmm_malloc(100 * KB);
    CHECK(buffer != NULL && neighbour != NULL, "malloc failed");
    buffer[0] = 0xa5;
    size *= 2;
    unsigned char *moved = hmm_realloc(buffer, size);
    CHECK(moved != NULL, "realloc to %zu failed", size);
    moved[size - 1] = 1;
    unsigned char *above = hmm_malloc(2 * MiB);
    CHECK(above != NULL, "malloc(2 MiB) failed");
    above[0] = 1;
    resident_bytes();   /* its stdio's first blocks come before the count */
    size_t resident_before = resident_bytes();
    for (unsigned step = 2; step <= 4; step++) {
        size *= 2;
        unsigned char *grown = hmm_realloc(moved, size);
        CHECK(grown == moved, "realloc to %zu KB moved the block from %p to %p", size / KB, (void *)moved,
              (void *)grown);
        CHECK(grown[0] == 0xa5 && grown[size / 2 - 1] == step - 1, "realloc to %zu lost bytes", size);
        grown[size - 1] = (unsigned char)step;
    }
    size_t grew = resident_bytes() - resident_before;
    CHECK(hmm_malloc_usable_size(moved) < size + 4 * KB, "realloc to %zu: usable %zu", size,
          hmm_malloc_usable_size(moved));
    CHECK(grew < 256 * 1024, "growing to %zu KB made %zu KiB resident", size / KB, grew / 1024);
    hmm_free(moved);
    hmm_free(above);
    hmm_free(neighbour);
    printf("grew to %zu KB in place above a 2 MiB block, %zu KiB more resident\n", size / KB, grew / 1024);
    return 0;
}
