"""A one-line progress display on stderr for long hashing (``snapshot``, ``verify``): files and
bytes hashed, the rate and the time left, redrawn in place with ``\\r``. Shown only when the
stream is a terminal: a pipe or a log file gets nothing."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import TextIO

_UNITS = ("B", "kB", "MB", "GB", "TB")


def human_bytes(n: float) -> str:
    """``1234567`` -> ``1.2 MB`` (decimal units, like ``du --si``)."""
    for unit in _UNITS:
        if n < 1000 or unit == _UNITS[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def _clock(seconds: float) -> str:
    s = int(seconds)
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


class TerminalProgress:
    """Implements :class:`guard.manifest.HashProgress` as one line redrawn on ``stream``.

    Args:
        stream: Where the line goes (stderr).
        label: What is hashing (``snapshot``, ``verify``).
        interval: Least seconds between redraws; the first and the last are always drawn.
        clock: Monotonic seconds (a test's fake clock).
    """

    def __init__(
        self,
        stream: TextIO,
        label: str,
        *,
        interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.label = label
        self.interval = interval
        self.clock = clock
        self.files = self.size = self.done_files = self.done_size = 0
        self._lock = threading.Lock()
        self._started = self._drawn = clock()
        self._shown = False

    def begin(self, files: int, size: int) -> None:
        """``files`` files of ``size`` bytes are to be hashed."""
        with self._lock:
            self.files, self.size = files, size
            self._started = self.clock()
            self._draw()

    def advance(self, size: int) -> None:
        """One more file of ``size`` bytes is hashed (from any thread)."""
        with self._lock:
            self.done_files += 1
            self.done_size += size
            if self.clock() - self._drawn >= self.interval:
                self._draw()

    def finish(self) -> None:
        """Draw the last state and end the line."""
        with self._lock:
            if self._shown:
                self._draw()
                self.stream.write("\n")
                self.stream.flush()

    def line(self) -> str:
        """The text of the progress line now."""
        elapsed = max(self.clock() - self._started, 1e-9)
        rate = self.done_size / elapsed
        text = (
            f"{self.label}: {self.done_files:,}/{self.files:,} files, "
            f"{human_bytes(self.done_size)}/{human_bytes(self.size)} hashed"
        )
        if self.done_size and self.done_files < self.files:
            left = (self.size - self.done_size) / rate if rate else 0.0
            text += f", {human_bytes(rate)}/s, {_clock(left)} left"
        elif self.done_files >= self.files:
            text += f" in {_clock(elapsed)}"
        return text

    def _draw(self) -> None:
        self._drawn = self.clock()
        self._shown = True
        # \r back to the start of the line, \x1b[K clears what a longer earlier line left.
        self.stream.write(f"\r{self.line()}\x1b[K")
        self.stream.flush()


def progress_for(stream: TextIO, label: str) -> TerminalProgress | None:
    """A progress display on ``stream`` when it is a terminal (and ``PEERGUARD_PROGRESS`` is not
    ``0``), else ``None``: scripts and logs get no progress lines."""
    if os.environ.get("PEERGUARD_PROGRESS") == "0":
        return None
    try:
        if not stream.isatty():
            return None
    except (AttributeError, ValueError):  # a closed or stand-in stream
        return None
    return TerminalProgress(stream, label)
