"""Records -> stream entries, the same way for every protocol.

A record becomes either a JSON document XADDed as the one field `data` (flat where the
protocol allows, so the ingest's columnar lane takes it), or, for a bare text line with nothing
known about it, a one-field text entry `line` that the stream decoder's text formats read. Which
JSON fields become which column is the stream decoder's business (`ingest/records.py`,
`ingest/formats/`); a protocol only names what it knows for certain — the time, the line, its
own metadata — with the canonical keys (`ts`, `level`, `service`, `host`, `message`, `trace_id`).
"""

from __future__ import annotations

from typing import Any

import orjson

from ingest.formats.times import MAX_US, MIN_US, rfc3339
from ingest.receive.problems import BadRequest

TEXT_FIELD = b"line"

Entry = bytes | tuple[bytes, ...]
"""A JSON document (XADDed as the one field `data`) or flat field/value pairs."""


def dumps(doc: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(doc)
    except TypeError as exc:
        # Integers past 64 bits, from the stdlib JSON reader's fallback path.
        raise BadRequest(f"value cannot be stored: {exc}") from None


def text_entry(line: str) -> tuple[bytes, ...]:
    return (TEXT_FIELD, line.encode())


def with_line(doc: dict[str, Any], line: str, now_us: int) -> dict[str, Any]:
    """`doc` (what the protocol knows: its time, labels, metadata, with the line as `message`)
    with what the line says of itself on top, when a text format reads it (syslog, access
    logs, logfmt, ...: `ingest/formats/`): the line's own time, level, host and message win;
    the protocol's values they displace are kept as `attr.<key>`."""
    from ingest.formats.noise import clean
    from ingest.formats.registry import read_line

    own = read_line(clean(line), now_us)
    return with_meta(doc, own) if own is not None else doc


def with_meta(doc: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """`doc` with the protocol's metadata set; a value of the document that the metadata
    displaces is kept as `attr.<key>` (as the OpenTelemetry mapping does): nothing is lost."""
    for key, value in meta.items():
        if value is None:
            continue
        if key in doc and doc[key] != value:
            doc[f"attr.{key}"] = doc[key]
        doc[key] = value
    return doc


def ts_from_ns(ns: int) -> str | None:
    us = ns // 1000
    return rfc3339(us) if ns and MIN_US <= us <= MAX_US else None


def ts_from_seconds(value: Any) -> str | None:
    """Epoch seconds (a number or its text, fractions allowed) -> RFC 3339; None otherwise."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    us = int(round(value * 1_000_000)) if isinstance(value, float) else value * 1_000_000
    return rfc3339(us) if MIN_US <= us <= MAX_US else None


def too_deep(data: bytes, limit: int) -> bool:
    """JSON text nested deeper than `limit` (`max_json_depth`): the stream decoder would
    dead-letter it, so the protocol refuses it instead. Brackets are counted first: a document
    with fewer than `limit` of them cannot be that deep, and most have a handful."""
    if data.count(b"{") + data.count(b"[") <= limit:
        return False
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False
