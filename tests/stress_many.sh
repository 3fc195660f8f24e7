#!/bin/sh
# Part of make check: see tests/stress_common.sh.
. "$(dirname "$0")/stress_common.sh"

# 1000 threads alive at once (64 KiB stacks), allocating, handing off and
# freeing, all joined.
stress_run 300 --scenario many --threads 1000 --ops 500
