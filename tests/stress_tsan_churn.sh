#!/bin/sh
# Part of make check: see tests/stress_common.sh.
. "$(dirname "$0")/stress_common.sh"

# ThreadSanitizer: thread churn (arena orphaning, adoption, retirement).
tsan_run 300 --scenario churn --waves 10 --wave-threads 50 --sizes small
