/* The region counts a page given back to the kernel once, however the free
 * chunks around it merge.  Two adjacent chunks are written whole; the
 * first is given back and purged (malloc_trim's region_trim: the third,
 * in use, keeps the break where it is), then the second, which merges
 * with it: the second purge may count only the second chunk's bytes as
 * returned (before, a merge forgot that the first was purged, and a
 * scrambled burst of 128 MiB counted 820 MiB returned).  A chunk taken
 * fresh from the break counts as never resident, and one given back with
 * a count of purged bytes from its owner keeps it.  The region's own
 * check passes after every step.  (Nothing here may call malloc: it shares
 * the break.) */
#include "internal.h"
#include "testutil.h"

#include <string.h>

static struct region_stats stats(void)
{
    struct region_stats s;
    region_stats(&s);
    CHECK(region_check() == 0, "region_check failed (the line above says why)");
    return s;
}

static void write_past_header(struct chunk *c, size_t page)
{
    memset((char *)c + page, 0x5a, c->size - page);
}

int main(void)
{
    hmm_tunables.trim_threshold = (size_t)1 << 40;   /* nothing trimmed or purged unasked */
    hmm_tunables.decay_ms = 3600000;
    size_t page = region_page_size();
    struct chunk *c[4];
    bool untouched;
    for (int i = 0; i < 4; i++) {
        c[i] = region_take_purged(GRANULE, NULL, &untouched);
        CHECK(c[i] != NULL && untouched, "chunk %d, fresh from the break, counts resident pages", i);
    }
    CHECK((char *)c[0] + GRANULE == (char *)c[1], "two chunks taken in a row are not adjacent");
    write_past_header(c[0], page);
    write_past_header(c[1], page);

    region_give(c[0]);
    struct region_stats before = stats();
    CHECK(region_trim(0) >= GRANULE - page, "the first chunk was not purged");
    struct region_stats first = stats();
    CHECK(first.returned_bytes - before.returned_bytes == GRANULE - page,
          "the first purge counts %zu bytes returned, not %zu", first.returned_bytes - before.returned_bytes,
          GRANULE - page);

    region_give(c[1]);
    CHECK(stats().purged_bytes == first.purged_bytes, "the merge lost the first chunk's purged bytes");
    region_trim(0);
    struct region_stats second = stats();
    CHECK(second.returned_bytes - first.returned_bytes == GRANULE,
          "the purge after the merge counts %zu bytes returned, not the second chunk's %zu",
          second.returned_bytes - first.returned_bytes, GRANULE);

    region_give_used(c[2], GRANULE, GRANULE - page);
    struct region_stats given = stats();
    CHECK(given.purged_bytes == second.purged_bytes + GRANULE - page,
          "a chunk given back with all its pages purged counts %zu more purged bytes",
          given.purged_bytes - second.purged_bytes);
    region_trim(0);
    CHECK(stats().returned_bytes - given.returned_bytes <= page,
          "a purge of a chunk given back purged counts %zu bytes returned", stats().returned_bytes - given.returned_bytes);
    return 0;
}
