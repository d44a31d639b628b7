"""`ocp-assets ARGS` as the installed console script runs it, plus when its imports ended and when its command ended.

    OCP_ASSETS_BENCH_TIMES=FILE [OCP_ASSETS_BENCH_PREIMPORT=module,...] python scripts/benchmark_cli_child.py ARGS

The console script is ``from ocp_assets.cli import main; sys.exit(main())``; this is the same, except that the
command's own modules (which ``main`` imports when the command starts) are imported first, so that the time spent
importing and the command's work can be told apart. Their sum is the same process's work. FILE gets
{"imports": s, "command": s, "exit": code}; the whole process (interpreter start-up included) is timed by the parent.
"""

import time

started = time.perf_counter()

import importlib  # noqa: E402 (after the clock starts)
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from ocp_assets.cli import main  # noqa: E402

for module in filter(None, os.environ.get("OCP_ASSETS_BENCH_PREIMPORT", "").split(",")):
    importlib.import_module(module)
imported = time.perf_counter()
code = main(sys.argv[1:])
ended = time.perf_counter()
with open(os.environ["OCP_ASSETS_BENCH_TIMES"], "w") as out:
    json.dump({"imports": imported - started, "command": ended - imported, "exit": code}, out)
sys.exit(code)
