/* Frees purge at once when an arena keeps more free memory resident than
 * its live bytes (and 4 MiB): the room a realloc'ed block reserves in its
 * chunk (realloc_keeps_room_to_grow_after_a_move) is untouched and does
 * not count as live.  A block grown by realloc to 2 MiB reserves 16 MiB;
 * 128 blocks of 96 KiB (12 MiB), written and freed between live walls,
 * must then lose a good part of their pages (mincore(2) on their whole
 * pages: about half stay here; all of them stayed while the reserve
 * counted as live).  Default options, no call. */
#include "config.h"

#include <stdio.h>

#include "hmm.h"
#include "testutil.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define HOLES 128
#define HOLE (96 * KiB)     /* uncached: each free reaches the arena */
#define WALL (2 * KiB)      /* keeps each hole from merging with the next */

int main(void)
{
    unsigned char *grown = hmm_malloc(100 * KiB);
    CHECK(grown != NULL, "malloc failed");
    grown = hmm_realloc(grown, 2 * MiB);
    CHECK(grown != NULL, "realloc to 2 MiB failed");
    grown[2 * MiB - 1] = 1;
    static void *hole[HOLES], *wall[HOLES];
    size_t pages, resident = holes_left_resident(hole, wall, HOLES, HOLE, WALL, &pages);
    printf("after the frees: %zu of the holes' %zu pages resident\n", resident, pages);
    CHECK(resident < pages * 3 / 4, "%zu of %zu freed pages still resident: the reserve counted as live", resident,
          pages);
    for (int i = 0; i < HOLES; i++)
        hmm_free(wall[i]);
    hmm_free(grown);
    return 0;
}
