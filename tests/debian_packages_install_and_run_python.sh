#!/bin/sh
# The Debian packages (debian/) build with `dpkg-buildpackage -us -uc -b`
# from a copy of the sources, lintian finds no error in them, each holds
# what it should, apt accepts them, and, unpacked into a scratch root (or
# installed for real with HMM_TEST_APT_INSTALL=1, as CI does as root), the
# packaged hmm-run runs python3 on the packaged library and hmm-stats
# reads the statistics of a running python3.
#
# A few minutes (a whole package build), so not part of make check:
# `make check-deb` runs it, and .ci/run runs that.  Skips (77) without
# dpkg-buildpackage and debhelper, or without the build dependencies.
# DEB_BUILD_OPTIONS defaults to nocheck: the suite has run on this tree.
. "${srcdir:-.}/tests/smoke_lib.sh"
PY=${PYTHON3:-python3}

command -v dpkg-buildpackage > /dev/null 2>&1 || skip "dpkg-buildpackage not found (apt-get install dpkg-dev)"
command -v dh > /dev/null 2>&1 || skip "debhelper not found (apt-get install debhelper)"
command -v "$PY" > /dev/null 2>&1 || skip "python3 not found"
src=$(cd "$srcdir" && pwd)
(cd "$src" && dpkg-checkbuilddeps) > "$tmp/builddeps" 2>&1 ||
    skip "build dependencies missing: $(cat "$tmp/builddeps")"

# A clean copy: the tracked and new files (git), else the tree without
# build directories.
copy=$tmp/hmm
mkdir "$copy" || fail "mkdir"
if git -C "$src" rev-parse --git-dir > /dev/null 2>&1; then
    (cd "$src" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - --no-recursion) |
        (cd "$copy" && tar -xf -) || fail "copying the sources"
else
    (cd "$src" && tar -cf - --exclude=./_build --exclude=./_build_debug --exclude=./autom4te.cache \
        --exclude='*.o' --exclude='*.lo' --exclude=.libs .) | (cd "$copy" && tar -xf -) ||
        fail "copying the sources"
fi

note "dpkg-buildpackage -us -uc -b (DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-nocheck})"
(cd "$copy" && DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-nocheck} $T dpkg-buildpackage -us -uc -b) \
    > "$tmp/build.log" 2>&1 || fail "dpkg-buildpackage failed: $(tail -n 40 "$tmp/build.log")"
grep -q '^# PASS:' "$tmp/build.log" &&
    note "the package build's tests: $(grep -E '^# (TOTAL|PASS|SKIP|FAIL):' "$tmp/build.log" | tr -s ' \n' ' ')"
for p in libhmm0 libhmm-dev hmm-tools; do
    set -- "$tmp"/${p}_*.deb
    [ -f "$1" ] || fail "no $p package built: $(ls "$tmp")"
    eval "deb_$(echo $p | tr - _)=\$1"
done

# What each package holds.
has() {
    dpkg-deb -c "$1" > "$tmp/contents" || fail "dpkg-deb -c $1"
    grep -q -- "$2" "$tmp/contents" || fail "$(basename "$1") has no $2"
}
has "$deb_libhmm0" 'usr/lib/[^/]*/libhmm\.so\.0 -> '
has "$deb_libhmm0" 'usr/lib/[^/]*/libhmm\.so\.0\.0\.0$'
has "$deb_libhmm_dev" 'usr/include/hmm\.h$'
has "$deb_libhmm_dev" 'usr/lib/[^/]*/libhmm\.a$'
has "$deb_libhmm_dev" 'usr/lib/[^/]*/libhmm\.so -> '
has "$deb_libhmm_dev" 'usr/lib/[^/]*/pkgconfig/hmm\.pc$'
has "$deb_libhmm_dev" 'man3/hmm\.3\.gz$'
for f in bin/hmm-run bin/hmm-stats bin/hmm-stress man1/hmm-run.1.gz man1/hmm-stats.1.gz man1/hmm-stress.1.gz; do
    has "$deb_hmm_tools" "$f\$"
