"""Lines -> records: a stack trace, a traceback or an indented continuation joins the line it
follows (`logs send --multiline auto|none|REGEX`). Pure.

Joining belongs where line order is known, the reader of a file or a pipe; the reader flushes a
pending record when its pipe goes quiet (producer.py). In `auto` mode a line continues the
record before it when it is indented, is a known continuation (`at ...`, `Caused by: ...`,
`... 12 more`, Python's `Traceback (most recent call last):` and chained-exception lines), or
is a line no format reads (no syslog header, no leading time...) while the record it would
join is one a format reads. A REGEX names the lines
that start a record; every other line continues one. CRI partial lines (`P`) are joined to the
lines that complete them (`F`) in every mode.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ingest.formats import logfmt
from ingest.formats.builtin import BUILTIN, TIME_FORMS
from ingest.formats.text import TextFormat

MAX_LINES = 1000
"""A record never grows beyond this many lines (a runaway continuation is cut there)."""

_CONTINUATION = re.compile(
    r"[ \t]|at [\w$.<>/]|Caused by: |Suppressed: |\.\.\. [0-9]+ (?:more|common frames omitted)"
    r"|Traceback \(most recent call last\):|During handling of the above exception"
    r"|The above exception was the direct cause"
)


def record_starts(formats: Iterable[TextFormat]) -> re.Pattern[str]:
    """A line that any of these formats (or logfmt, or JSON) reads starts a record: one
    pattern, their alternation, named groups dropped."""
    alternatives = [re.sub(r"\(\?P<[A-Za-z0-9_]+>", "(?:", f.pattern) for f in formats]
    return re.compile("|".join([*alternatives, logfmt.LINE, r"\{"]))


_STARTS = record_starts(BUILTIN)
_QUICK = re.compile(
    "|".join(re.sub(r"\(\?P<[A-Za-z0-9_]+>", "(?:", form.pattern) for form in TIME_FORMS)
    + r"|<[0-9]{1,3}>|[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:|[^ ]+ [^ ]+ [^ ]+ \[[0-9]{2}/"
)
"""The commonest record starts (a leading time, a syslog PRI or date, an access log), checked
before the alternation of every format."""


_CRI = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[^ ]+ (?:stdout|stderr)) ([PF]) (.*)", re.DOTALL)


class Joiner:
    """Feed lines (without their line ends) in order; take records as they complete."""

    def __init__(self, mode: str = "auto", starts: re.Pattern[str] | None = None) -> None:
        self.mode = mode
        self.start = None if mode in ("auto", "none") else re.compile(mode)
        self.starts = starts or _STARTS
        """A line a known format reads: it starts a record (auto mode)."""
        self._lines: list[str] = []
        self._timed = False
        self._partial: tuple[str, list[str]] | None = None
        """A CRI record still open: its header (time and stream) and payload parts."""

    @property
    def pending(self) -> bool:
        return bool(self._lines) or self._partial is not None

    def feed(self, line: str, done: list[str]) -> None:
        """Take the next line; records it completes are appended to `done`. (A list, not a
        generator: this runs once a line, and generators cost ~1 µs a line here.)"""
        if self._partial is not None or (" std" in line[19:50] and _CRI.match(line)):
            self._cri(line, done)
            return
        lines = self._lines
        starts: bool | None = None
        if lines:
            if self.mode == "none":
                joins = False
            elif self.start is not None:
                joins = self.start.search(line) is None
            elif lines[0][:1] == "{":
                joins = False
            elif _CONTINUATION.match(line):
                joins = True
            elif self._timed and line.strip():
                starts = self._starts(line)
                joins = not starts
            else:
                joins = False
            if joins:
                lines.append(line)
                if len(lines) >= MAX_LINES:
                    self.flush(done)
                return
            done.append(lines[0] if len(lines) == 1 else "\n".join(lines))
        self._lines = [line]
        # A JSON line is a record of its own: nothing joins it.
        if self.mode != "auto" or line[:1] == "{":
            self._timed = False
        else:
            self._timed = starts if starts is not None else self._starts(line)

    def _starts(self, line: str) -> bool:
        return _QUICK.match(line) is not None or self.starts.match(line) is not None

    def _cri(self, line: str, done: list[str]) -> None:
        cri = _CRI.match(line) if " std" in line[19:50] else None
        if cri is None:  # a line that is no CRI line: the open partial record stays partial
            self._close_partial(done)
            self.feed(line, done)
            return
        header, tag, payload = cri.groups()
        if self._partial is not None and self._partial[0].split(" ")[1] != header.split(" ")[1]:
            self._close_partial(done)  # the other stream's line: close this one first
        self._flush_lines(done)
        if tag == "P":
            if self._partial is None:
                self._partial = (header, [payload])
            else:
                self._partial[1].append(payload)
            return
        if self._partial is not None:
            first, parts = self._partial
            self._partial = None
            done.append(f"{first} F {''.join(parts)}{payload}")
            return
        done.append(line)

    def _close_partial(self, done: list[str]) -> None:
        if self._partial is not None:
            header, parts = self._partial
            self._partial = None
            done.append(f"{header} P {''.join(parts)}")

    def _flush_lines(self, done: list[str]) -> None:
        if self._lines:
            done.append("\n".join(self._lines))
            self._lines = []

    def flush(self, done: list[str]) -> None:
        """Whatever is pending, as complete records (at the end, or when the pipe is quiet)."""
        self._flush_lines(done)
        self._close_partial(done)
