"""Stream entry -> log row (design §3). Each entry is decoded alone; a bad one raises BadEntry.

Shapes, detected per entry: a field per column; one field holding a JSON object (any name);
one field holding plain text. Decoding is the ingest hot path: keep per-entry work small.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson

from ingest.errors import BadEntry
from ingest.formats.levels import LEVEL_FAST, LEVEL_NUMBERS, normalize_level

_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_US = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _US
_MAX_US = (datetime(9999, 12, 31, 23, tzinfo=UTC) - _EPOCH) // _US


class Row(NamedTuple):
    ts: int
    """Event time, microseconds since the epoch, UTC."""
    level: str
    service: str
    host: str
    message: str
    trace_id: str | None
    attrs: str
    """JSON object text of every other field."""
    stream_id: str
    ingested_at: int
    """The stream-ID millisecond, in microseconds."""


def _variants(*names: str) -> list[str]:
    out: list[str] = []
    for n in names:
        for v in (n, n.upper(), n.capitalize()):
            if v not in out:
                out.append(v)
    return out


# Column -> accepted field names, best first. Case variants cover syslog-ng's HOST/PROGRAM/MESSAGE.
ALIASES: dict[str, list[str]] = {
    "ts": _variants("ts", "timestamp", "time", "@timestamp", "datetime", "date_time", "t"),
    "level": _variants(
        "level", "severity", "lvl", "levelname", "loglevel", "log_level", "priority"
    ),
    "service": _variants(
        "service",
        "service_name",
        "app",
        "application",
        "program",
        "container",
        "container_name",
        "appname",
        "component",
    ),
    "host": _variants("host", "hostname", "host_name", "source_host", "node"),
    "message": _variants("message", "msg", "log", "text", "body"),
    "trace_id": _variants("trace_id", "traceId", "trace", "traceid", "trace.id"),
}
_FIELD_TO_COLUMN: dict[str, tuple[str, int]] = {
    name: (column, rank) for column, names in ALIASES.items() for rank, name in enumerate(names)
}

_LEVEL_FAST = LEVEL_FAST
_LEVEL_NUMBERS = LEVEL_NUMBERS


def _epoch_to_us(number: float) -> int | None:
    """Epoch seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude."""
    magnitude = abs(number)
    if magnitude < 1e11:
        us = number * 1_000_000
    elif magnitude < 1e14:
        us = number * 1_000
    elif magnitude < 1e17:
        us = number
    else:
        us = number / 1_000
    us = int(round(us)) if isinstance(us, float) else int(us)
    return us if _MIN_US <= us <= _MAX_US else None


def parse_ts(value: Any) -> int | None:
    """Event time in microseconds UTC, or None when the value is not a time we understand."""
    if type(value) is str:
        # Fast path for the commonest form, `2026-11-23T01:02:03[.fff…]Z`: whole seconds are
        # parsed once per distinct second, the fraction by hand.
        n = len(value)
        if n >= 20 and value[-1] == "Z" and value[10] == "T" and (n == 20 or value[19] == "."):
            base = _SECONDS.get(value[:19])
            if base is None:
                base = _second_us(value[:19])
            if base is not None:
                fraction = value[20:-1]
                if not fraction:
                    return base
                if fraction.isdecimal():
                    return base + int(fraction[:6].ljust(6, "0"))
        text = value.strip()
        if not text.isdecimal():
            try:
                dt = _fromisoformat(text)
            except ValueError:
                return _parse_ts_slow(text)
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)  # naive times are UTC: partitions are UTC
            # Exact: whole seconds are exact in a float, microseconds added as an int.
            return _in_range(
                int(dt.replace(microsecond=0).timestamp()) * 1_000_000 + dt.microsecond
            )
        return _epoch_to_us(int(text)) if text else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return _epoch_to_us(value)
    if isinstance(value, float):
        return _epoch_to_us(value) if value == value else None
    return None


_fromisoformat = datetime.fromisoformat
_SECONDS: dict[str, int] = {}


def _second_us(text: str) -> int | None:
    try:
        dt = _fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        return None
    if len(_SECONDS) > 100_000:
        _SECONDS.clear()
    us = int(dt.timestamp()) * 1_000_000
    _SECONDS[text] = us
    return us


def _parse_ts_slow(text: str) -> int | None:
    """Fractional or signed epoch numbers, lowercase `z`/`t`, comma fractions."""
    if not text:
        return None
    try:
        return _epoch_to_us(float(text)) if text[0].isdigit() or text[0] in "-." else None
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.upper().replace(",", ".", 1))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return _in_range(int(dt.replace(microsecond=0).timestamp()) * 1_000_000 + dt.microsecond)


def _in_range(us: int) -> int | None:
    """An offset can carry 0001-01-01 below year 1, which no partition can hold."""
    return us if us >= _MIN_US else None


def _depth(obj: Any, limit: int) -> int:
    """Nesting depth of a JSON value, stopping early once it exceeds `limit`."""
    best = 0
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, d = stack.pop()
        if d > best:
            best = d
            if best > limit:
                return best
        if isinstance(node, dict):
            stack.extend((v, d + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, d + 1) for v in node if isinstance(v, dict | list))
    return best


def _strict_json(text: str, max_depth: int) -> dict[str, Any] | None:
    """A JSON object, None when `text` is not one, BadEntry when it is one we refuse to store."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        # orjson is strict: lone surrogates, NaN, huge ints and very deep nesting land here.
        # The stdlib parser tells which of those it was.
        try:
            value = json.loads(text)
        except RecursionError:
            raise BadEntry(f"JSON nested deeper than {max_depth} levels") from None
        except ValueError:
            return None
        if not isinstance(value, dict):
            return None
        try:
            json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BadEntry("lone surrogate in a JSON string") from None
        except ValueError:
            raise BadEntry("NaN or Infinity in JSON") from None
        try:
            orjson.dumps(value)
        except TypeError as exc:
            raise BadEntry(f"JSON value not storable: {exc}") from None
    if not isinstance(value, dict):
        return None
    if text.count("{") + text.count("[") > max_depth and _depth(value, max_depth) > max_depth:
        raise BadEntry(f"JSON nested deeper than {max_depth} levels")
    return value


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def stream_id_ms(stream_id: str) -> int:
    return int(stream_id.partition("-")[0])


