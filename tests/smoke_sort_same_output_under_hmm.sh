#!/bin/sh
# GNU sort of ~200 MB of generated lines, with a 100 MB buffer so that it
# spills to temporary files and merges them, in 4 threads, prints the same
# bytes under LD_PRELOAD=libhmm.so as without it; twice: a plain byte sort
# and a numeric sort on a key.
. "${srcdir:-.}/tests/smoke_lib.sh"
need_override
command -v sort > /dev/null 2>&1 || skip "sort not found"
gen=$HMM_TESTS_BUILDDIR/gen_lines
[ -x "$gen" ] || fail "$gen not built"
check_preload_takes_effect

BYTES=${HMM_SORT_BYTES:-200000000}
LC_ALL=C
export LC_ALL
tab=$(printf '\t')

# One input file, written once (not under hmm), read by all the sorts.
"$gen" "$BYTES" 12345 > "$tmp/input" || fail "gen_lines failed"

sort_digest() {
    # $1: plain or hmm; the rest: sort options.  Prints the output's digest.
    mode=$1; shift
    mkdir -p "$tmp/sort.$mode"
    if [ "$mode" = hmm ]; then
        # (No stats_at_exit proof here: sort closes stderr before exiting;
        # check_preload_takes_effect above proves the preload instead.)
        LD_PRELOAD=$HMM_LIB $T sort -S 100M --parallel=4 \
            -T "$tmp/sort.$mode" "$@" "$tmp/input" > "$tmp/out.$mode" 2> "$tmp/err.$mode" ||
            fail "sort $* exited $? under hmm: $(head -c 2000 "$tmp/err.$mode")"
    else
        $T sort -S 100M --parallel=4 -T "$tmp/sort.$mode" "$@" "$tmp/input" > "$tmp/out.$mode" ||
            fail "sort $* exited $? without hmm"
    fi
    cksum < "$tmp/out.$mode"
    rm -f "$tmp/out.$mode"
}

# compare DESCRIPTION SORT-OPTIONS...
compare() {
    what=$1; shift
    a=$(sort_digest plain "$@") || exit 1
    b=$(sort_digest hmm "$@") || exit 1
    [ -n "$a" ] || fail "no digest"
    [ "$a" = "$b" ] || fail "$what: output under hmm ($b) differs from without it ($a)"
    note "$what: same output with and without hmm (cksum $a)"
}

compare "byte sort"
compare "numeric sort on field 2, then field 1" "-t$tab" -k2,2n -k1,1
