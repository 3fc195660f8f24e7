#!/bin/sh
# python3 churning dicts, lists, sets and strings in several threads (every
# object through malloc: PYTHONMALLOC=malloc) prints exactly the same under
# LD_PRELOAD=libhmm.so as without it, exits 0, and hmm_check() finds the
# heap sound at its end.
. "${srcdir:-.}/tests/smoke_lib.sh"
need_override
PY=${PYTHON3:-python3}
command -v "$PY" > /dev/null 2>&1 || skip "python3 not found"

PYTHONMALLOC=malloc PYTHONHASHSEED=0
export PYTHONMALLOC PYTHONHASHSEED

# hmm really is the malloc of the python process: a block from libc's
# malloc symbol shows in hmm's in-use bytes.
LD_PRELOAD=$HMM_LIB $T "$PY" - <<'PYEOF' || fail "python3 under LD_PRELOAD does not use hmm's malloc"
import ctypes, sys
lib = ctypes.CDLL(None)
lib.malloc.restype = ctypes.c_void_p
lib.malloc.argtypes = [ctypes.c_size_t]
lib.free.argtypes = [ctypes.c_void_p]
buf = ctypes.create_string_buffer(1 << 16)     # larger than struct hmm_stats
def in_use():
    assert lib.hmm_stats(buf) == 0
    return ctypes.c_size_t.from_buffer(buf).value   # first field: in_use_bytes
before = in_use()
p = lib.malloc(8 << 20)
during = in_use()
lib.free(p)
after = in_use()
slack = 64 << 10   # python allocates small objects between the calls
ok = during + slack >= before + (8 << 20) and after + (8 << 20) <= during + slack \
    and lib.hmm_check() == 0
print("in_use_bytes %d -> %d -> %d, hmm_check %d" % (before, during, after, lib.hmm_check()))
sys.exit(0 if ok else 1)
PYEOF

# The run under hmm also calls hmm_check() at its end (exit 3 if unsound).
$T "$PY" "$srcdir/tests/churn_threads.py" 6 400 > "$tmp/plain.out" 2> "$tmp/plain.err" ||
    fail "the run without hmm failed ($?): $(head -c 2000 "$tmp/plain.err")"
HMM_SMOKE_CHECK=1 LD_PRELOAD=$HMM_LIB $T "$PY" "$srcdir/tests/churn_threads.py" 6 400 \
    > "$tmp/hmm.out" 2> "$tmp/hmm.err"
rc=$?
[ $rc -eq 3 ] && fail "hmm_check() found the heap unsound at the end of the run"
[ $rc -eq 0 ] || fail "exit status $rc under hmm: $(head -c 2000 "$tmp/hmm.err")"
if ! cmp -s "$tmp/plain.out" "$tmp/hmm.out"; then
    diff "$tmp/plain.out" "$tmp/hmm.out" | head -20
    fail "the output under hmm differs from the output without it"
fi
[ -s "$tmp/hmm.out" ] || fail "no output"
note "same output with and without hmm:"
cat "$tmp/hmm.out"
