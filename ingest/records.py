"""Stream entry -> log row (design §3). Each entry is decoded alone; a bad one raises BadEntry.

Shapes, detected per entry: a field per column; one field holding a JSON object (any name);
one field holding plain text. Decoding is the ingest hot path: keep per-entry work small.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from ingest.errors import BadEntry
from ingest.formats import jsondocs
from ingest.formats.levels import LEVEL_FAST, LEVEL_NUMBERS, normalize_level
from ingest.formats.noise import strip_ansi
from ingest.formats.registry import DEFAULT, Formats, text_doc
from ingest.formats.strictjson import depth, strict_json
from ingest.formats.times import parse_ts

__all__ = ["ALIASES", "Row", "decode", "decode_rows", "normalize_level", "parse_ts"]


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
# Known schemas map through them too (see ingest/formats/jsondocs.py): journald, ECS (dotted),
# Serilog CLEF, structlog, python-json-logger, bunyan, Google Cloud, syslog-ng's macros.
ALIASES: dict[str, list[str]] = {
    "ts": _variants(
        "ts",
        "timestamp",
        "time",
        "@timestamp",
        "datetime",
        "date_time",
        "t",
        "@t",
        "asctime",
        "_SOURCE_REALTIME_TIMESTAMP",
        "__REALTIME_TIMESTAMP",
        "ISODATE",
        "timeMillis",
        "date",
    ),
    "level": _variants(
        "level",
        "severity",
        "lvl",
        "levelname",
        "loglevel",
        "log_level",
        "priority",
        "log.level",
        "@l",
    ),
    "service": _variants(
        "service",
        "service_name",
        "service.name",
        "app",
        "application",
        "program",
        "container",
        "container_name",
        "appname",
        "component",
        "SYSLOG_IDENTIFIER",
        "_COMM",
        "_SYSTEMD_UNIT",
        "name",
    ),
    "host": _variants(
        "host",
        "hostname",
        "host_name",
        "host.name",
        "host.hostname",
        "source_host",
        "node",
        "_HOSTNAME",
    ),
    "message": _variants(
        "message",
        "msg",
        "@m",
        "log",
        "text",
        "body",
        "event",
        "@mt",
        "short_message",
        "textPayload",
    ),
    "trace_id": _variants(
        "trace_id",
        "traceId",
        "trace",
        "traceid",
        "trace.id",
        "@tr",
        "logging.googleapis.com/trace",
        "dd.trace_id",
    ),
}
CONDITIONAL = {name: ("levelname", "v") for name in ("name", "NAME", "Name")}
"""An alias that counts only beside one of these keys: `name` is the service in bunyan's
(`v`) and python-json-logger's (`levelname`) records, and anyone's field elsewhere."""
_FIELD_TO_COLUMN: dict[str, tuple[str, int]] = {
    name: (column, rank) for column, names in ALIASES.items() for rank, name in enumerate(names)
}

_LEVEL_FAST = LEVEL_FAST
_LEVEL_NUMBERS = LEVEL_NUMBERS


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
    formats: Formats = DEFAULT,
) -> Row:
    """Decode one raw entry (`[k1, v1, k2, v2, ...]` as Redis returns it) into its Row. An
    entry holding several records (an OTLP/JSON batch) is for `decode_rows`."""
    rows = decode_rows(stream_id, fields, max_bytes=max_bytes, max_depth=max_depth, formats=formats)
    if len(rows) != 1:
        raise ValueError(f"entry {stream_id} holds {len(rows)} records: use decode_rows")
    return rows[0]


def decode_rows(
    stream_id: str,
    fields: list[bytes] | None,
    *,
    max_bytes: int = 1024 * 1024,
    max_depth: int = 64,
    formats: Formats = DEFAULT,
) -> list[Row]:
    """Decode one raw entry into its rows: one, or one per record of an OTLP/JSON batch (their
    stream ids `<id>#0`, `<id>#1`, ...). A bad entry raises BadEntry."""
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
            if raw.count(b"{") + raw.count(b"[") > max_depth and depth(doc, max_depth) > max_depth:
                raise BadEntry(f"JSON nested deeper than {max_depth} levels")
            return _rows(stream_id, doc, formats)
    try:
        texts = [part.decode("utf-8") for part in fields]
    except UnicodeDecodeError as exc:
        raise BadEntry(f"invalid UTF-8 at byte {exc.start}") from None
    if len(texts) == 2:
        key, text = texts
        if text[:1] == "\ufeff":
            text = text[1:]  # a byte-order mark before JSON does not make it text
        parsed = strict_json(text, max_depth) if text.lstrip()[:1] == "{" else None
        if parsed is not None:
            doc = parsed
        elif key in _FIELD_TO_COLUMN and _FIELD_TO_COLUMN[key][0] != "message":
            doc = {key: text}
        else:
            doc = text_doc(text, stream_id_ms(stream_id) * 1000, formats)
    else:
        doc = dict(zip(texts[::2], texts[1::2], strict=False))
    return _rows(stream_id, doc, formats)


_ALIAS_KEYS = frozenset(_FIELD_TO_COLUMN)
_new_row = tuple.__new__  # skips NamedTuple's Python-level __new__ on the hot path
_NESTED = (dict, list)


def _plan(keys: tuple[str, ...], skip: frozenset[str] = frozenset()) -> tuple[Any, ...]:
    """For a document's keys: which key feeds ts, level, service, host, message, trace_id, and
    whether the document needs a schema's mapping first (jsondocs.special). `skip`: keys not
    to use (their values are objects); such plans are not kept."""
    best: dict[str, tuple[int, str]] = {}
    present = set(keys)
    for key in _ALIAS_KEYS.intersection(keys) - skip:
        needs = CONDITIONAL.get(key)
        if needs is not None and present.isdisjoint(needs):
            continue
        column, rank = _FIELD_TO_COLUMN[key]
        current = best.get(column)
        if current is None or rank < current[0]:
            best[column] = (rank, key)
    parents = tuple(k for k in keys if k in jsondocs.NESTED_PARENTS)
    plan = (*(best[c][1] if c in best else None for c in _COLUMNS), jsondocs.special(keys), parents)
    if not skip:
        if len(_PLANS) > 10_000:
            _PLANS.clear()
        _PLANS[keys] = plan
    return plan


_COLUMNS = ("ts", "level", "service", "host", "message", "trace_id")
# Entries of one producer share their keys: map them to columns once per key set, not per entry.
_PLANS: dict[tuple[str, ...], tuple[Any, ...]] = {}


def missing_columns(doc: dict[str, Any]) -> set[str]:
    """The columns a document gives no value (`logs send` fills those from its flags); none
    for a schema that maps itself (OTLP, Docker...)."""
    plan = _PLANS.get(tuple(doc)) or _plan(tuple(doc))
    if plan[6]:
        return set()
    return {c for c, key in zip(_COLUMNS, plan[:6], strict=True) if key is None or doc[key] == ""}


def _rows(stream_id: str, doc: dict[str, Any], formats: Formats) -> list[Row]:
    keys = tuple(doc)
    plan = _PLANS.get(keys) or _plan(keys)
    if not plan[6]:
        return [_row(stream_id, doc, plan, formats)]
    now = stream_id_ms(stream_id) * 1000
    docs = jsondocs.map_doc(doc, lambda line: _read_text(line, now, formats))
    if len(docs) == 1:
        mapped = docs[0]
        return [_row(stream_id, mapped, _plan(tuple(mapped), _NO_SPECIAL), formats)]
    if not docs:
        raise BadEntry("an OTLP/JSON batch holding no log records")
    return [
        _row(f"{stream_id}#{i}", mapped, _plan(tuple(mapped), _NO_SPECIAL), formats)
        for i, mapped in enumerate(docs)
    ]


_NO_SPECIAL = frozenset({"\0"})
"""A `skip` that keeps a mapped document's plan out of the cache and off the mapping again."""


