"""What is still in Redis: entries the group has not committed yet (`--live`) and the dead-letter
stream (`dead_letters`). Only imported when a query asks for them, so plain queries never need
Redis; rows are decoded by the same code as ingest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ingest.config import Settings, mask_url
from ingest.errors import BadEntry, RedisUnavailable
from ingest.formats.registry import from_settings
from ingest.lake.schema import LOG_COLUMNS, arrow_type
from ingest.records import Row, decode_rows

if TYPE_CHECKING:
    import pyarrow as pa
    import redis

CHUNK = 10_000
# dead_letters: one row per entry of `<stream>:dlq`; `fields` holds the original entry as JSON.
DEAD_LETTER_COLUMNS: list[tuple[str, str, bool]] = [
    ("dlq_id", "VARCHAR", False),
    ("stream_id", "VARCHAR", True),
    ("failed_at", "TIMESTAMP WITH TIME ZONE", True),
    ("reason", "VARCHAR", True),
    ("fields", "VARCHAR", False),
]
_LETTER_KEYS = {b"reason", b"stream_id", b"failed_at"}


def _client(settings: Settings) -> tuple[redis.Redis, str]:
    from ingest.redis_conn import connect, resolve_url

    url = resolve_url(settings)
    return connect(url), url


def _unreachable(url: str, exc: BaseException) -> RedisUnavailable:
    return RedisUnavailable(f"lost Redis at {mask_url(url)}: {exc}")


def _xrange(r: redis.Redis, key: str, start: bytes) -> list[list[Any]]:
    """Every entry of `key` from `start` (inclusive id, or `(id` exclusive), in chunks."""
    out: list[list[Any]] = []
    while True:
        chunk = r.execute_command("XRANGE", key, start, "+", "COUNT", CHUNK)
        out.extend(chunk)
        if len(chunk) < CHUNK:
            return out
        start = b"(" + chunk[-1][0]


def pending_entries(r: redis.Redis, stream: str, group: str) -> list[list[Any]]:
    """Entries the group has not acknowledged: pending in a consumer, or never delivered."""
    import redis as redis_lib

    for command in ("XRANGE", "XPENDING"):
        r.set_response_callback(command, lambda reply, **kw: reply)
    try:
        groups = r.execute_command("XINFO", "GROUPS", stream)
    except redis_lib.ResponseError as exc:
        if "no such key" in str(exc).lower():
            return []  # no stream yet: nothing in flight
        raise
    info = None
    for raw in groups:
        g = dict(zip(raw[::2], raw[1::2], strict=True))
        if g.get(b"name") == group.encode():
            info = g
    if info is None:
        return _xrange(r, stream, b"-")  # no group yet: every entry is undelivered
    entries: list[list[Any]] = []
    if int(info[b"pending"]):
        start = b"-"
        ids: list[bytes] = []
        while True:
            page = r.execute_command("XPENDING", stream, group, start, "+", CHUNK)
            ids.extend(p[0] for p in page)
            if len(page) < CHUNK:
                break
            start = b"(" + page[-1][0]
        pipe = r.pipeline(transaction=False)
        for entry_id in ids:
            pipe.execute_command("XRANGE", stream, entry_id, entry_id)
        for reply in pipe.execute():
            entries.extend(reply)  # a trimmed entry comes back empty: it cannot become a row
    entries.extend(_xrange(r, stream, b"(" + info[b"last-delivered-id"]))
    # An entry delivered between XINFO and XPENDING is in both lists: keep it once.
    return list({entry[0]: entry for entry in entries}.values())


def live_rows(settings: Settings) -> list[Row]:
    """Decoded rows of every entry not yet committed by the group; bad entries are skipped
    (ingest will dead-letter them)."""
    import redis as redis_lib

    r, url = _client(settings)
    try:
        entries = pending_entries(r, settings.stream, settings.group)
    except (redis_lib.ConnectionError, redis_lib.TimeoutError) as exc:
        raise _unreachable(url, exc) from None
    finally:
        r.close()
    rows = []
    for entry_id, fields in entries:
        try:
            rows.extend(
                decode_rows(
                    entry_id.decode(),
                    fields,
                    max_bytes=settings.max_entry_bytes,
                    max_depth=settings.max_json_depth,
                    formats=from_settings(settings),
                )
            )
        except BadEntry:
            continue
    return rows


def rows_table(rows: list[Row]) -> pa.Table:
    """Rows as Arrow with the table's types (partition columns are computed in SQL)."""
    import pyarrow as pa

    names = list(Row._fields)
    types = {n: t for n, t, _ in LOG_COLUMNS}
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return pa.table(
        {
            n: pa.array(list(col), arrow_type(types[n]))
            for n, col in zip(names, columns, strict=True)
        }
    )


def dead_letters(settings: Settings) -> pa.Table:
    """The dead-letter stream as Arrow rows of DEAD_LETTER_COLUMNS."""
    import pyarrow as pa
    import redis as redis_lib

    r, url = _client(settings)
    try:
        r.set_response_callback("XRANGE", lambda reply, **kw: reply)
        entries = _xrange(r, settings.dlq_stream, b"-")
    except (redis_lib.ConnectionError, redis_lib.TimeoutError) as exc:
        raise _unreachable(url, exc) from None
    finally:
        r.close()
    out: dict[str, list[Any]] = {name: [] for name, _, _ in DEAD_LETTER_COLUMNS}
    for entry_id, fields in entries:
        letter: dict[bytes, bytes] = {}
        original: dict[str, str] = {}
        for i in range(0, len(fields) - 1, 2):
            key, value = fields[i], fields[i + 1]
            if key in _LETTER_KEYS:
                letter[key] = value
            else:
                # The consumer renames an original field that collides with ours to `orig:<key>`.
                name = key[5:] if key.startswith(b"orig:") and key[5:] in _LETTER_KEYS else key
                original[_text(name)] = _text(value)
        failed = letter.get(b"failed_at", b"")
        out["dlq_id"].append(entry_id.decode())
        out["stream_id"].append(_text(letter[b"stream_id"]) if b"stream_id" in letter else None)
        out["failed_at"].append(int(failed) * 1000 if failed.isdigit() else None)
        out["reason"].append(_text(letter[b"reason"]) if b"reason" in letter else None)
        out["fields"].append(orjson.dumps(original).decode())
    return pa.table(
        {name: pa.array(out[name], arrow_type(t)) for name, t, _ in DEAD_LETTER_COLUMNS}
    )


def _text(raw: bytes) -> str:
    # Invalid UTF-8 is a common reason to be here: show it, replaced, rather than fail.
    return raw.decode("utf-8", errors="replace")
