"""Run a command and write its wall time and peak RSS to a file: the benchmark's launcher of every measured process.

    python scripts/benchmark_launch.py RESULT_FILE COMMAND [ARG ...]

Linux records a process's maxrss across exec from the memory it had before (a forked child starts as a copy of its
parent), so a child started by the benchmark itself, which holds pyarrow and pandas, would report at least the
benchmark's own RSS. Started from this small process instead, the figure is the command's: the largest of its own
peak and its waited-for children's (the kernel's maxrss from wait4). RESULT_FILE gets {"whole": s, "peak_rss_mb":
MB, "exit": code}; the command's output goes where this process's goes.
"""

import json
import os
import sys
import time


def main() -> int:
    result_file, command = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    pid = os.posix_spawnp(command[0], command, os.environ)
    _, status, usage = os.wait4(pid, 0)
    whole = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    with open(result_file, "w") as out:
        json.dump({"whole": whole, "peak_rss_mb": usage.ru_maxrss / 1024, "exit": code}, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
