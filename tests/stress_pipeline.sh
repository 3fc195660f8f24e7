#!/bin/sh
# Part of make check: see tests/stress_common.sh.
. "$(dirname "$0")/stress_common.sh"

# Producer/consumer pairs: producers allocate and fill, consumers verify,
# sometimes realloc, and free (every free a cross-thread free).
stress_run 120 --scenario pipeline --threads 4 --seconds 2 --sizes mixed
stress_run 120 --scenario pipeline --threads 8 --seconds 1 --sizes small --handoff mutex --queue 64 --seed 11
