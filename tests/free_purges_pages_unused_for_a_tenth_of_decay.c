/* Frees purge the pages of free blocks that have gone unused for a tenth of
 * decay_ms, with no call and no maintenance thread (hmm(3), "Returning
 * memory").  Eight free blocks of 128 KiB sit between live ones (so they
 * stay in their chunk, and 1 MiB is too little for the purge by size); a
 * free right away purges none of their pages, even when the arena had no
 * free for longer than the delay before, and a free after twice the delay
 * purges them all (mincore(2) on their whole pages).
 *
 * The test re-executes itself with HMM_OPTIONS=decay_ms=1000 (delay 100 ms)
 * and background_thread=false.  Calls the hmm_* names; links libhmm.la. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "hmm.h"
#include "diag_child.h"
#include "testutil.h"

#define KiB ((size_t)1 << 10)
#define HOLES 8
#define HOLE (128 * KiB)
#define UNCACHED (640 * KiB)    /* uncached (frees reach the arena), and no hole fits it */
#define DELAY_MS 100            /* decay_ms / 10 */
#define WALL (72 * KiB)         /* uncached too: walls and holes are cut one after the other */

/* A free that reaches the arena's slow path. */
static void slow_free(void)
{
    void *p = hmm_malloc(UNCACHED);
    CHECK(p != NULL, "malloc(%zu)", UNCACHED);
    hmm_free(p);
}

static void pause_ms(long ms)
{
    struct timespec pause = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&pause, NULL);
}

static int purge_after_delay(void)
{
    static void *hole[HOLES], *wall[HOLES + 1];
    slow_free();
    for (int i = 0; i < HOLES; i++) {
        wall[i] = hmm_malloc(WALL);
        hole[i] = hmm_malloc(HOLE);
        CHECK(wall[i] != NULL && hole[i] != NULL, "malloc");
        memset(hole[i], 0x5a, HOLE);
    }
    wall[HOLES] = hmm_malloc(WALL);
    pause_ms(2 * DELAY_MS);
    size_t touched = resident_pages_of(hole, HOLES, HOLE, NULL);
    for (int i = 0; i < HOLES; i++)
        hmm_free(hole[i]);
    slow_free();
    size_t at_once = resident_pages_of(hole, HOLES, HOLE, NULL);
    pause_ms(2 * DELAY_MS);
    slow_free();
    size_t later = resident_pages_of(hole, HOLES, HOLE, NULL);
    printf("resident pages of the free blocks: %zu before the frees, %zu right after, %zu after %d ms "
           "and one more free\n", touched, at_once, later, 2 * DELAY_MS);
    CHECK(at_once == touched, "the frees purged %zu pages at once, before the delay", touched - at_once);
    CHECK(later <= HOLES * 2, "%zu pages of the free blocks still resident after the delay", later);
    for (int i = 0; i <= HOLES; i++)
        hmm_free(wall[i]);
    return 0;
}

int main(int argc, char **argv)
{
    static struct child c;
    const char *options = "decay_ms=1000,background_thread=false";

    alarm(TEST_TIMEOUT);
    if (argc == 2 && !strcmp(argv[1], "purge"))
        return purge_after_delay();
    child_self(&c, options, "purge", NULL, NULL);
    child_show(&c, options);
    CHECK(child_exited(&c, 0), "the child ended with %s", child_how(&c));
    return 0;
}
