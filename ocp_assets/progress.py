"""Progress of long command-line work on stderr: done/total, rate and ETA.

On a terminal one line is redrawn in place (at most every REDRAW_SECONDS). Otherwise, so that logs stay readable,
a line is written when another `every_percent` of the work is done and LOG_SECONDS have passed since the last
one, plus one at the end if any was written: work shorter than LOG_SECONDS logs nothing. An error ending the work
leaves no progress line behind, so it stays the command's last (and, in a log, only) line. stdout is left to the
command's results. No dependency: the CLI needs only a counter, a clock and a line.
"""

import sys
import time
from typing import TextIO

REDRAW_SECONDS = 0.2
LOG_SECONDS = 10.0


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


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
        self._drawn_at = float("-inf")
        self._logged_percent = 0
        self._logged_at = self.started
        self._logged_any = False
        self._live = bool(getattr(self.stream, "isatty", lambda: False)())
        self._closed = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(finished=exc_type is None)

    def line(self) -> str:
        elapsed = self.clock() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        text = f"{self.label}: {self.done}/{self.total} {self.unit}"
        if self.total:
            text += f" ({100 * self.done // self.total}%)"
        if self.done:
            text += f", {rate:.2f} {self.unit}/s" if rate < 10 else f", {rate:.0f} {self.unit}/s"
        if self.done >= self.total:
            text += f", {format_duration(elapsed)}"
        elif self.done and rate > 0:
            text += f", ETA {format_duration((self.total - self.done) / rate)}"
        return f"{text}  {self.note}" if self.note else text

    def advance(self, count: int = 1, note: str = "") -> None:
        self.done = min(self.total, self.done + count) if self.total else self.done + count
        self.note = note
        if self._live:
            now = self.clock()
            if now - self._drawn_at >= REDRAW_SECONDS or self.done >= self.total:
                self._drawn_at = now
                # \r and "erase to end of line": the line is redrawn in place.
                self.stream.write(f"\r{self.line()}\x1b[K")
                self.stream.flush()
            return
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
        """Print a result line (stdout by default) above the progress line instead of through it."""
        if self._live and self.done:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        print(text, file=stream if stream is not None else sys.stdout, flush=True)
        if self._live and self.done:
            self.stream.write(f"\r{self.line()}\x1b[K")
            self.stream.flush()

    def close(self, finished: bool = True) -> None:
        """Once: the final line if the work finished (on a terminal the redrawn line ends; in a log only if it had
        progress lines), else the progress line is erased."""
        if self._closed:
            return
        self._closed = True
        if self._live and self.done:
            self.stream.write(f"\r{self.line()}\x1b[K\n" if finished else "\r\x1b[K")
        elif not self._live and finished and self._logged_any:
            self.stream.write(self.line() + "\n")
        self.stream.flush()
