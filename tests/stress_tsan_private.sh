#!/bin/sh
# Part of make check: see tests/stress_common.sh.
. "$(dirname "$0")/stress_common.sh"

# ThreadSanitizer: hmm built with -fsanitize=thread, --disable-override
# (HMM_NO_OVERRIDE) and CK_USE_CC_BUILTINS=1; zero reports allowed.
tsan_run 300 --scenario private --threads 4 --seconds 3 --sizes small --remote 30
