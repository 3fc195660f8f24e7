/* A free chunk's count of purged bytes sits in its header page, where a
 * write after free through a stale pointer into the chunk can reach it.
 * The region vets it before trusting it: a count larger than the chunk can
 * hold ends the program with one line when the chunk leaves the index,
 * instead of a region that would never purge the chunk or would count a
 * trim wrong.  The child gives a chunk back, forges its count and takes a
 * chunk again.  (Nothing here may call malloc: it shares the break.) */
#include "region.c"
#include "diag_child.h"
#include "testutil.h"

static int forge(void)
{
    hmm_tunables.trim_threshold = (size_t)1 << 40;   /* nothing trimmed unasked */
    hmm_tunables.decay_ms = 3600000;
    struct chunk *c = region_take(GRANULE, NULL), *above = region_take(GRANULE, NULL);
    CHECK(c != NULL && above != NULL, "region_take failed");
    region_give(c);
    node(c)->purged = purgeable(c) + os_page_size();
    region_take(GRANULE, NULL);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "forge") == 0)
        return forge();
    static struct child child;
    char *args[] = { argv[0], "forge", NULL };
    child_run(&child, "/proc/self/exe", NO_OPTIONS, args);
    CHECK(WIFSIGNALED(child.status) && WTERMSIG(child.status) == SIGABRT,
          "a forged purged count did not abort (status %#x, stderr: %s)", child.status, child.err);
    CHECK(strstr(child.err, "corrupted free chunk") != NULL && strchr(child.err, '\n') == child.err + child.err_len - 1,
          "a forged purged count: expected one line naming the chunk, got: %s", child.err);
    printf("ok: %s", child.err);
    return 0;
}
