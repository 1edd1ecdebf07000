"""The one entry point to formats: a text line -> its canonical document (design §3). Pure.

`Formats` is what a process reads text with: the user's own formats (logs.toml `[parsers]`),
tried first, then logfmt and the built-in ones (builtin.py), and the time zone naive times are
read in. Every path uses it: the per-entry decoder and the columnar text lane at ingest,
`logs send`, `logs parse`, `logs tail`, `logs receive`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ingest.formats import logfmt, noise
from ingest.formats.builtin import BUILTIN
from ingest.formats.jsondocs import read_payload
from ingest.formats.text import TextContext, TextFormat, parse_line
from ingest.formats.times import zone


@dataclass(frozen=True)
class Formats:
    custom: tuple[TextFormat, ...] = ()
    """The user's formats, tried before the built-in ones."""
    timezone: str = "UTC"
    """IANA zone naive times are read in."""
    force: str | None = None
    """Only this format (`logs send --format NAME`): lines it does not take stay messages."""
    mine: tuple[TextFormat, ...] = field(init=False, repr=False, compare=False)
    """The user's formats in use (all, or the forced one)..."""
    builtin: tuple[TextFormat, ...] = field(init=False, repr=False, compare=False)
    """...and the built-in ones."""

    def __post_init__(self) -> None:
        mine, builtin = self.custom, BUILTIN
        if self.force is not None:
            mine = tuple(f for f in mine if f.name == self.force)
            builtin = tuple(f for f in builtin if f.name == self.force)
        object.__setattr__(self, "mine", mine)
        object.__setattr__(self, "builtin", builtin)

    @functools.cached_property
    def tz(self) -> Any:
        return zone(self.timezone)

    @functools.cached_property
    def record_starts(self) -> Any:
        """re.Pattern: a line one of these formats reads starts a record (multiline.py)."""
        from ingest.formats.multiline import record_starts

        return record_starts((*self.custom, *BUILTIN))

    @property
    def logfmt(self) -> bool:
        return self.force in (None, "logfmt")

    @property
    def names(self) -> list[str]:
        """Every format name a line can be read with, the user's first."""
        return list(dict.fromkeys([*(f.name for f in (*self.custom, *BUILTIN)), "logfmt"]))

    def context(self, now_us: int) -> TextContext:
        return TextContext(now_us, self.tz)


DEFAULT = Formats()


@functools.cache
def _from(parsers: tuple[tuple[str, str, str | None], ...], timezone: str) -> Formats:
    from ingest.formats.custom import compile_parsers

    return Formats(compile_parsers(parsers), timezone)


def from_settings(settings: Any) -> Formats:
    """The formats a process reads with, from its settings (`parsers`, `timezone`)."""
    return _from(settings.parsers, settings.timezone)


def format_names(custom: Sequence[TextFormat] = ()) -> list[str]:
    return Formats(tuple(custom)).names


def text_doc(text: str, now_us: int, formats: Formats = DEFAULT) -> dict[str, Any]:
    """The canonical document of a plain-text entry: what the first format that takes it
    reads, else the text (cleaned: no BOM, ANSI codes or trailing line end) as the message."""
    line = noise.clean(text)
    doc = read_line(line, now_us, formats)
    return doc if doc is not None else {"message": line}


def read_line(line: str, now_us: int, formats: Formats = DEFAULT) -> dict[str, Any] | None:
    """The document of the format that takes a cleaned line, or None."""
    if formats.mine:
        doc = parse_line(line, formats.mine, formats.context(now_us))
        if doc is not None:
            return doc
    if formats.logfmt:
        text = logfmt.to_json(line)
        if text is not None:
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError:  # a lone surrogate escape: not ours to store as JSON
                value = None
            if isinstance(value, dict):
                return value
    doc = parse_line(line, formats.builtin, formats.context(now_us))
    if doc is not None and doc["_format"] == "cri":
        return _container_payload(doc, now_us, formats)
    return doc


def _container_payload(doc: dict[str, Any], now_us: int, formats: Formats) -> dict[str, Any]:
    """A CRI line's payload read as JSON or as a known text format; the payload's own time,
    level and fields win over the runtime's."""
    if doc.pop("tag", None) == "P":
        doc["partial"] = True
    inner = read_payload(doc["message"], lambda line: read_line(line, now_us, formats))
    if inner is None:
        return doc
    del doc["message"]
    merged = {**doc, **inner}
    merged["_format"] = f"cri/{inner.get('_format', 'text')}"
    if "ts" not in inner and not any(k in inner for k in _TIME_KEYS):
        merged["ts"] = doc["ts"]
    elif "ts" not in inner:
        merged.pop("ts", None)
    return merged


_TIME_KEYS = ("timestamp", "time", "@timestamp", "@t", "datetime", "asctime", "t")