def _read_text(line: str, now_us: int, formats: Formats) -> dict[str, Any] | None:
    from ingest.formats.registry import read_line

    return read_line(line, now_us, formats)


def _row(stream_id: str, doc: dict[str, Any], plan: tuple[Any, ...], formats: Formats) -> Row:
    ts_key, level_key, service_key, host_key, message_key, trace_key, _, parents = plan
    for parent in parents:
        if type(doc[parent]) is dict:  # ECS nesting: {"log": {"level": "warn"}}
            return _nested_row(stream_id, doc, formats)
    pop = doc.pop
    raw_ts = pop(ts_key) if ts_key else None
    level = pop(level_key) if level_key else None
    service = pop(service_key) if service_key else None
    host = pop(host_key) if host_key else None
    message = pop(message_key) if message_key else None
    trace = pop(trace_key) if trace_key else None
    if (
        type(message) in _NESTED
        or type(service) in _NESTED
        or type(host) in _NESTED
        or type(level) in _NESTED
        or type(trace) in _NESTED
        or type(raw_ts) in _NESTED
    ):
        # An object or array never lands stringified in a column: ECS's nesting is flattened
        # and read again; anything else stays an attribute.
        for key, value in zip(
            plan[:6], (raw_ts, level, service, host, message, trace), strict=True
        ):
            if key is not None:
                doc[key] = value
        return _nested_row(stream_id, doc, formats)

    ms = int(stream_id.partition("-")[0])
    ts = parse_ts(raw_ts, formats.tz) if raw_ts is not None else None
    if ts is None:
        # Deterministic on replay: the same entry always lands in the same hour.
        ts = ms * 1000
        doc["_ts_source"] = "stream_id"
        if raw_ts is not None:
            doc["_ts_raw"] = raw_ts

    if type(level) is str:
        if "\x1b" in level:
            level = strip_ansi(level)
        level = _LEVEL_FAST.get(level) or normalize_level(level)
    else:
        level = normalize_level(level)
    if service:
        service = service if type(service) is str else _to_text(service)
        if "\x1b" in service:
            service = strip_ansi(service)
    if host:
        host = host if type(host) is str else _to_text(host)
        if "\x1b" in host:
            host = strip_ansi(host)
    if message is not None:
        message = message if type(message) is str else _to_text(message)
        if "\x1b" in message:
            message = strip_ansi(message)
    return _new_row(
        Row,
        (
            ts,
            level,
            service or "unknown",
            host or "unknown",
            message if message is not None else "",
            (trace if type(trace) is str else _to_text(trace)) if trace else None,
            orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode() if doc else "{}",
            stream_id,
            ms * 1000,
        ),
    )


def _nested_row(stream_id: str, doc: dict[str, Any], formats: Formats) -> Row:
    doc = jsondocs.flatten_nested(doc)
    for key in _MESSAGE_KEYS.intersection(doc):
        value = doc[key]
        if type(value) is list:
            text = jsondocs.bytes_text(value)  # journald's MESSAGE as bytes
            if text is not None:
                doc[key] = text
    skip = frozenset(k for k in _ALIAS_KEYS.intersection(doc) if type(doc[k]) in _NESTED)
    return _row(stream_id, doc, _plan(tuple(doc), skip | _NO_SPECIAL), formats)


_MESSAGE_KEYS = frozenset(ALIASES["message"])
