"""The dead-letter stream `<stream>:dlq`: read letters, replay them into the main stream, purge old
ones. A replayed letter is deleted only after its entry was re-added, atomically per letter, so
a replay that fails or is interrupted leaves the letter in place and never adds an entry twice.

Letters hold `reason`, `stream_id` (the original id), `failed_at` (ms epoch) and the original
fields; an original field named like one of those three is stored as `orig:<name>`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ingest.errors import UsageError
from ingest.status import rfc3339_ms

if TYPE_CHECKING:
    import redis

RESERVED = (b"reason", b"stream_id", b"failed_at")
PAGE = 500
PURGE_PAGE = 100
"""Letters per XRANGE of a purge, at most: it reads every letter whole..."""
PURGE_PAGE_BYTES = 16 * 1024 * 1024
"""...and one may hold a whole oversized entry: after a page larger than this the next asks for
fewer letters (down to one at a time), growing back once they are small again."""

# Atomic per letter: re-add the fields, then delete the letter; a letter already gone (replayed
# by someone else) is skipped, and a failing XADD aborts the script before the XDEL.
_REPLAY = """
if #redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1]) == 0 then return false end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('XDEL', KEYS[2], ARGV[1])
return id
"""


@dataclass(frozen=True)
class DeadLetter:
    dlq_id: str
    """Id of the letter in the DLQ stream."""
    reason: str
    stream_id: str
    """Id the entry had in the main stream."""
    failed_at: datetime | None
    fields: list[tuple[bytes, bytes]]
    """The original fields, `orig:` names restored."""

    def as_json(self) -> dict[str, Any]:
        """Named and ordered as the columns of the `dead_letters` view (queries/live.py)."""
        return {
            "dlq_id": self.dlq_id,
            "stream_id": self.stream_id,
            "failed_at": rfc3339_ms(self.failed_at) if self.failed_at else None,
            "reason": self.reason,
            "fields": {text(k): text(v) for k, v in self.fields},
        }


def parse(entry_id: bytes, raw: list[bytes]) -> DeadLetter:
    """A raw DLQ entry (`[k, v, ...]`) -> DeadLetter."""
    meta: dict[bytes, bytes] = {}
    fields: list[tuple[bytes, bytes]] = []
    for key, value in zip(raw[::2], raw[1::2], strict=True):
        if key in RESERVED:
            meta[key] = value
        elif key.startswith(b"orig:") and key[5:] in RESERVED:
            fields.append((key[5:], value))
        else:
            fields.append((key, value))
    failed_at = None
    if meta.get(b"failed_at", b"").isdigit():
        failed_at = datetime.fromtimestamp(int(meta[b"failed_at"]) / 1000, UTC)
    return DeadLetter(
        entry_id.decode(),
        text(meta.get(b"reason", b"")),
        text(meta.get(b"stream_id", b"")),
        failed_at,
        fields,
    )


def _raw(client: redis.Redis) -> redis.Redis:
    for command in ("XRANGE", "XREVRANGE"):
        client.set_response_callback(command, lambda r, **kw: r)
    return client


def newest(client: redis.Redis, dlq: str, count: int) -> list[DeadLetter]:
    """The newest `count` letters, oldest first."""
    reply = _raw(client).execute_command("XREVRANGE", dlq, "+", "-", "COUNT", count)
    return [parse(i, f) for i, f in reversed(reply)]


def scan(client: redis.Redis, dlq: str) -> Iterator[DeadLetter]:
    """Every letter, oldest first, in pages."""
    start = "-"
    while True:
        page = _raw(client).execute_command("XRANGE", dlq, start, "+", "COUNT", PAGE)
        for entry_id, fields in page:
            yield parse(entry_id, fields)
        if len(page) < PAGE:
            return
        start = "(" + page[-1][0].decode()


def get(client: redis.Redis, dlq: str, letter_id: str) -> DeadLetter | None:
    check_id(letter_id)
    reply = _raw(client).execute_command("XRANGE", dlq, letter_id, letter_id)
    return parse(*reply[0]) if reply else None


@dataclass
class Replayed:
    added: list[tuple[str, str]]
    """(letter id, id of the re-added entry in the main stream)."""
    missing: list[str]
    """Letters not in the DLQ (never were, or replayed meanwhile)."""
    empty: list[str]
    """Letters without original fields (payload lost before ingest read it): kept, not replayed."""


def replay(client: redis.Redis, stream: str, dlq: str, letters: list[DeadLetter]) -> Replayed:
    """Re-add each letter's original fields to `stream` and delete the letter, atomically per
    letter (pipelined in chunks)."""
    import redis as redis_lib

    kind = client.type(stream)
    if text(kind) not in ("stream", "none"):
        raise UsageError(f"{stream} is a {text(kind)}, not a stream: nothing replayed")
    script = client.register_script(_REPLAY)
    out = Replayed([], [], [])
    todo: list[DeadLetter] = []
    for letter in letters:
        if letter.fields:
            todo.append(letter)
        else:
            out.empty.append(letter.dlq_id)
    for i in range(0, len(todo), PAGE):
        chunk = todo[i : i + PAGE]
        pipe = client.pipeline(transaction=False)
        for letter in chunk:
            args: list[bytes | str] = [letter.dlq_id]
            args.extend(part for pair in letter.fields for part in pair)
            script(keys=[stream, dlq], args=args, client=pipe)
        for letter, result in zip(chunk, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(result, redis_lib.ResponseError):
                raise UsageError(f"replay of {letter.dlq_id} failed: {result}")
            if result is None:
                out.missing.append(letter.dlq_id)
            else:
                out.added.append((letter.dlq_id, text(result)))
    return out


@dataclass
class Purged:
    deleted: int
    """Letters deleted (a letter replayed meanwhile by someone else is not counted)."""
    examined: int
    """Letters looked at: all of them."""


def purge(client: redis.Redis, dlq: str, before: datetime, page: int = PURGE_PAGE) -> Purged:
    """Delete the letters whose `failed_at` is before `before` (a letter without a readable
    `failed_at` counts from its DLQ id, the time Redis added it).

    A letter's id is Redis's clock when it was added, its `failed_at` the ingest host's when its
    batch was committed: mostly in the same order, never guaranteed to be (clock skew, a
    redelivered entry, letters copied from elsewhere). So every letter is looked at, never cut
    by id: XRANGE a page at a time, one XDEL for the page's matches."""
    cutoff = int(before.timestamp() * 1000)
    raw = _raw(client)
    out = Purged(0, 0)
    start, count = "-", page
    while True:
        letters = raw.execute_command("XRANGE", dlq, start, "+", "COUNT", count)
        out.examined += len(letters)
        doomed = [i for i, fields in letters if _failed_ms(i, fields) < cutoff]
        if doomed:
            out.deleted += int(client.execute_command("XDEL", dlq, *doomed))
        if len(letters) < count:
            return out
        start = "(" + letters[-1][0].decode()
        size = sum(len(part) for _, fields in letters for part in fields)
        count = max(1, min(page, count * PURGE_PAGE_BYTES // max(1, size)))


def _failed_ms(letter_id: bytes, raw: list[bytes]) -> int:
    for key, value in zip(raw[::2], raw[1::2], strict=True):
        if key == b"failed_at" and value.isdigit():
            return int(value)
    return int(letter_id.split(b"-")[0])


def check_id(letter_id: str) -> None:
    ms, _, seq = letter_id.partition("-")
    if not ms.isdigit() or (seq and not seq.isdigit()):
        raise UsageError(
            f'"{letter_id}" is not a stream id (expected like 1795399178064-0; see `logs dlq list`)'
        )


def text(value: bytes | str) -> str:
    """Bytes as text; invalid UTF-8 (a common reason to be here) shown as \\x escapes."""
    return value.decode("utf-8", errors="backslashreplace") if isinstance(value, bytes) else value
