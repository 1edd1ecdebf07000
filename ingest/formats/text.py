"""Plain-text log lines -> documents in the canonical shape (design §3). Pure but for `re`.

A text format is declared, not programmed: an anchored pattern whose named groups say what
they hold (`TextFormat`). One reading of a match serves every path: `parse_line` here, one line
at a time, and the columnar text lane (textlane.py), a batch at a time in Polars. So patterns
keep to what Python's `re` and Rust's `regex` read alike: no look-around, no back-references, no
`$`/`\\Z`, explicit ASCII classes (`[0-9]`, `[ ]`) rather than `\\d`, `\\s`, `\\w`.

Group names: the time parts of `times.TIME_GROUPS`; `level` (a level word), `lvl` (a letter the
format defines), `pri` (a syslog PRI), `lv1`-`lv4` (the level word of a generic header);
`host`, `service`, `message`, `trace_id`; `sd` (RFC 5424 structured data); every other group is
an attribute, typed by the format's `types`. A group that did not take part, or holds `-` or
nothing, is absent (`message` aside). The first format whose pattern matches and whose time
(if it has one) is valid takes the line; what none takes is a message as it is.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from re import _parser  # type: ignore[attr-defined]
from typing import Any

from ingest.formats.levels import LEVEL_FAST, LEVEL_LETTERS, LEVEL_NUMBERS
from ingest.formats.times import TIME_GROUPS, parts_to_us, rfc3339

FACILITIES = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
]

CORE_GROUPS = frozenset({"host", "service", "message", "trace_id"})
LEVEL_GROUPS = ("level", "lv1", "lv2", "lv3", "lv4")
SPECIAL_GROUPS = frozenset({*TIME_GROUPS, *LEVEL_GROUPS, "lvl", "pri", "sd", "z2"})


@dataclass(frozen=True)
class TextFormat:
    name: str
    """What `attrs._format` says of the lines it takes."""
    pattern: str
    """Anchored at the start of the line (matched, not searched); named groups as above."""
    types: dict[str, type] = field(default_factory=dict)
    """Attribute group -> int or float (others stay strings); a value that does not convert
    stays a string."""
    whole_message: bool = False
    """The row's message is the whole line (access logs), not a `message` group."""
    status_level: bool = False
    """The level follows the HTTP status: 5xx ERROR, 4xx WARN, else INFO."""
    custom: bool = False
    """Declared by the user in logs.toml (custom.py): a `ts` group holds the whole time, a
    `level` group any level word or number."""
    time_format: str | None = None
    """strptime format of a custom format's `ts` group; None: any form loglake knows."""

    @functools.cached_property
    def compiled(self) -> re.Pattern[str]:
        """Compiled on first use: the 40-odd built-in patterns cost ~60 ms to compile, which
        `logs` commands that read no text need not pay. (The user's: `.` matches line ends.)"""
        return re.compile(self.pattern, re.DOTALL if self.custom else 0)

    def read_custom(
        self, groups: dict[str, str | None], line: str, ctx: TextContext
    ) -> dict[str, Any]:
        """A user's format reads its own groups (custom.CustomFormat)."""
        raise NotImplementedError

    @functools.cached_property
    def first_chars(self) -> frozenset[str] | None:
        """Every character a line this format takes can start with; None when it could be
        any (the columnar lane skips formats no line of a batch can start)."""
        try:
            chars, empty = _first(_parser.parse(self.pattern))
        except (re.error, ValueError):
            return None
        return frozenset(chars) if chars is not None and not empty else None

    @functools.cached_property
    def groups(self) -> list[str]:
        return list(self.compiled.groupindex)

    @functools.cached_property
    def has_time(self) -> bool:
        return any(g in TIME_GROUPS for g in self.compiled.groupindex)

    @functools.cached_property
    def attr_groups(self) -> list[str]:
        return [g for g in self.compiled.groupindex if g not in SPECIAL_GROUPS | CORE_GROUPS]


@dataclass(frozen=True)
class TextContext:
    """What reading a line depends on besides the line."""

    now_us: int
    """The ingest time (the stream id's millisecond), for times without a year or a date."""
    tz: Any = None
    """ZoneInfo the naive times are read in; None for UTC."""


