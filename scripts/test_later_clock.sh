#!/usr/bin/env bash
# Runs the test suite with the wall clock moved ahead (default: one year), to prove no test depends on the day it
# runs on. Only CLOCK_REALTIME, gettimeofday and time are shifted (scripts/wallclock_shift.c, preloaded into every
# process the tests start); sleeps and monotonic clocks are left alone, which libfaketime does not manage here.
# PostgreSQL runs outside and keeps the real clock. Usage: scripts/test_later_clock.sh [SECONDS] [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
shift_seconds="${1:-31536000}"
[ $# -gt 0 ] && shift
library="${OCP_ASSETS_STATE_DIR:-var}/wallclock_shift.so"
mkdir -p "$(dirname "$library")"
cc -shared -fPIC -O2 -o "$library" scripts/wallclock_shift.c -ldl
echo "== the clock of the tests: $(WALLCLOCK_SHIFT_SECONDS="$shift_seconds" LD_PRELOAD="$PWD/$library" date -u)"
WALLCLOCK_SHIFT_SECONDS="$shift_seconds" LD_PRELOAD="$PWD/$library" .venv/bin/python -m pytest -q "$@"