done
dpkg-deb -c "$deb_libhmm0" > "$tmp/contents" || fail "dpkg-deb -c $deb_libhmm0"
if grep -q 'libhmm\.so \|\.la$' "$tmp/contents"; then
    fail "libhmm0 holds the -dev link or a .la file"
fi

if command -v lintian > /dev/null 2>&1; then
    lintian --fail-on error --display-info "$tmp"/hmm_*.changes > "$tmp/lintian.log" 2>&1 ||
        fail "lintian: $(cat "$tmp/lintian.log")"
    note "lintian: no error; $(grep -c '^W:' "$tmp/lintian.log") warnings, $(grep -c '^I:' "$tmp/lintian.log") notes"
    cat "$tmp/lintian.log"
else
    note "lintian not found: not run"
fi

run_root=
if [ "${HMM_TEST_APT_INSTALL:-0}" = 1 ]; then
    DEBIAN_FRONTEND=noninteractive $T apt-get install -y -q "$deb_libhmm0" "$deb_libhmm_dev" \
        "$deb_hmm_tools" > "$tmp/apt.log" 2>&1 </dev/null || fail "apt-get install: $(tail -n 20 "$tmp/apt.log")"
    note "installed with apt-get"
    hmm_library=
else
    if command -v apt-get > /dev/null 2>&1; then
        apt-get install -s -q "$deb_libhmm0" "$deb_libhmm_dev" "$deb_hmm_tools" > "$tmp/apt.log" 2>&1 </dev/null ||
            fail "apt-get install --simulate: $(tail -n 20 "$tmp/apt.log")"
        note "apt-get accepts the packages (--simulate; HMM_TEST_APT_INSTALL=1 installs them)"
    fi
    run_root=$tmp/root
    for deb in "$deb_libhmm0" "$deb_libhmm_dev" "$deb_hmm_tools"; do
        dpkg -x "$deb" "$run_root" || fail "dpkg -x $deb"
    done
    set -- "$run_root"/usr/lib/*/libhmm.so.0
    hmm_library=$1
fi

# Under the packaged hmm-run, python3 allocates from hmm (its statistics at
# exit) and prints what it prints without.
program='print(sum(len(str(i) * 9) for i in range(200000)))'
HMM_LIBRARY=$hmm_library $T "$run_root/usr/bin/hmm-run" -o stats_at_exit=true "$PY" -c "$program" \
    > "$tmp/py.out" 2> "$tmp/py.err" || fail "hmm-run python3 failed: $(cat "$tmp/py.err")"
[ "$(cat "$tmp/py.out")" = "$("$PY" -c "$program")" ] || fail "python3 printed $(cat "$tmp/py.out")"
grep -q '^hmm statistics' "$tmp/py.err" || fail "python3 did not run on hmm: $(cat "$tmp/py.err")"
note "hmm-run python3: $(cat "$tmp/py.out"), $(grep -m1 'in use' "$tmp/py.err" | tr -s ' ')"

# The packaged hmm-stats on a running python3, once it holds its list.
HMM_LIBRARY=$hmm_library "$run_root/usr/bin/hmm-run" -o stats_signal=SIGUSR1 "$PY" -c \
    'import time; x = [str(i) for i in range(100000)]; print("ready", flush=True); time.sleep(30)' \
    > "$tmp/ready" &
py=$!
tries=0
until grep -q ready "$tmp/ready"; do
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || { kill "$py"; fail "python3 under hmm-run did not start"; }
    sleep 0.1
done
"$run_root/usr/bin/hmm-stats" --json "$py" > "$tmp/stats.json" 2> "$tmp/stats.err" ||
    { kill "$py"; fail "hmm-stats: $(cat "$tmp/stats.err")"; }
kill "$py"
wait "$py" 2>/dev/null
"$PY" -c 'import json, sys; s = json.load(open(sys.argv[1])); sys.exit(s["arena_count"] < 1 or s["in_use_bytes"] < 1000000)' \
    "$tmp/stats.json" || fail "hmm-stats printed $(cat "$tmp/stats.json")"
note "hmm-stats --json on python3: $(head -c 120 "$tmp/stats.json")..."
