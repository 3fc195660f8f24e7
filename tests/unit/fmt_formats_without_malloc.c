/* report.c's formatter: each conversion hmm's messages use, widths, and a
 * buffer too short, which gets what fits and a terminator while the full
 * length is returned (as snprintf does). */
#include "internal.h"
#include "testutil.h"

static void expect(const char *got, size_t len, const char *want)
{
    CHECK(strcmp(got, want) == 0, "formatted \"%s\", expected \"%s\"", got, want);
    CHECK(len == strlen(want), "returned length %zu for \"%s\"", len, want);
}

int main(void)
{
    char buf[128];
    size_t len = fmt_str(buf, sizeof buf, "%s|%c|%d|%d|%u|%x", "free()", 'x', -42, 0, 4000000000u, 0xbeefu);
    expect(buf, len, "free()|x|-42|0|4000000000|beef");
    len = fmt_str(buf, sizeof buf, "%zu %lu %llu %lld", (size_t)1 << 40, 7ul, 18446744073709551615ull,
                  -9223372036854775807ll - 1);
    expect(buf, len, "1099511627776 7 18446744073709551615 -9223372036854775808");
    len = fmt_str(buf, sizeof buf, "%p %p", (void *)0x7f0012345670, (void *)0);
    expect(buf, len, "0x7f0012345670 0x0");
    len = fmt_str(buf, sizeof buf, "[%5u][%3zu][%2s]", 42u, (size_t)123456, "abc");
    expect(buf, len, "[   42][123456][abc]");
    len = fmt_str(buf, sizeof buf, "100%% %q");
    expect(buf, len, "100% ?");

    char small[8];
    len = fmt_str(small, sizeof small, "hmm: %s", "too long to fit");
    CHECK(len == strlen("hmm: too long to fit"), "a truncated line returns %zu, not its full length", len);
    CHECK(strcmp(small, "hmm: to") == 0, "truncated to \"%s\"", small);
    CHECK(fmt_str(NULL, 0, "%u", 12345u) == 5, "no buffer: the length alone");
    return 0;
}
