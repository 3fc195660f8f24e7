#!/bin/sh
# Part of make check: see tests/stress_common.sh.
. "$(dirname "$0")/stress_common.sh"

# Many threads on private data, with hand-offs of 10% (then 50%) of frees to
# other threads, reallocs, calloc and aligned allocations; every block's
# pattern verified before free and realloc; hmm_check() while threads run.
stress_run 120 --scenario private --threads 8 --seconds 2 --sizes mixed --check-ms 250
stress_run 120 --scenario private --threads 4 --seconds 1 --sizes small --remote 50 --handoff mutex --seed 7
stress_run 120 --scenario private --threads 4 --seconds 1 --sizes medium --realloc 30 --seed 3
stress_run 120 --scenario private --threads 2 --seconds 1 --sizes huge --realloc 30 --seed 5
