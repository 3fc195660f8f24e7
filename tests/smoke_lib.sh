# Sourced by the smoke_*.sh tests: where things are, and how to skip or fail.
#
# Set by AM_TESTS_ENVIRONMENT in Makefile.am (with fallbacks for running a
# script by hand from the top build directory):
#   HMM_LIB             the freshly built libhmm.so to preload
#   HMM_TESTS_BUILDDIR  where the helper programs (gen_lines, preload_probe) are
#   HMM_OVERRIDE_BUILD  yes, or no for a --disable-override build
#   HMM_CXX_BUILD       yes, or no for a --disable-cxx build (no operator new)
#   srcdir              the top source directory (set by automake's harness)

srcdir=${srcdir:-.}
HMM_LIB=${HMM_LIB:-$PWD/.libs/libhmm.so}
HMM_TESTS_BUILDDIR=${HMM_TESTS_BUILDDIR:-$PWD/tests}
HMM_OVERRIDE_BUILD=${HMM_OVERRIDE_BUILD:-yes}
HMM_CXX_BUILD=${HMM_CXX_BUILD:-yes}
me=$(basename "$0" .sh)

# Every run of a real program is bounded: a hang under hmm fails the test.
if command -v timeout > /dev/null 2>&1; then
    T="timeout -k 10 ${HMM_SMOKE_TIMEOUT:-600}"
else
    T=
fi

skip() { echo "$me: SKIP: $*" >&2; exit 77; }
fail() { echo "$me: FAIL: $*" >&2; exit 1; }
note() { echo "$me: $*"; }

# A temporary directory removed on every exit.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hmm-$me.XXXXXX") || fail "mktemp"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# Preloading a library that replaces nothing proves nothing.
need_override() {
    [ "$HMM_OVERRIDE_BUILD" = yes ] ||
        skip "built with --disable-override: libhmm.so does not replace malloc"
    [ -f "$HMM_LIB" ] || fail "$HMM_LIB not found (set HMM_LIB)"
}

# Proves that LD_PRELOAD=$HMM_LIB makes hmm the malloc of a process: a block
# from the standard malloc shows in hmm's statistics (tests/preload_probe.c).
check_preload_takes_effect() {
    LD_PRELOAD=$HMM_LIB $T "$HMM_TESTS_BUILDDIR/preload_probe" ||
        fail "LD_PRELOAD=$HMM_LIB did not make hmm the malloc of the process"
    if "$HMM_TESTS_BUILDDIR/preload_probe" 2>/dev/null; then
        fail "preload_probe claims hmm without the preload: the probe is broken"
    fi
}

# Options for a preloaded run that make every process print hmm's statistics
# at exit ("hmm statistics" on stderr): count_stats FILE says how many
# processes of a run really ran on hmm.
STATS_OPTIONS="${HMM_OPTIONS:+$HMM_OPTIONS,}stats_at_exit=true"
count_stats() {
    grep -c '^hmm statistics' "$1"
}
