#!/bin/sh
# Part of make check: see tests/stress_common.sh.
. "$(dirname "$0")/stress_common.sh"

# ThreadSanitizer: producer/consumer pipelines (cross-thread frees).
tsan_run 300 --scenario pipeline --threads 4 --seconds 3 --sizes small