def read_match(
    fmt: TextFormat, groups: dict[str, str | None], line: str, ctx: TextContext
) -> dict[str, Any] | None:
    """The canonical document of a line `fmt`'s pattern matched; None when its time is not
    one (the line is then offered to the next format)."""
    if fmt.custom:
        return fmt.read_custom(groups, line, ctx)
    doc: dict[str, Any] = {"_format": fmt.name}
    if fmt.has_time and (groups.get("H") or groups.get("epoch")):
        # (A format whose time may be absent, RFC 5424's `-`, takes the line without one.)
        z2 = groups.get("z2")
        if z2 and not groups.get("z"):
            groups = {**groups, "z": z2}
        us = parts_to_us(groups, ctx.tz, ctx.now_us)
        if us is None:
            return None
        doc["ts"] = rfc3339(us)
    level = _level(fmt, groups)
    if level is not None:
        doc["level"] = level
    for name in ("host", "service", "trace_id"):
        value = groups.get(name)
        if value and value != "-":
            doc[name] = value
    if fmt.whole_message:
        doc["message"] = line
    else:
        message = groups.get("message") or ""
        doc["message"] = message[1:] if message[:1] == "\ufeff" else message
    pri = groups.get("pri")
    if pri:
        doc["facility"] = FACILITIES[int(pri) >> 3]
    for name in fmt.attr_groups:
        value = groups.get(name)
        if not value or value == "-":
            continue
        kind = fmt.types.get(name)
        doc[name] = _typed(value, kind) if kind else value
    sd = groups.get("sd")
    if sd and sd != "-":
        doc.update(structured_data(sd))
    return doc


def _first(seq: Any) -> tuple[set[str] | None, bool]:
    """The characters a parsed pattern (`re._parser`) can start with, and whether it can
    match nothing at all; None where that is not a small known set."""
    from re import _constants as c  # type: ignore[attr-defined]

    found: set[str] = set()
    for op, arg in seq:
        if op is c.AT:
            continue
        if op is c.LITERAL:
            found.add(chr(arg))
            return found, False
        if op is c.IN:
            for item_op, item in arg:
                if item_op is c.LITERAL:
                    found.add(chr(item))
                elif item_op is c.RANGE and item[1] - item[0] < 128:
                    found.update(chr(n) for n in range(item[0], item[1] + 1))
                else:
                    return None, False
            return found, False
        if op is c.SUBPATTERN:
            inner, empty = _first(arg[-1])
        elif op is c.BRANCH:
            inner, empty = set(), False
            for branch in arg[1]:
                chars, branch_empty = _first(branch)
                if chars is None:
                    return None, False
                inner.update(chars)
                empty = empty or branch_empty
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
            inner, empty = _first(arg[2])
            empty = empty or arg[0] == 0
        else:
            return None, False
        if inner is None:
            return None, False
        found.update(inner)
        if not empty:
            return found, False
    return found, True


def _typed(value: str, kind: type) -> Any:
    if kind is int:
        return int(value) if value.isdecimal() and value.isascii() and len(value) < 19 else value
    if kind is float:
        try:
            number = float(value)
        except ValueError:
            return value
        return number if _FLOAT.fullmatch(value) else value
    return value


_FLOAT = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def _level(fmt: TextFormat, groups: dict[str, str | None]) -> str | None:
    for name in LEVEL_GROUPS:
        word = groups.get(name)
        if word:
            return LEVEL_FAST.get(word) or word.upper()
    letter = groups.get("lvl")
    if letter:
        return LEVEL_LETTERS[letter]
    pri = groups.get("pri")
    if pri:
        return LEVEL_NUMBERS[int(pri) & 7]
    if fmt.status_level:
        status = groups.get("status") or ""
        return "ERROR" if status[:1] == "5" else "WARN" if status[:1] == "4" else "INFO"
    return None


_SD_ELEMENT = re.compile(r'\[([^ \]=]+)((?:[^\]"\\]|\\.|"(?:[^"\\]|\\.)*")*)\]')
_SD_PARAM = re.compile(r' ([^ =\]"]+)="((?:[^"\\]|\\.)*)"')
_SD_ESCAPE = re.compile(r"\\([\"\\\]])")


def structured_data(sd: str) -> dict[str, dict[str, str]]:
    """RFC 5424 structured data -> {SD-ID: {name: value}}, escapes undone."""
    out: dict[str, dict[str, str]] = {}
    for element in _SD_ELEMENT.finditer(sd):
        params = out.setdefault(element.group(1), {})
        for param in _SD_PARAM.finditer(element.group(2)):
            params[param.group(1)] = _SD_ESCAPE.sub(r"\1", param.group(2))
    return out


def parse_line(line: str, formats: Sequence[TextFormat], ctx: TextContext) -> dict[str, Any] | None:
    """The canonical document of the first format that takes `line` (cleaned: see noise.py),
    or None when none does."""
    for fmt in formats:
        match = fmt.compiled.match(line)
        if match is None:
            continue
        doc = read_match(fmt, match.groupdict(), line, ctx)
        if doc is not None:
            return doc
    return None


Reader = Callable[[str, TextContext], "dict[str, Any] | None"]
