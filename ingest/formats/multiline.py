"""Lines -> records: a stack trace, a traceback or an indented continuation joins the line it
follows (`logs send --multiline auto|none|REGEX`). Pure.

Joining belongs where line order is known, the reader of a file or a pipe; the reader flushes a
pending record when its pipe goes quiet (producer.py). In `auto` mode a line continues the
record before it when it is indented, is a known continuation (`at ...`, `Caused by: ...`,
`... 12 more`, Python's `Traceback (most recent call last):` and chained-exception lines), or
has no leading time while the record it would join starts with one. A REGEX names the lines
that start a record; every other line continues one. CRI partial lines (`P`) are joined to the
lines that complete them (`F`) in every mode.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ingest.formats.builtin import TIME_FORMS

MAX_LINES = 1000
"""A record never grows beyond this many lines (a runaway continuation is cut there)."""

_CONTINUATION = re.compile(
    r"[ \t]|at [\w$.<>/]|Caused by: |Suppressed: |\.\.\. [0-9]+ (?:more|common frames omitted)"
    r"|Traceback \(most recent call last\):|During handling of the above exception"
    r"|The above exception was the direct cause"
)
_HEADER = re.compile(
    "|".join(re.sub(r"\(\?P<[A-Za-z0-9_]+>", "(?:", form.pattern) for form in TIME_FORMS)
    + r"|<[0-9]{1,3}>|[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} |\{"
)
"""A line that starts with a time, a syslog PRI or a JSON object starts a record."""
_CRI = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[^ ]+ (?:stdout|stderr)) ([PF]) (.*)", re.DOTALL)


class Joiner:
    """Feed lines (without their line ends) in order; take records as they complete."""

    def __init__(self, mode: str = "auto") -> None:
        self.mode = mode
        self.start = None if mode in ("auto", "none") else re.compile(mode)
        self._lines: list[str] = []
        self._timed = False
        self._partial: tuple[str, list[str]] | None = None
        """A CRI record still open: its header (time and stream) and payload parts."""

    @property
    def pending(self) -> bool:
        return bool(self._lines) or self._partial is not None

    def feed(self, line: str) -> Iterator[str]:
        cri = _CRI.match(line) if line[:1].isdigit() else None
        if cri is not None or self._partial is not None:
            yield from self._cri(line, cri)
            return
        if self._continues(line):
            self._lines.append(line)
            if len(self._lines) >= MAX_LINES:
                yield from self.flush()
            return
        yield from self.flush()
        self._lines = [line]
        # A JSON line is a record of its own: nothing joins it.
        self._timed = self.mode == "auto" and line[:1] != "{" and _HEADER.match(line) is not None

    def _continues(self, line: str) -> bool:
        if not self._lines or self.mode == "none":
            return False
        if self.start is not None:
            return self.start.search(line) is None
        if self._lines[0][:1] == "{":
            return False
        if _CONTINUATION.match(line):
            return True
        return self._timed and _HEADER.match(line) is None and line.strip() != ""

    def _cri(self, line: str, cri: re.Match[str] | None) -> Iterator[str]:
        if cri is None:  # a line that is no CRI line: the open partial record stays partial
            yield from self._close_partial()
            yield from self.feed(line)
            return
        header, tag, payload = cri.groups()
        if self._partial is not None and self._partial[0].split(" ")[1] != header.split(" ")[1]:
            yield from self._close_partial()  # the other stream's line: close this one first
        yield from self.flush_lines()
        if tag == "P":
            if self._partial is None:
                self._partial = (header, [payload])
            else:
                self._partial[1].append(payload)
            return
        if self._partial is not None:
            first, parts = self._partial
            self._partial = None
            yield f"{first} F {''.join(parts)}{payload}"
            return
        yield line

    def _close_partial(self) -> Iterator[str]:
        if self._partial is not None:
            header, parts = self._partial
            self._partial = None
            yield f"{header} P {''.join(parts)}"

    def flush_lines(self) -> Iterator[str]:
        if self._lines:
            yield "\n".join(self._lines)
            self._lines = []

    def flush(self) -> Iterator[str]:
        """Whatever is pending, as complete records (at the end, or when the pipe is quiet)."""
        yield from self.flush_lines()
        yield from self._close_partial()
