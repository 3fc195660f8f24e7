#!/bin/sh
# `hmm-run --prof` turns the heap profiler on: python3 run under it writes
# PREFIX.PID.0.heap at exit, a heap_v2 profile with the mappings, which
# google-pprof reads (when installed); `-o prof=false` after --prof wins.
. "${srcdir:-.}/tests/smoke_lib.sh"
need_override
command -v python3 > /dev/null 2>&1 || skip "python3 not found"
run=$HMM_TESTS_BUILDDIR/../hmm-run
[ -x "$run" ] || fail "$run not built"
prog='x = [str(i) * 10 for i in range(200000)]; print(len(x))'

HMM_LIBRARY=$HMM_LIB $T "$run" --prof -o "prof_sample=64K,prof_prefix=$tmp/p" python3 -c "$prog" > "$tmp/out" ||
    fail "python3 under hmm-run --prof exited $?"
set -- "$tmp"/p.*.0.heap
[ -f "$1" ] || fail "no profile $tmp/p.PID.0.heap"
head -n 1 "$1" | grep -q '^heap profile: .* @ heap_v2/65536$' || fail "bad header: $(head -n 1 "$1")"
grep -q '^MAPPED_LIBRARIES:$' "$1" || fail "no MAPPED_LIBRARIES section"
note "$(head -n 1 "$1")"
if command -v google-pprof > /dev/null 2>&1; then
    google-pprof --text --inuse_space "$(command -v python3)" "$1" > "$tmp/report" 2> /dev/null ||
        fail "google-pprof cannot read $1"
    grep -q '^Total:' "$tmp/report" || fail "no Total in google-pprof's report"
    note "$(head -n 3 "$tmp/report" | tr '\n' ' ')"
fi
rm -f "$tmp"/p.*

HMM_LIBRARY=$HMM_LIB $T "$run" --prof -o "prof=false,prof_prefix=$tmp/q" python3 -c "$prog" > "$tmp/out" ||
    fail "python3 under hmm-run --prof -o prof=false exited $?"
set -- "$tmp"/q.*
[ ! -e "$1" ] || fail "prof=false after --prof still wrote $1"
note "PASS"
