#!/bin/sh
# Part of make check: see tests/stress_common.sh.
. "$(dirname "$0")/stress_common.sh"

# ThreadSanitizer: fork while 4 threads hammer the heap.
tsan_run 300 --scenario fork --threads 4 --forks 20 --sizes small --fork-timeout 60
