#!/bin/sh
# gcc -O2 compiling a large generated C file (1200 functions; cc1 and as run
# under the preload too, each proven to run on hmm) produces a byte-identical object file under
# LD_PRELOAD=libhmm.so and without it.  Then g++ compiles a small C++
# program under the preload, and the program, run preloaded, prints what it
# prints without hmm with its operator new and delete bound to libhmm (cc1plus
# itself carries libstdc++'s, linked in statically, which no preload replaces).
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

# ---- g++ and a C++ program's operator new and delete ----
CXX_SMOKE=${CXX_SMOKE:-g++}
if ! command -v "$CXX_SMOKE" > /dev/null 2>&1; then
    note "g++ not found: the C++ part is skipped"
    exit 0
fi
cat > "$tmp/words.cc" <<'EOC'
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>
int main()
{
    std::map<std::string, std::vector<std::unique_ptr<long[]>>> words;
    for (long i = 0; i < 20000; i++)
        words["w" + std::to_string(i % 97)].emplace_back(new long[1 + i % 50]());
    for (const auto &w : words)
        std::cout << w.first << ' ' << w.second.size() << '\n';
}
EOC
HMM_OPTIONS=$STATS_OPTIONS LD_PRELOAD=$HMM_LIB $T "$CXX_SMOKE" -O2 "$tmp/words.cc" -o "$tmp/words" \
    2> "$tmp/gxx.err" || fail "g++ exited $? under hmm: $(head -c 2000 "$tmp/gxx.err")"
n=$(count_stats "$tmp/gxx.err")
[ "$n" -ge 3 ] || fail "only $n of g++'s processes (driver, cc1plus, as, ld) ran on hmm"
$T "$tmp/words" > "$tmp/words.plain" || fail "the C++ program failed without hmm"
LD_DEBUG=bindings LD_DEBUG_OUTPUT=$tmp/bindings LD_PRELOAD=$HMM_LIB $T "$tmp/words" \
    > "$tmp/words.hmm" || fail "the C++ program exited $? under hmm"
cmp -s "$tmp/words.plain" "$tmp/words.hmm" || fail "the C++ program printed otherwise under hmm"
for op in _Znam _ZdaPv _Znwm _ZdlPvm; do
    cat "$tmp"/bindings.* | grep "to $HMM_LIB" | grep -q "symbol \`$op'" ||
        fail "$op of the C++ program (or libstdc++) is not bound to $HMM_LIB"
done
note "$n processes of g++ ran on hmm; the C++ program's new and delete are hmm's, same output"
