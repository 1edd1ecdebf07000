"""`logs tail`: the newest entries still in the stream, and a live follow that takes nothing from
ingest (XREVRANGE / XREAD, never the consumer group). Entries are decoded by the ingest decoder,
so what tail shows is what the table will hold. Following survives Redis restarts: it reconnects
with capped backoff and resumes after the last id it yielded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import orjson

from ingest.errors import BadEntry, UsageError
from ingest.formats.registry import DEFAULT, Formats
from ingest.records import Row, decode_rows, normalize_level
from ingest.status import rfc3339_ms

if TYPE_CHECKING:
    import redis

LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
"""Known levels, least to most severe."""
READ_COUNT = 1000
BACKOFF_CAP = 5.0

_COLORS = {
    "TRACE": "\x1b[2m",
    "DEBUG": "\x1b[2m",
    "INFO": "\x1b[32m",
    "WARN": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "FATAL": "\x1b[1;31m",
}
_DIM, _RESET = "\x1b[2m", "\x1b[0m"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_levels(spec: str) -> frozenset[str]:
    """`WARN+` -> WARN and worse; `error` -> ERROR; `debug,warn` -> both. Aliases (`warning`,
    `err`, `crit`, syslog/pino numbers) mean what they mean at ingest."""
    chosen: set[str] = set()
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        worse = part.endswith("+")
        word = part[:-1] if worse else part
        level = normalize_level(word)
        if level not in LEVELS:
            raise UsageError(
                f'--level "{part}": expected one of {", ".join(LEVELS)}, '
                "optionally followed by + (that level and worse)"
            )
        chosen.update(LEVELS[LEVELS.index(level) :] if worse else (level,))
    if not chosen:
        raise UsageError("--level: empty")
    return frozenset(chosen)


@dataclass(frozen=True)
class Filter:
    levels: frozenset[str] | None = None
    services: frozenset[str] | None = None
    grep: str | None = None
    """Case-insensitive text to find in the message or the attributes."""

    @property
    def active(self) -> bool:
        return bool(self.levels or self.services or self.grep)

    def matches(self, line: Line) -> bool:
        row = line.row
        if row is None:
            return not self.active  # undecodable entries only show unfiltered
        if self.levels and row.level not in self.levels:
            return False
        if self.services and row.service not in self.services:
            return False
        if self.grep:
            needle = self.grep.casefold()
            return needle in row.message.casefold() or needle in row.attrs.casefold()
        return True


@dataclass(frozen=True)
class Line:
    stream_id: str
    row: Row | None
    error: str | None = None
    """Why the entry could not be decoded (it will be dead-lettered by ingest)."""


def to_lines(entry_id: bytes, fields: list[bytes] | None, formats: Formats = DEFAULT) -> list[Line]:
    """The entry as ingest will store it: a line per row (one, or one per OTLP record)."""
    stream_id = entry_id.decode()
    try:
        return [Line(row.stream_id, row) for row in decode_rows(stream_id, fields, formats=formats)]
    except BadEntry as exc:
        return [Line(stream_id, None, exc.reason)]


def raw_client(client: redis.Redis) -> redis.Redis:
    """Keep XREAD/XREVRANGE replies as Redis sends them (`[k, v, ...]`), the decoder's input."""
    for command in ("XREAD", "XREVRANGE"):
        client.set_response_callback(command, lambda r, **kw: r)
    return client


def newest(
    client: redis.Redis, stream: str, count: int, flt: Filter, formats: Formats = DEFAULT
) -> tuple[list[Line], str]:
    """The newest `count` matching entries still in the stream (oldest first), and the id of the
    stream's newest entry at that moment (`0-0` when empty): follow from there."""
    found: list[Line] = []
    top = "0-0"
    end = "+"
    page = max(count, 100) if flt.active else max(count, 1)
    while True:
        reply = client.execute_command("XREVRANGE", stream, end, "-", "COUNT", page)
        if reply and end == "+":
            top = reply[0][0].decode()
        for entry_id, fields in reply:
            if len(found) >= count:
                break
            for line in reversed(to_lines(entry_id, fields, formats)):
                if flt.matches(line) and len(found) < count:
                    found.append(line)
        if len(found) >= count or len(reply) < page:
            return found[::-1], top
        end = "(" + reply[-1][0].decode()


def follow(
    connect: Callable[[], redis.Redis],
    stream: str,
    after: str,
    flt: Filter,
    note: Callable[[str], None],
    block_ms: int = 1000,
    formats: Formats = DEFAULT,
) -> Iterator[Line]:
    """Entries added after id `after`, forever. Redis outages are noted, retried with capped
    backoff, and resumed after the last entry read, so nothing is shown twice."""
    import redis as redis_lib

    from ingest.errors import RedisUnavailable

    client: redis.Redis | None = None
    down_since: float | None = None
    backoff = 0.0
    while True:
        try:
            if client is None:
                client = raw_client(connect())
            reply = client.execute_command(
                "XREAD", "COUNT", READ_COUNT, "BLOCK", block_ms, "STREAMS", stream, after
            )
        except (
            redis_lib.ConnectionError,
            redis_lib.TimeoutError,
            OSError,
            RedisUnavailable,
        ) as exc:
            if down_since is None:
                down_since = time.monotonic()
                note(
                    f"logs tail: redis unreachable ({type(exc).__name__}); reconnecting, "
                    f"will resume after {after}"
                )
            if client is not None:
                client.close()
                client = None
            backoff = min(BACKOFF_CAP, max(0.1, backoff * 2))
            time.sleep(backoff)
            continue
        if down_since is not None:
            note(
                f"logs tail: reconnected after {time.monotonic() - down_since:.1f} s; "
                f"resuming after {after}"
            )
            down_since, backoff = None, 0.0
        for entry_id, fields in reply[0][1] if reply else ():
            after = entry_id.decode()
            for line in to_lines(entry_id, fields, formats):
                if flt.matches(line):
                    yield line


# -- output -----------------------------------------------------------------------------------


def _ts(row_us: int, precise: bool) -> str:
    ts = _EPOCH + timedelta(microseconds=row_us)
    return ts.replace(tzinfo=None).isoformat() + "Z" if precise else rfc3339_ms(ts)


def format_text(line: Line, color: bool = False) -> str:
    """`2026-11-20T10:00:00.123Z ERROR api  message`, the level coloured on a terminal."""
    row = line.row
    if row is None:
        ms = int(line.stream_id.partition("-")[0])
        stamp = _ts(ms * 1000, precise=False)
        level, service, message = "?", "-", f"<undecodable {line.stream_id}: {line.error}>"
    else:
        stamp, level, service = _ts(row.ts, precise=False), row.level, row.service
        message = row.message
        if row.trace_id:
            message += f"  trace={row.trace_id}"
    if color:
        paint = _COLORS.get(level, "")
        return f"{_DIM}{stamp}{_RESET} {paint}{level:<5}{_RESET} {service}  {message}"
    return f"{stamp} {level:<5} {service}  {message}"


def format_jsonl(line: Line) -> str:
    """One JSON object per entry: the row's columns, `attrs` as an object, RFC 3339 UTC times."""
    row = line.row
    if row is None:
        return orjson.dumps({"stream_id": line.stream_id, "error": line.error}).decode()
    return orjson.dumps(
        {
            "stream_id": row.stream_id,
            "ts": _ts(row.ts, precise=True),
            "level": row.level,
            "service": row.service,
            "host": row.host,
            "message": row.message,
            "trace_id": row.trace_id,
            "attrs": orjson.loads(row.attrs),
        }
    ).decode()
