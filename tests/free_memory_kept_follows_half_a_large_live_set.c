/* Frees purge at once when an arena keeps more free memory resident than
 * half its live bytes, once those pass twice PURGE_LIVE_FULL (8 MiB): live
 * bytes count what the program asked for, touched or not, and a footprint
 * of as much free memory again as that kept steady churn half again above
 * its live set (soak: 302 MiB, 250 with half).  Holes of 80 KiB between
 * live walls of 96 KiB (both uncached, so they alternate in the chunks),
 * 31 MiB of holes written and freed while 37.5 MiB of walls stay live,
 * untouched: the holes must then lose a good part of their pages
 * (mincore(2) on their whole pages; all of them stayed while as much free
 * memory as live could stay resident).  Default options, no call. */
#include "config.h"

#include <stdio.h>

#include "hmm.h"
#include "testutil.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define HOLE (80 * KiB)     /* past the largest cached class: each free reaches the arena */
#define WALL (96 * KiB)     /* live, and more bytes than the holes */
#define HOLES 400

static void *hole[HOLES], *wall[HOLES];

int main(void)
{
    size_t pages, resident = holes_left_resident(hole, wall, HOLES, HOLE, WALL, &pages);
    printf("after the frees: %zu of the holes' %zu pages resident, %zu MiB live\n", resident, pages,
           HOLES * WALL / MiB);
    CHECK(resident < pages * 3 / 4, "%zu of %zu freed pages still resident: as much free memory as live stays",
          resident, pages);
    for (int i = 0; i < HOLES; i++)
        hmm_free(wall[i]);
    return 0;
}
