#!/bin/sh
# gcc -O2 compiling a large generated C file (1200 functions; cc1 and as run
# under the preload too, each proven to run on hmm) produces a byte-identical object file under
# LD_PRELOAD=libhmm.so and without it.
. "${srcdir:-.}/tests/smoke_lib.sh"
need_override
CC_SMOKE=${CC_SMOKE:-gcc}
command -v "$CC_SMOKE" > /dev/null 2>&1 || skip "gcc not found"
check_preload_takes_effect

awk -v n="${HMM_GCC_FUNCS:-1200}" -f "$srcdir/tests/gen_big_c.awk" > "$tmp/big.c" ||
    fail "generating the C file failed"
$T "$CC_SMOKE" -O2 -w -c "$tmp/big.c" -o "$tmp/big.o.plain" 2> "$tmp/plain.err" ||
    fail "gcc without hmm failed: $(head -c 2000 "$tmp/plain.err")"
HMM_OPTIONS=$STATS_OPTIONS LD_PRELOAD=$HMM_LIB $T "$CC_SMOKE" -O2 -w -c "$tmp/big.c" \
    -o "$tmp/big.o.hmm" 2> "$tmp/hmm.err" ||
    fail "gcc exited $? under hmm: $(head -c 2000 "$tmp/hmm.err")"
[ -s "$tmp/big.o.hmm" ] || fail "no object file"
# The driver, cc1 and as each ran on hmm and printed its statistics.
n=$(count_stats "$tmp/hmm.err")
[ "$n" -ge 3 ] || fail "only $n of gcc's processes (driver, cc1, as) ran on hmm"
note "$n processes of gcc ran on hmm"
if ! cmp "$tmp/big.o.plain" "$tmp/big.o.hmm"; then
    if command -v objdump > /dev/null 2>&1; then
        objdump -d "$tmp/big.o.plain" > "$tmp/plain.dis"
        objdump -d "$tmp/big.o.hmm" > "$tmp/hmm.dis"
        diff "$tmp/plain.dis" "$tmp/hmm.dis" | head -20
    fi
    fail "the object file compiled under hmm differs from the one without it"
fi
note "same object file with and without hmm ($(wc -c < "$tmp/big.o.hmm") bytes)"
