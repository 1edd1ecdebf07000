"""The consumer group's side of Redis, and nothing else: reads (new entries, reads sent ahead,
our own pending list), claims, acknowledgements, dead letters, trimming. It knows nothing of
batches or of the lake; the loop (consumer.py) decides when each happens.

Replies are taken raw (`[[id, [k, v, ...]], ...]`): redis-py's dict-per-entry parsing cost a
third of the read time.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from typing import TYPE_CHECKING, Any

from ingest.config import Settings
from ingest.procs import pid_alive
from ingest.redis_conn import connect, resolve_url

if TYPE_CHECKING:
    import redis

log = logging.getLogger("logs.ingest")

Entry = tuple[bytes, list[bytes] | None]
"""An entry as Redis returns it: its id and `[k1, v1, k2, v2, ...]` (None once trimmed)."""
DeadLetter = tuple[bytes, list[bytes], str]
"""An entry that cannot become a row: its id, its fields, why."""

ACK_CHUNK = 10_000
LARGE_READ_BYTES = 32 * 1024 * 1024
"""After an oversized entry, reads ask for as many entries as this many bytes of its size would
hold (at least one), then twice as many each read: a run of huge entries is read one or two at
a time instead of `read_count` at once (and with no read sent ahead)."""
READ_AHEAD = 2
"""XREADGROUP calls kept in flight while the stream has more: Redis serves one while we parse
the other, instead of each side waiting for the other."""


class GroupStream:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stream = settings.stream.encode()
        self.group = settings.group.encode()
        self.name = settings.consumer.encode()
        self.url: str | None = None
        self._client: redis.Redis | None = None
        self._group_seen = False
        self._reader: Any = None
        """The connection reads are sent ahead on (XACK and the rest use the pool's others)."""
        self.reads_ahead = 0
        """Reads sent ahead on `_reader` whose replies are outstanding."""
        self._acker: Any = None
        """The connection XACKs go out on..."""
        self._acks_unread = 0
        """...and how many of their replies are still to be read."""
        self.untrimmed = 0
        """Entries acknowledged since the last trim."""
        self.count = settings.read_count
        """COUNT of the next read (`fit_count`)."""

    # -- the connection ----------------------------------------------------------------------

    def client(self) -> redis.Redis:
        if self._client is None:
            self.url = resolve_url(self.settings)
            client = connect(self.url, self.settings.block_ms, check=False)
            for command in ("XREADGROUP", "XAUTOCLAIM", "XPENDING", "XCLAIM"):
                client.set_response_callback(command, lambda r, **kw: r)
            self._client = client
        return self._client

    def drop(self) -> None:
        """Forget the connection (it broke). A read sent ahead dies with it; its entries wait in
        our pending list, which recovery re-reads."""
        self._reader, self.reads_ahead = None, 0
        self._acker, self._acks_unread = None, 0
        if self._client is not None:
            # Closing a broken socket may fail any way it likes.
            with contextlib.suppress(Exception):
                self._client.close()
        self._client = None

    def ensure_group(self) -> str:
        """Create the group at id 0 if it is missing. Returns `exists`; `created`; or `reset`
        when it had vanished since we last saw it (Redis restarted without its data)."""
        import redis

        try:
            self.client().execute_command(
                "XGROUP", "CREATE", self.stream, self.group, "0", "MKSTREAM"
            )
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            self._group_seen = True
            return "exists"
        seen, self._group_seen = self._group_seen, True
        return "reset" if seen else "created"

    # -- reading -----------------------------------------------------------------------------

    def read(self, after: bytes | str, count: int, block: int | None = None) -> list[Entry]:
        """XREADGROUP of our stream: new entries (`>`) or ours pending after an id."""
        args: list[Any] = ["GROUP", self.group, self.name, "COUNT", count]
        if block is not None:
            args += ["BLOCK", block]
        reply = self.client().execute_command("XREADGROUP", *args, "STREAMS", self.stream, after)
        return reply[0][1] if reply else []  # one stream per call

    def fit_count(self, largest: int) -> None:
        """The next read's COUNT, after a read whose largest oversized entry had `largest`
        bytes (0: none)."""
        full = self.settings.read_count
        if largest:
            self.count = max(1, min(full, LARGE_READ_BYTES // largest))
        elif self.count < full:
            self.count = min(full, self.count * 2)

    def send_ahead(self) -> None:
        """A full read means more is waiting: keep READ_AHEAD reads (no BLOCK) queued on the
        reader connection, so Redis prepares the next replies while we parse and decode this
        one. Their replies are taken in order by `read_ahead`."""
        if self._reader is None:
            self._reader = self.client().connection_pool.get_connection()
        while self.reads_ahead < READ_AHEAD:
            self._reader.send_command(
                "XREADGROUP",
                "GROUP",
                self.group,
                self.name,
                "COUNT",
                self.settings.read_count,
                "STREAMS",
                self.stream,
                ">",
            )
            self.reads_ahead += 1

    def read_ahead(self) -> list[Entry]:
        """The oldest reply of the reads sent ahead (its entries are in our pending list)."""
        self.reads_ahead -= 1
        reply = self._reader.read_response()
        return reply[0][1] if reply else []

    def own_pending(self, start: bytes, count: int) -> list[Any]:
        """A page of our own pending list from `start`: [id, consumer, idle, deliveries]."""
        return self.client().execute_command(  # type: ignore[no-any-return]
            "XPENDING", self.stream, self.group, start, "+", count, self.name
        )

    # -- claiming ----------------------------------------------------------------------------

    def dead_local_consumers(self, host: str) -> list[str]:
        """Consumers of the group named `<this host>-<pid>` whose process is gone."""
        out = []
        for info in self.client().execute_command("XINFO", "CONSUMERS", self.stream, self.group):
            c = dict(zip(info[::2], info[1::2], strict=True))
            name = c[b"name"].decode()
            if name != self.settings.consumer and _local_dead(name, host):
                out.append(name)
        return out

    def take_over(self, consumer: str) -> int:
        """Claim every entry pending in `consumer` for us, then remove it from the group."""
        r = self.client()
        claimed = 0
        while True:
            pending = r.execute_command(
                "XPENDING", self.stream, self.group, "-", "+", self.settings.read_count, consumer
            )
            if not pending:
                break
            r.execute_command(
                "XCLAIM", self.stream, self.group, self.name, 0, *[p[0] for p in pending], "JUSTID"
            )
            claimed += len(pending)
        r.execute_command("XGROUP", "DELCONSUMER", self.stream, self.group, consumer)
        return claimed

    def claim_idle(self, idle_ms: int) -> int:
        """Claim every entry idle longer than `idle_ms` in any consumer (XAUTOCLAIM)."""
        r = self.client()
        cursor, claimed = b"0-0", 0
        while True:
            reply = r.execute_command(
                "XAUTOCLAIM",
                self.stream,
                self.group,
                self.name,
                idle_ms,
                cursor,
                "COUNT",
                self.settings.read_count,
                "JUSTID",
            )
            cursor = reply[0]
            claimed += len(reply[1])
            if cursor in (b"0-0", b"0"):
                return claimed

    # -- acknowledging -----------------------------------------------------------------------

    def dead_letter(self, letters: list[DeadLetter], now_ms: str) -> None:
        """XADD each letter to the dead-letter stream, pipelined, packed by hand: redis-py's
        packer copies every argument into one buffer, which for a 64 MiB entry is 64 MiB more."""
        key = self.settings.dlq_stream.encode()
        chunks = _pack_xadds(key, [_dead_letter(*letter, now_ms) for letter in letters])
        import redis

        pool = self.client().connection_pool
        conn = pool.get_connection()
        try:
            conn.send_packed_command(chunks)
            failure = None
            for _ in letters:  # read every reply, so the connection stays in step
                try:
                    conn.read_response()
                except redis.ResponseError as exc:
                    failure = failure or exc
            if failure is not None:
                raise failure
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            conn.disconnect()
            raise
        finally:
            pool.release(conn)

    def acknowledge(self, ids: list[bytes]) -> None:
        """XACK `ids`, sent now, replies read later (`collect_acks`): Redis applies them while we
        read on."""
        self.collect_acks()
        if self._acker is None:
            self._acker = self.client().connection_pool.get_connection()
        packed = [
            _pack_xack(self.stream, self.group, ids[i : i + ACK_CHUNK])
            for i in range(0, len(ids), ACK_CHUNK)
        ]
        self._acker.send_packed_command(packed)
        self._acks_unread += len(packed)
        self.untrimmed += len(ids)

    def collect_acks(self) -> None:
        """Read the replies of the XACKs sent so far (an error reply raises here)."""
        while self._acks_unread:
            self._acks_unread -= 1
            self._acker.read_response()

    def trim(self) -> None:
        """Trim only what every group has acknowledged (XTRIM MINID; never MAXLEN); on Redis 6.2
        the last entry each group read stays as its bookmark."""
        self.collect_acks()
        self.untrimmed = 0
        r = self.client()
        floor: tuple[int, int] | None = None
        for info in r.execute_command("XINFO", "GROUPS", self.stream):
            g = dict(zip(info[::2], info[1::2], strict=True))
            if int(g[b"pending"]):
                summary = r.execute_command("XPENDING", self.stream, g[b"name"])
                keep = _id_tuple(summary[1])
            else:
                ms, seq = _id_tuple(g[b"last-delivered-id"])
                # Redis 6.2 keeps no count of entries added: the last entry read stays, so a
                # stream that starts after it was trimmed by someone else (ingest/gaps.py).
                keep = (ms, seq + 1) if b"entries-read" in g else (ms, seq)
            floor = keep if floor is None or keep < floor else floor
        if floor is not None and floor > (0, 0):
            r.execute_command("XTRIM", self.stream, "MINID", f"{floor[0]}-{floor[1]}")

    def pending_count(self) -> int:
        """Entries the group has delivered and nobody has acknowledged yet."""
        return int(self.client().execute_command("XPENDING", self.stream, self.group)[0])


def _local_dead(name: str, host: str) -> bool:
    """A consumer `<this host>-<pid>` whose process is gone: its entries can be claimed now."""
    prefix, _, pid = name.rpartition("-")
    return prefix == host and pid.isdigit() and not pid_alive(int(pid))


def _pack_xack(stream: bytes, group: bytes, ids: list[bytes]) -> bytes:
    """XACK in the wire protocol, each run of ids of one length joined under one header: about
    4x cheaper than redis-py's per-argument packing, which cost as much as parsing the reads.
    (Ids come in stream order, so their lengths change rarely.)"""
    out = [b"*%d\r\n$4\r\nXACK\r\n" % (len(ids) + 3)]
    out += [b"$%d\r\n%b\r\n" % (len(arg), arg) for arg in (stream, group)]
    for size, same in itertools.groupby(ids, key=len):
        head = b"$%d\r\n" % size
        out.append(head + (b"\r\n" + head).join(same) + b"\r\n")
    return b"".join(out)


def _pack_xadds(key: bytes, letters: list[dict[bytes, bytes]]) -> list[bytes]:
    """XADD key * field value ... for each letter, in the wire protocol. Small pieces are
    joined; a large value goes out as its own chunk, never copied."""
    chunks: list[bytes] = []
    small: list[bytes] = []
    for letter in letters:
        small.append(
            b"*%d\r\n$4\r\nXADD\r\n$%d\r\n%b\r\n$1\r\n*\r\n" % (3 + 2 * len(letter), len(key), key)
        )
        for field, value in letter.items():
            small.append(b"$%d\r\n%b\r\n$%d\r\n" % (len(field), field, len(value)))
            if len(value) > 65536:
                chunks.append(b"".join(small))
                chunks.append(value)
                small = [b"\r\n"]
            else:
                small.append(value + b"\r\n")
    chunks.append(b"".join(small))
    return chunks


def _id_tuple(raw: bytes) -> tuple[int, int]:
    ms, _, seq = raw.decode().partition("-")
    return int(ms), int(seq or 0)


def before(entry_id: bytes) -> bytes:
    """The id just before `entry_id` (XREADGROUP with an id returns what comes after it)."""
    ms, seq = _id_tuple(entry_id)
    if seq:
        return f"{ms}-{seq - 1}".encode()
    return f"{ms - 1}-18446744073709551615".encode()


def _dead_letter(entry_id: bytes, fields: list[bytes], reason: str, now: str) -> dict[bytes, bytes]:
    letter = {
        b"reason": reason.encode("utf-8", "backslashreplace"),
        b"stream_id": entry_id,
        b"failed_at": now.encode(),
    }
    for i in range(0, len(fields) - 1, 2):
        key = fields[i]
        letter[b"orig:" + key if key in letter else key] = fields[i + 1]
    return letter
