"""Progress of long command-line work on stderr: done/total, rate and ETA, drawn by tqdm.

On a terminal tqdm's bar is redrawn in place (at most every REDRAW_SECONDS). Otherwise, so that logs stay readable,
a line (tqdm's format, without the bar) is written when another `every_percent` of the work is done and LOG_SECONDS
have passed since the last one, plus one at the end if any was written: work shorter than LOG_SECONDS logs
nothing. An error ending the work leaves no progress line behind, so it stays the command's last (and, in a log,
only) line. stdout is left to the command's results.

tqdm, not rich: measured on 2 cores, importing it after the CLI's own modules costs 6-10 ms (rich.progress 41-52 ms;
tqdm alone 50-90 ms). It is imported when progress is first shown, so `ocp-assets --help` and short work in a log
never load it.
"""

import functools
import sys
import time
from typing import TextIO

REDRAW_SECONDS = 0.2
LOG_SECONDS = 10.0


@functools.cache
def _bar_class():
    from tqdm import tqdm

    class Bar(tqdm):
        monitor_interval = 0  # no monitor thread: the benchmark forks worker processes while a bar is shown

    return Bar


def _log_format(unit: str, finished: bool) -> str:
    """tqdm's fields, as a log line: `summarize: 5/40 days (12%), 0.50 days/s, ETA 01:10` (the end: elapsed)."""
    unit = unit.replace("{", "{{").replace("}", "}}")
    timing = "{elapsed}" if finished else "ETA {remaining}"
    return f"{{desc}}: {{n_fmt}}/{{total_fmt}} {unit} ({{percentage:.0f}}%), {{rate_noinv_fmt}}, {timing}{{postfix}}"


class Progress:
    """Counts `total` units of work called `unit`; `advance` after each one, `close` (or the with block) at the end."""

    def __init__(
        self,
        label: str,
        total: int,
        unit: str,
        *,
        stream: TextIO | None = None,
        every_percent: int = 10,
        clock=time.monotonic,
    ):
        self.label = label
        self.total = max(0, total)
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.every_percent = every_percent
        self.clock = clock
        self.done = 0
        self.note = ""
        self.started = clock()
        self._logged_percent = 0
        self._logged_at = self.started
        self._logged_any = False
        self._closed = False
        live = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar = self._terminal_bar() if live and self.total else None
        self._live = live

    def _terminal_bar(self):
        return _bar_class()(
            total=self.total,
            desc=self.label,
            unit=f" {self.unit}",
            file=self.stream,
            mininterval=REDRAW_SECONDS,
            miniters=1,  # a redraw is due by time alone (tqdm's default skips updates once it has seen a rate)
            dynamic_ncols=True,
            leave=True,
        )

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(finished=exc_type is None)

    def line(self) -> str:
        """The progress as one log line (tqdm pads its numbers to a width: single spaces read better in a log)."""
        text = _bar_class().format_meter(
            self.done,
            self.total or None,
            self.clock() - self.started,
            prefix=self.label,
            unit=f" {self.unit}",
            bar_format=_log_format(self.unit, finished=self.done >= self.total),
            postfix=self.note or None,
        )
        return " ".join(text.split())

    def advance(self, count: int = 1, note: str = "") -> None:
        before = self.done
        self.done = min(self.total, self.done + count) if self.total else self.done + count
        self.note = note
        if self._bar is not None:
            self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(self.done - before)
        elif not self._live:
            self._log()

    def _log(self) -> None:
        percent = 100 * self.done // self.total if self.total else 100
        step = max(1, self.every_percent)
        now = self.clock()
        if (
            percent // step > self._logged_percent // step
            and self.done < self.total
            and now - self._logged_at >= LOG_SECONDS
        ):
            self._logged_percent, self._logged_at, self._logged_any = percent, now, True
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def echo(self, text: str, stream: TextIO | None = None) -> None:
        """Print a result line (stdout by default) above the progress bar instead of through it."""
        if self._bar is not None:
            self._bar.clear()
        print(text, file=stream if stream is not None else sys.stdout, flush=True)
        if self._bar is not None:
            self._bar.refresh()

    def close(self, finished: bool = True) -> None:
        """Once: the final line if the work finished (on a terminal the bar stays; in a log only if it had progress
        lines), else the bar is erased."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.leave = finished
            self._bar.close()
        elif not self._live and finished and self._logged_any:
            self.stream.write(self.line() + "\n")
        self.stream.flush()
