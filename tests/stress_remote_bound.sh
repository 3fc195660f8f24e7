#!/bin/sh
# Part of make check: see tests/stress_common.sh.
. "$(dirname "$0")/stress_common.sh"

# Remote-free growth is bounded: every block the producers allocate is freed
# by the consumer thread, onto the producer's remote-free stack.  With a fast
# consumer and with a slow one, the footprint (hmm_stats footprint_bytes,
# sampled every 20 ms) must stay under the bound: hmm-stress exits 3 if not.
# The bound is far below what the pipelines allocate in all (some 300 MiB of
# small blocks in the first run, some 5 GiB of medium blocks in the second,
# whose queues hold at most 2 x 32 x 256 KiB).
stress_run 120 --scenario pipeline --threads 2 --sizes small --queue 4096 --realloc 0 --seconds 2 --sample-ms 20 --max-footprint-mb 64
stress_run 120 --scenario pipeline --threads 4 --sizes medium --queue 32 --consumer-delay-us 20 --realloc 0 --seconds 2 --sample-ms 20 --max-footprint-mb 64
