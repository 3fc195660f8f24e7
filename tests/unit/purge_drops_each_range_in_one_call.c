/* os.c's purge of a batch of ranges: every range the kernel took reads
 * back as zeroes and leaves the resident set, a range it refused (an
 * injected failure) gets size 0 and keeps its bytes, the pages between the
 * ranges keep theirs, the program's errno survives, and the whole batch is
 * one system call where the kernel takes a vector (process_madvise on the
 * process itself), one per range where it does not or the caller does not
 * allow it. */
#include "internal.h"
#include "testutil.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#define RANGES 16u
#define RANGE_PAGES 8u
#define REFUSED 5u

static size_t page;

static bool all_bytes(const unsigned char *p, size_t len, unsigned char value)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != value)
            return false;
    return true;
}

static size_t resident_pages(unsigned char *p, size_t len)
{
    unsigned char in_core[RANGE_PAGES];
    CHECK(mincore(p, len, in_core) == 0, "mincore");
    size_t count = 0;
    for (size_t i = 0; i < len / page; i++)
        count += in_core[i] & 1u;
    return count;
}

/* Ranges of RANGE_PAGES pages with as many pages between them, written
 * with value; one purge of them all (as a vector if allowed), the
 * REFUSED-th failing.  Returns the system calls it made. */
static unsigned purge_round(unsigned char *map, unsigned char value, bool vector)
{
    size_t len = RANGE_PAGES * page;
    struct os_range ranges[RANGES];
    memset(map, value, 2 * RANGES * len);
    for (unsigned i = 0; i < RANGES; i++)
        ranges[i] = (struct os_range){ map + 2 * i * len, len };
    hmm_test_os_fail(OS_MADVISE, (int)REFUSED, 1);
    unsigned calls = hmm_test_os_purge_calls();
    errno = EDOM;
    size_t purged = os_purge_ranges(ranges, RANGES, vector);
    calls = hmm_test_os_purge_calls() - calls;
    CHECK(errno == EDOM, "the purge changed errno to %d", errno);
    CHECK(purged == (RANGES - 1) * len, "%zu bytes purged, not %zu", purged, (RANGES - 1) * len);
    for (unsigned i = 0; i < RANGES; i++) {
        unsigned char *range = map + 2 * i * len;
        CHECK(ranges[i].size == (i == REFUSED ? 0 : len), "range %u says %zu bytes purged", i, ranges[i].size);
        if (i != REFUSED)
            CHECK(resident_pages(range, len) == 0, "range %u is still resident", i);
        CHECK(all_bytes(range, len, i == REFUSED ? value : 0), "range %u reads wrong bytes", i);
        CHECK(all_bytes(range + len, len, value), "the pages after range %u were touched", i);
    }
    return calls;
}

int main(void)
{
    page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *map = mmap(NULL, 2 * RANGES * RANGE_PAGES * page, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(map != MAP_FAILED, "mmap");

    unsigned calls = purge_round(map, 0xa5, true);
    bool vectored = hmm_test_os_purge_vectored();
    printf("the kernel %s process_madvise: %u system calls for %u ranges\n", vectored ? "takes" : "refuses", calls,
           RANGES - 1);
    CHECK(calls == (vectored ? 1u : RANGES - 1), "%u system calls for %u ranges", calls, RANGES - 1);

    calls = purge_round(map, 0x5a, false);
    CHECK(calls == RANGES - 1, "not allowed a vector, %u system calls for %u ranges", calls, RANGES - 1);
    return 0;
}
