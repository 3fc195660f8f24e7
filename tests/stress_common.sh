# Sourced by the tests/stress_*.sh scripts: run hmm-stress (or its
# ThreadSanitizer build) under a timeout, so that a hang is a failure.
# Environment: HMM_STRESS, HMM_STRESS_TSAN override the programs;
# HMM_STRESS_SCALE multiplies the time limits (slow machines).

STRESS=${HMM_STRESS:-./hmm-stress}
STRESS_TSAN=${HMM_STRESS_TSAN:-./hmm-stress-tsan}
SCALE=${HMM_STRESS_SCALE:-1}

limit() {
    echo $(( $1 * SCALE ))
}

# stress_run SECONDS ARGS...: runs hmm-stress ARGS under timeout SECONDS.
stress_run() {
    t=$(limit "$1"); shift
    echo "+ timeout $t $STRESS $*"
    timeout -k 10 "$t" "$STRESS" "$@"
    rc=$?
    case $rc in
    0) ;;
    124|137) echo "FAIL: hmm-stress $* did not finish within ${t}s (hang)"; exit 1 ;;
    2) echo "FAIL: hmm-stress $*: corrupted block or hmm_check failure (exit 2)"; exit 1 ;;
    3) echo "FAIL: hmm-stress $*: a bound was exceeded (exit 3)"; exit 1 ;;
    4) echo "FAIL: hmm-stress $*: a fork child hung (exit 4)"; exit 1 ;;
    *) echo "FAIL: hmm-stress $*: exit status $rc"; exit 1 ;;
    esac
}

# tsan_run SECONDS ARGS...: runs the ThreadSanitizer build; fails on any
# ThreadSanitizer report (halt_on_error and exitcode 66, and a grep of
# stderr for the reports, counted).
tsan_run() {
    if [ ! -x "$STRESS_TSAN" ]; then
        echo "SKIP: $STRESS_TSAN was not built (the compiler lacks -fsanitize=thread)"
        exit 77
    fi
    t=$(limit "$1"); shift
    err=$(mktemp "${TMPDIR:-/tmp}/hmm-tsan.XXXXXX") || exit 99
    echo "+ TSAN_OPTIONS='halt_on_error=1 exitcode=66 report_signal_unsafe=0' timeout $t $STRESS_TSAN $*"
    TSAN_OPTIONS="halt_on_error=1 exitcode=66 report_signal_unsafe=0${HMM_TSAN_OPTIONS:+ $HMM_TSAN_OPTIONS}" \
        timeout -k 10 "$t" "$STRESS_TSAN" "$@" 2>"$err"
    rc=$?
    cat "$err" >&2
    reports=$(grep -c 'WARNING: ThreadSanitizer' "$err")
    rm -f "$err"
    echo "ThreadSanitizer reports: $reports"
    if [ "$reports" -ne 0 ]; then
        echo "FAIL: hmm-stress-tsan $*: $reports ThreadSanitizer report(s), exit status $rc"
        exit 1
    fi
    case $rc in
    0) ;;
    66) echo "FAIL: hmm-stress-tsan $*: ThreadSanitizer exit status 66"; exit 1 ;;
    124|137) echo "FAIL: hmm-stress-tsan $* did not finish within ${t}s (hang)"; exit 1 ;;
    *) echo "FAIL: hmm-stress-tsan $*: exit status $rc"; exit 1 ;;
    esac
}
