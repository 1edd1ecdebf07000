"""Your own text formats, declared in logs.toml and tried before the built-in ones. Pure.

    [parsers.checkout]
    pattern = '^(?P<ts>\\S+ \\S+) \\[(?P<level>\\w+)\\] (?P<service>[\\w-]+): (?P<message>.*)'
    time_format = "%Y-%m-%d %H:%M:%S"   # optional: strptime; else ISO 8601, epoch, or any
                                        # time form the built-in formats know

Named groups `ts`, `level`, `host`, `service`, `message`, `trace_id` fill those columns; every
other named group becomes an attribute (a string). `(?<name>...)` is read as `(?P<name>...)`.
Without a `message` group the message is the whole line. `.` matches line ends too, so a
`(?P<message>.*)` takes the continuation lines `logs send` joined to the record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ingest.errors import ConfigError
from ingest.formats.levels import normalize_level
from ingest.formats.text import TextContext, TextFormat
from ingest.formats.times import rfc3339

_PCRE_NAME = re.compile(r"\(\?<(?![=!])")


def compile_parsers(specs: Iterable[tuple[str, str, str | None]]) -> tuple[TextFormat, ...]:
    """(name, pattern, time_format) from logs.toml -> formats; a bad one is a ConfigError."""
    out = []
    for name, pattern, time_format in specs:
        python_pattern = _PCRE_NAME.sub("(?P<", pattern)
        try:
            compiled = re.compile(python_pattern, re.DOTALL)
        except re.error as exc:
            raise ConfigError(f"parsers.{name}: bad pattern: {exc}") from None
        if not compiled.groupindex:
            raise ConfigError(f"parsers.{name}: the pattern names no group (e.g. (?P<message>.*))")
        if time_format is not None:
            try:
                datetime.now().strftime(time_format)
            except ValueError as exc:
                raise ConfigError(f"parsers.{name}: bad time_format: {exc}") from None
        out.append(
            CustomFormat(
                name,
                python_pattern,
                custom=True,
                time_format=time_format,
                whole_message="message" not in compiled.groupindex,
            )
        )
    return tuple(out)


class CustomFormat(TextFormat):
    """A format from logs.toml: its groups name columns and attributes directly."""

    def read_custom(
        self, groups: dict[str, str | None], line: str, ctx: TextContext
    ) -> dict[str, Any]:
        doc: dict[str, Any] = {"_format": self.name}
        for name, value in groups.items():
            if value is None or value == "":
                continue
            if name == "ts":
                us = read_time(value, self.time_format, ctx.tz, ctx.now_us)
                doc["ts"] = rfc3339(us) if us is not None else value  # unread: `_ts_raw`
            elif name == "level":
                doc["level"] = normalize_level(value)
            else:
                doc[name] = value
        if self.whole_message:
            doc["message"] = line
        else:
            doc.setdefault("message", "")
        return doc


def read_time(text: str, time_format: str | None, tz: Any, now_us: int) -> int | None:
    """A custom format's `ts` group -> UTC µs, or None."""
    from ingest.formats import times
    from ingest.formats.builtin import TIME_FORMS  # the forms, not the formats: no cycle

    if time_format:
        try:
            dt = datetime.strptime(text, time_format)
        except ValueError:
            return None
        if dt.tzinfo is None:
            wall = times.wall_us(
                dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond
            )
            return times.local_to_utc(wall, tz) if wall is not None else None
        return times.parse_ts(dt.isoformat())
    us = times.parse_ts(text, tz)
    if us is not None:
        return us
    for form in TIME_FORMS:
        match = form.fullmatch(text)
        if match is not None:
            return times.parts_to_us(match.groupdict(), tz, now_us)
    return None
