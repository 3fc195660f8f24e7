#!/bin/sh
# Part of make check: see tests/stress_common.sh.
. "$(dirname "$0")/stress_common.sh"

# Thread churn in waves, some threads leaving live blocks that threads of
# later waves free: arenas must be adopted and retired, so that the arena
# count stays within --max-arenas and the footprint after the last wave
# within 2 x (after the first) + 16 MiB; hmm-stress exits 3 otherwise.
stress_run 300 --scenario churn --waves 10 --wave-threads 50 --max-arenas 64
stress_run 300 --scenario churn --waves 20 --wave-threads 100 --sizes small --ops 100 --max-arenas 64 --seed 2
