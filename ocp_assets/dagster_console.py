"""Where Dagster's console output goes in `make demo` and `make ui`: a log file in DAGSTER_HOME, not the terminal.

Dagster's processes (webserver, daemon, run workers, step processes) write every event to their console, step
events at DEBUG: thousands of lines an hour. The events are in the instance, which the UI shows, so the commands
write the console output to ``<DAGSTER_HOME>/<command>-console.log`` and show the user only their own lines, the
webserver's address once it serves, and errors. No Dagster import: the commands print their first lines before it.
"""

import os
import re
import sys
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TextIO

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Dagster's log lines name their level (`... - dagster.daemon - ERROR - ...`); uvicorn and click start with theirs.
SHOWN = re.compile(r" - (ERROR|CRITICAL) - |^(ERROR|CRITICAL):|^Error:|Serving dagster-webserver on ")
SHOWN_CHARS = 400  # a shown line is cut there: a step failure's one line can carry a whole exception


def console_log(home: Path, command: str) -> Path:
    """``<home>/<command>-console.log``, emptied: it holds this invocation's output only."""
    path = Path(home) / f"{command}-console.log"
    path.write_text("")
    return path


@contextmanager
def console_to(path: Path) -> Generator[None, None, None]:
    """Standard error (file descriptor 2, inherited by forked step processes) appended to `path` meanwhile.

    The step process logs its start at DEBUG through a console logger of its own that ignores the run's logger
    config (Dagster's context-free log manager); the events themselves are in the instance, which the UI reads.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def shown(line: str) -> str | None:
    """The line as the terminal gets it (colours removed, cut), or None when it belongs in the log file only."""
    plain = ANSI.sub("", line).rstrip()
    if not SHOWN.search(plain):
        return None
    return plain if len(plain) <= SHOWN_CHARS else plain[: SHOWN_CHARS - 3] + "..."


def relay(output: IO[bytes], path: Path, terminal: TextIO) -> None:
    """A child's output (its stdout and stderr, one pipe) into `path`, line by line; the lines `shown` keeps also
    to `terminal`. Returns when the child and its own children have closed the pipe."""
    with open(path, "ab") as log:
        for raw in output:
            log.write(raw)
            log.flush()
            line = shown(raw.decode("utf-8", "replace"))
            if line is not None:
                print(line, file=terminal, flush=True)
