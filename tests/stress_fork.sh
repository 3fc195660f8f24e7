#!/bin/sh
# Part of make check: see tests/stress_common.sh.
. "$(dirname "$0")/stress_common.sh"

# fork while 4 threads hammer the heap: each child verifies and frees the
# blocks it inherited (from its parent's threads too), allocates, starts
# threads, sometimes forks again, and exits; a child that runs past
# --fork-timeout has hung: hmm-stress kills it and exits 4.
stress_run 300 --scenario fork --threads 4 --forks 20 --fork-timeout 30
stress_run 300 --scenario fork --threads 4 --forks 20 --fork-timeout 30 --sizes small --remote 30 --seed 9