def decode(
    stream_id: str,
    fields: list[bytes] | None,
    *,
    max_bytes: int = 1024 * 1024,
    max_depth: int = 64,
) -> Row:
    """Decode one raw entry (`[k1, v1, k2, v2, ...]` as Redis returns it) into a Row."""
    if not fields:
        # XREADGROUP returns an entry without fields when it was trimmed or deleted before we read
        raise BadEntry("payload lost: entry was trimmed or deleted before it was read")
    size = sum(map(len, fields))
    if size > max_bytes:
        raise BadEntry(f"entry too large: {size} bytes > limit {max_bytes}")
    if len(fields) == 2 and fields[1][:1] == b"{":
        # Fast path, the common shipper shape: one field holding a JSON object. orjson takes the
        # bytes as they are and refuses invalid UTF-8 and lone surrogates by itself.
        raw = fields[1]
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            doc = None
        if type(doc) is dict:
            if raw.count(b"{") + raw.count(b"[") > max_depth and _depth(doc, max_depth) > max_depth:
                raise BadEntry(f"JSON nested deeper than {max_depth} levels")
            return _row(stream_id, doc)
    try:
        texts = [part.decode("utf-8") for part in fields]
    except UnicodeDecodeError as exc:
        raise BadEntry(f"invalid UTF-8 at byte {exc.start}") from None
    if len(texts) == 2:
        key, text = texts
        parsed = _strict_json(text, max_depth) if text.lstrip()[:1] == "{" else None
        if parsed is not None:
            doc = parsed
        elif key in _FIELD_TO_COLUMN:
            doc = {key: text}
        else:
            doc = {"message": text}
    else:
        doc = dict(zip(texts[::2], texts[1::2], strict=False))
    return _row(stream_id, doc)


_ALIAS_KEYS = frozenset(_FIELD_TO_COLUMN)
_new_row = tuple.__new__  # skips NamedTuple's Python-level __new__ on the hot path


def _plan(keys: tuple[str, ...]) -> tuple[str | None, ...]:
    """For a document's keys: which key feeds ts, level, service, host, message, trace_id."""
    best: dict[str, tuple[int, str]] = {}
    for key in _ALIAS_KEYS.intersection(keys):
        column, rank = _FIELD_TO_COLUMN[key]
        current = best.get(column)
        if current is None or rank < current[0]:
            best[column] = (rank, key)
    plan = tuple(best[c][1] if c in best else None for c in _COLUMNS)
    if len(_PLANS) > 10_000:
        _PLANS.clear()
    _PLANS[keys] = plan
    return plan


_COLUMNS = ("ts", "level", "service", "host", "message", "trace_id")
# Entries of one producer share their keys: map them to columns once per key set, not per entry.
_PLANS: dict[tuple[str, ...], tuple[str | None, ...]] = {}


def _row(stream_id: str, doc: dict[str, Any]) -> Row:
    keys = tuple(doc)
    ts_key, level_key, service_key, host_key, message_key, trace_key = _PLANS.get(keys) or _plan(
        keys
    )
    pop = doc.pop
    raw_ts = pop(ts_key) if ts_key else None
    level = pop(level_key) if level_key else None
    service = pop(service_key) if service_key else None
    host = pop(host_key) if host_key else None
    message = pop(message_key) if message_key else None
    trace = pop(trace_key) if trace_key else None

    ms = int(stream_id.partition("-")[0])
    ts = parse_ts(raw_ts) if raw_ts is not None else None
    if ts is None:
        # Deterministic on replay: the same entry always lands in the same hour.
        ts = ms * 1000
        doc["_ts_source"] = "stream_id"
        if raw_ts is not None:
            doc["_ts_raw"] = raw_ts

    level = (
        _LEVEL_FAST.get(level) or normalize_level(level)
        if type(level) is str
        else (normalize_level(level))
    )
    return _new_row(
        Row,
        (
            ts,
            level,
            (service if type(service) is str else _to_text(service)) if service else "unknown",
            (host if type(host) is str else _to_text(host)) if host else "unknown",
            (message if type(message) is str else _to_text(message)) if message is not None else "",
            (trace if type(trace) is str else _to_text(trace)) if trace else None,
            orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode() if doc else "{}",
            stream_id,
            ms * 1000,
        ),
    )
