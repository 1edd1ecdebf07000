"""`logs ingest`: drain the stream with a consumer group into the lake, losing nothing (design §5).

Order of work on every (re)connect: acknowledge what is already committed, re-read our own
pending list (id 0), claim entries idle too long in other consumers, then read new ones (`>`).
An entry is acknowledged only after the Delta commit holding its row (or its DLQ copy) landed.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ingest import faults
from ingest.config import Settings, mask_url
from ingest.errors import BadEntry
from ingest.formats.registry import Formats, from_settings
from ingest.lake.writer import LakeWriter, rows_to_arrow, unique_ids
from ingest.procs import pid_alive
from ingest.records import ALIASES, Row, decode_rows
from ingest.redis_conn import connect, resolve_url

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    import redis

_Decoded = tuple[Any, list[Row], list[tuple[bytes, list[bytes], str]]]
"""What the columnar lane made of a chunk: an Arrow table, rows decoded one by one, dead letters."""

log = logging.getLogger("logs.ingest")

_SINGLE_VALUE_KEYS = frozenset(
    name.encode() for column, names in ALIASES.items() if column != "message" for name in names
)
"""A lone field named for a column other than the message (`ts`, `level`...) is that column's
value, not a line of text to parse (records.decode)."""

ACK_CHUNK = 10_000
READ_AHEAD = 2
"""XREADGROUP calls kept in flight while the stream has more: Redis serves one while we parse
the other, instead of each side waiting for the other."""
DECODE_CHUNK = 5_000
"""JSON entries handed to the columnar decoder at once: a full read's worth goes at once (its
fixed cost is ~5 ms a call; chunks of 30k instead of 10k were no faster and took 70 MB more)."""
TEXT_CHUNK = 20_000
"""Text entries handed to the columnar text lane at once: its fixed cost per call is larger
(~25 ms: a regex pass per format tried, then a few steps per format found), so it takes bigger
chunks (CPU per line, generated mix: 9.9 µs at 5k, 5.2 µs at 20k, 4.5 µs at 40k)."""
DECODE_THREADS = 2
"""Two: while one chunk is in Python glue (holding the GIL), the other is in native code
(bench: +5-10 % over one)."""
TRIM_EVERY = 5.0
GC_EVERY = 30.0
"""Seconds between passes of the cycle collector, which is otherwise off while ingesting."""
BACKOFF_CAP = 10.0


@dataclass
class Stats:
    """Counters of one consumer process (exported as metrics by `logs up`)."""

    read: int = 0
    ingested: int = 0
    dead_lettered: int = 0
    commits: int = 0
    commit_seconds: float = 0.0
    last_batch_rows: int = 0
    reconnects: int = 0
    claimed: int = 0
    stream_resets: int = 0


class StopSignal:
    """First SIGINT/SIGTERM: finish and commit the batch in hand. Second: exit now."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            # Unacknowledged entries stay pending and are redelivered: nothing is lost.
            os._exit(128 + signum)
        self.requested = True
        log.info("stopping: finishing the batch in hand (signal again to exit now)")


@dataclass
class _Batch:
    rows: list[Row] = field(default_factory=list)
    """Entries decoded one by one (records.decode)."""
    json: list[tuple[bytes, list[bytes]]] = field(default_factory=list)
    """Entries of one JSON field, and..."""
    fielded: list[tuple[bytes, list[bytes]]] = field(default_factory=list)
    """...entries of a field per column, and..."""
    text: list[tuple[bytes, list[bytes]]] = field(default_factory=list)
    """...entries of one plain-text field, to be decoded together on a decode thread
    (columnar.py)..."""
    decoding: list[Future[_Decoded]] = field(default_factory=list)
    """...where earlier chunks of them are being decoded already..."""
    lane_count: int = 0
    """...; entries sent down those lanes so far."""
    parts: list[Any] = field(default_factory=list)
    """Arrow tables the columnar decoder made."""
    ids: list[bytes] = field(default_factory=list)
    """Ids to acknowledge once the rows are committed (rows and dead letters)."""
    dead: list[tuple[bytes, list[bytes], str]] = field(default_factory=list)
    nbytes: int = 0
    started: float = 0.0
    table: Any = None
    """`rows` as an Arrow table, when prepared ahead of the commit."""

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def entries(self) -> int:
        """Entries read into the batch, dead letters aside."""
        return len(self.rows) + self.lane_count

    def absorb(self, later: _Batch) -> None:
        """Append a later batch (after a failed commit, both are committed together)."""
        self.rows.extend(later.rows)
        self.json.extend(later.json)
        self.fielded.extend(later.fielded)
        self.text.extend(later.text)
        self.decoding.extend(later.decoding)
        self.lane_count += later.lane_count
        self.parts.extend(later.parts)
        self.ids.extend(later.ids)
        self.dead.extend(later.dead)
        self.nbytes += later.nbytes
        self.table = None


def _parse_entries(reply: Any) -> list[tuple[bytes, list[bytes] | None]]:
    """Raw XREADGROUP reply -> [(id, [k, v, ...])]; skips redis-py's dict-per-entry parsing."""
    if not reply:
        return []
    return reply[0][1]  # one stream per call


def _local_dead(name: str, host: str) -> bool:
    """A consumer `<this host>-<pid>` whose process is gone: its entries can be claimed now."""
    prefix, _, pid = name.rpartition("-")
    return prefix == host and pid.isdigit() and not pid_alive(int(pid))


class Consumer:
    def __init__(
        self,
        settings: Settings,
        *,
        drain: bool = False,
        stop: StopSignal | None = None,
        on_commit: Callable[[Stats], None] | None = None,
    ) -> None:
        self.s = settings
        self.drain = drain
        self.stop = stop or StopSignal()
        self.on_commit = on_commit
        self.stats = Stats()
        self.stream = settings.stream.encode()
        self.group = settings.group.encode()
        self.name = settings.consumer.encode()
        self.writer = LakeWriter(settings.data_dir)
        self.formats: Formats = from_settings(settings)
        self._redis: redis.Redis | None = None
        self._url: str | None = None
        self._batch = _Batch()
        self._ack_backlog: list[bytes] = []
        self._dlq_backlog: list[tuple[bytes, list[bytes], str]] = []
        self._last_trim = 0.0
        self._last_gc = 0.0
        self._last_claim = 0.0
        self._group_seen = False
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._reader: Any = None
        """The connection reads are sent ahead on (XACK and the rest use the pool's others)."""
        self._ahead = 0
        """Reads sent ahead on `_reader` whose replies are outstanding."""
        self._acker: Any = None
        """The connection XACKs go out on..."""
        self._acks_unread = 0
        """...and how many of their replies are still to be read."""
        self._inflight: tuple[Future[None], _Batch] | None = None

    # -- connection -------------------------------------------------------------------------

    def _client(self) -> redis.Redis:
        if self._redis is None:
            self._url = resolve_url(self.s)
            client = connect(self._url, self.s.block_ms, check=False)
            client.set_response_callback("XREADGROUP", lambda r, **kw: r)
            client.set_response_callback("XAUTOCLAIM", lambda r, **kw: r)
            client.set_response_callback("XPENDING", lambda r, **kw: r)
            client.set_response_callback("XCLAIM", lambda r, **kw: r)
            self._redis = client
        return self._redis

    def _drop_client(self) -> None:
        # An outstanding read ahead dies with its connection; its entries wait in our pending
        # list, which recovery re-reads.
        self._reader, self._ahead = None, 0
        self._acker, self._acks_unread = None, 0
        if self._redis is not None:
            # Closing a broken socket may fail any way it likes.
            with contextlib.suppress(Exception):
                self._redis.close()
        self._redis = None

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> Stats:
        import redis

        gc_was_on = _pause_gc()
        self._last_gc = time.monotonic()
        backoff = 0.0
        recover = True
        down_since: float | None = None
        commit_failing = False
        log.info("consumer %s: reading %s (group %s)", self.s.consumer, self.s.stream, self.s.group)
        try:
            while not self.stop.requested:
                try:
                    r = self._client()
                    if recover:
                        self._ack_committed(r)
                        self._ensure_group(r)
                        self._recover_own(r)
                        self._claim(r)
                        recover = False
                        if "decode" not in self._pools:
                            # Import and warm the columnar decoder (~0.3 s) while we read the
                            # first entries, not when the first chunk is due; after recovery,
                            # which it would slow down (recovered entries are committed at once).
                            self._executor("decode").submit(_warm_decoder)
                        if down_since is not None:
                            log.warning(
                                "redis reachable again at %s after %.1f s",
                                mask_url(self._url or ""),
                                time.monotonic() - down_since,
                            )
                            down_since = None
                        backoff = 0.0
                    if self._due_flush():
                        self._flush(r)  # a batch whose commit failed is retried before reading on
                    if commit_failing:
                        log.warning("consumer %s: commits succeed again", self.s.consumer)
                        commit_failing = False
                    if self._inflight is not None:
                        self._settle(wait=False)
                        self._ack_committed(r)
                    got = self._read_new(r)
                    if self._due_flush() or (self.drain and got == 0 and self._batch):
                        self._flush(r)
                    if time.monotonic() - self._last_claim > self.s.claim_idle / 2:
                        self._claim(r)
                    if time.monotonic() - self._last_gc > GC_EVERY:
                        self._last_gc = time.monotonic()
                        gc.collect()
                    if self.drain and got == 0 and not self._batch and self._settled(r):
                        log.info("consumer %s: drained", self.s.consumer)
                        break
                except redis.ResponseError as exc:
                    if "NOGROUP" not in str(exc):
                        raise
                    # The group vanished under us; recovery recreates it and says so loudly.
                    self._commit_only()
                    recover = True
                except CommitFailed as exc:
                    if not commit_failing:
                        log.error(
                            "consumer %s: commit of %d rows failed (%s): keeping them "
                            "unacknowledged and retrying",
                            self.s.consumer,
                            self._batch.entries,
                            exc,
                        )
                    commit_failing = True
                    backoff = min(BACKOFF_CAP, max(0.5, backoff * 2))
                    self._sleep(backoff)
                except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                    if down_since is None:
                        down_since = time.monotonic()
                        log.warning(
                            "redis unreachable at %s (%s): committing what we hold, "
                            "retrying with backoff",
                            mask_url(self._url or "?"),
                            type(exc).__name__,
                        )
                    self.stats.reconnects += 1
                    self._drop_client()
                    self._commit_only()
                    recover = True
                    backoff = min(BACKOFF_CAP, max(0.1, backoff * 2))
                    self._sleep(backoff)
        finally:
            self._finish()
            if gc_was_on:
                gc.enable()
        return self.stats

    def _finish(self) -> None:
        """Commit what we hold and acknowledge it if Redis lets us; otherwise it is redelivered."""
        import redis

        # The read sent ahead joins the batch in hand (if it fails, those entries wait in our
        # pending list for the next start).
        with contextlib.suppress(redis.RedisError, OSError):
            self._take_prefetched()
        try:
            self._commit_only()
            if self._ack_backlog or self._dlq_backlog:
                self._ack_committed(self._client())
            self._collect_acks()
        except CommitFailed as exc:
            log.error(
                "consumer %s: could not commit %d rows (%s): they stay pending and will "
                "be redelivered",
                self.s.consumer,
                self._batch.entries,
                exc,
            )
        except (redis.RedisError, OSError) as exc:
            log.warning(
                "could not acknowledge %d committed entries (%s): they will be "
                "redelivered and deduplicated",
                len(self._ack_backlog),
                type(exc).__name__,
            )
        finally:
            self._drop_client()
            for pool in self._pools.values():
                pool.shutdown(wait=True)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stop.requested and time.monotonic() < deadline:
            time.sleep(min(0.1, deadline - time.monotonic()))

    # -- reading ----------------------------------------------------------------------------

    def _ensure_group(self, r: redis.Redis) -> None:
        import redis

        try:
            r.execute_command("XGROUP", "CREATE", self.stream, self.group, "0", "MKSTREAM")
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            self._group_seen = True
            return
        if self._group_seen:
            # Redis restarted without persistence (or someone deleted the key): the stream and
            # the group's pending list are gone. Start over at 0 so nothing new is skipped.
            self.stats.stream_resets += 1
            log.error(
                "STREAM RESET: %s lost its group %s (Redis restarted without its data?); "
                "recreated it at id 0. Entries that were in Redis but not yet committed "
                "are lost at the source.",
                self.s.stream,
                self.s.group,
            )
        else:
            log.info("created group %s on %s at id 0", self.s.group, self.s.stream)
        self._group_seen = True

    def _read_new(self, r: redis.Redis) -> int:
        if self._ahead:
            entries = self._prefetched()
        else:
            block: int | None = self.s.block_ms
            if self._batch:
                # Wake up in time to flush an aging batch of an idle stream.
                left = self.s.batch_age - (time.monotonic() - self._batch.started)
                block = max(1, min(self.s.block_ms, int(left * 1000)))
            if self.drain:
                # Nothing new right now is what --drain waits for: ask without blocking (a
                # 100 ms BLOCK here cost every drain 0.1-0.2 s at its end).
                block = None
            entries = self._xreadgroup(r, ">", self.s.read_count, block)
        if len(entries) == self.s.read_count and not self.stop.requested:
            self._send_ahead(r)
        self._take(entries, {})
        return len(entries)

    def _send_ahead(self, r: redis.Redis) -> None:
        """A full read means more is waiting: keep READ_AHEAD reads (no BLOCK) queued on the
        reader connection, so Redis prepares the next replies while we parse and decode this
        one. Replies are taken in order by `_prefetched`."""
        if self._reader is None:
            self._reader = r.connection_pool.get_connection()
        while self._ahead < READ_AHEAD:
            self._reader.send_command(
                "XREADGROUP",
                "GROUP",
                self.group,
                self.name,
                "COUNT",
                self.s.read_count,
                "STREAMS",
                self.stream,
                ">",
            )
            self._ahead += 1

    def _prefetched(self) -> list[tuple[bytes, list[bytes] | None]]:
        """The oldest reply of the reads sent ahead (its entries are in our pending list)."""
        self._ahead -= 1
        return _parse_entries(self._reader.read_response())

    def _take_prefetched(self) -> None:
        """Take in the reads sent ahead before anything else reads our pending list, so no entry
        is read twice."""
        while self._ahead:
            self._take(self._prefetched(), {})

    def _xreadgroup(
        self, r: redis.Redis, after: bytes | str, count: int, block: int | None = None
    ) -> list[tuple[bytes, list[bytes] | None]]:
        """XREADGROUP of our stream, parsed from the raw reply (redis-py's dict-per-entry
        parsing costs a third of the read time)."""
        args: list[Any] = ["GROUP", self.group, self.name, "COUNT", count]
        if block is not None:
            args += ["BLOCK", block]
        return _parse_entries(r.execute_command("XREADGROUP", *args, "STREAMS", self.stream, after))

    def _recover_own(self, r: redis.Redis) -> None:
        """Re-read our own pending list: entries read before a crash or a Redis error."""
        self._take_prefetched()
        start = b"-"
        total = 0
        while True:
            pending = r.execute_command(
                "XPENDING", self.stream, self.group, start, "+", self.s.read_count, self.name
            )
            if not pending:
                break
            if not total:
                self.writer.warm()  # before the re-read, not between it and its commit
            counts = {p[0]: int(p[3]) for p in pending}
            first, last = pending[0][0], pending[-1][0]
            # XREADGROUP with an id returns our pending entries after it; `0` starts at the head.
            cursor = b"0" if start == b"-" else _before(first)
            entries = [e for e in self._xreadgroup(r, cursor, len(pending)) if e[0] in counts]
            self._take(entries, counts)
            # Ids still in the PEL whose payload was trimmed come back without fields above;
            # ids missing from the reply entirely were deleted: dead-letter them too.
            seen = {e[0] for e in entries}
            for missing in (i for i in counts if i not in seen):
                self._take([(missing, None)], counts)
            total += len(pending)
            # Commit and acknowledge page by page, before reading on: every re-read counts
            # toward max_deliveries, so a consumer killed again and again while recovering
            # must make progress, not re-read the same first page until it is dead-lettered.
            self._commit_only()
            self._ack_committed(r)
            self._collect_acks()
            start = b"(" + last
        if total:
            log.info(
                "consumer %s: recovered %d entries from its pending list", self.s.consumer, total
            )

    def _claim(self, r: redis.Redis) -> None:
        """Take over entries of dead consumers: idle longer than claim_idle, or any entry of a
        consumer on this host whose process no longer exists."""
        self._last_claim = time.monotonic()
        self._take_prefetched()
        claimed = 0
        host = socket.gethostname()
        for info in r.execute_command("XINFO", "CONSUMERS", self.stream, self.group):
            c = dict(zip(info[::2], info[1::2], strict=True))
            name = c[b"name"].decode()
            if name == self.s.consumer or not _local_dead(name, host):
                continue
            while True:
                pending = r.execute_command(
                    "XPENDING", self.stream, self.group, "-", "+", self.s.read_count, name
                )
                if not pending:
                    break
                r.execute_command(
                    "XCLAIM",
                    self.stream,
                    self.group,
                    self.name,
                    0,
                    *[p[0] for p in pending],
                    "JUSTID",
                )
                claimed += len(pending)
            r.execute_command("XGROUP", "DELCONSUMER", self.stream, self.group, name)
        cursor = b"0-0"
        idle_ms = int(self.s.claim_idle * 1000)
        while True:
            reply = r.execute_command(
                "XAUTOCLAIM",
                self.stream,
                self.group,
                self.name,
                idle_ms,
                cursor,
                "COUNT",
                self.s.read_count,
                "JUSTID",
            )
            cursor = reply[0]
            claimed += len(reply[1])
            if cursor in (b"0-0", b"0"):
                break
        if claimed:
            self.stats.claimed += claimed
            log.warning(
                "consumer %s: claimed %d entries from dead or stalled consumers",
                self.s.consumer,
                claimed,
            )
            # Our batch is in our pending list too: commit and acknowledge it before re-reading
            # that list, so no entry is read twice into one commit.
            self._commit_only()
            self._ack_committed(r)
            self._recover_own(r)

    def _take(
        self, entries: list[tuple[bytes, list[bytes] | None]], deliveries: dict[bytes, int]
    ) -> None:
        """Decode entries into the batch; each bad one becomes a dead letter on its own."""
        if not entries:
            return
        batch = self._batch
        if not batch:
            batch.started = time.monotonic()
        max_bytes = self.s.max_entry_bytes
        limit = self.s.max_deliveries
        rows, dead = batch.rows, batch.dead
        add_json, add_fielded, add_text = batch.json.append, batch.fielded.append, batch.text.append
        batch.ids.extend([entry[0] for entry in entries])
        lanes_before = len(batch.json) + len(batch.fielded) + len(batch.text)
        nbytes = 0
        for entry in entries:
            entry_id, fields = entry
            if deliveries and deliveries.get(entry_id, 0) >= limit:
                dead.append(
                    (
                        entry_id,
                        fields or [],
                        f"delivered {deliveries[entry_id] + 1} times without being committed",
                    )
                )
                continue
            # Recovered or claimed entries (with `deliveries`) are decoded right here, to be
            # committed at once; new ones go down a columnar lane when they fit one (an
            # oversized one is dead-lettered here).
            if not deliveries and fields:
                if len(fields) == 2:
                    size = len(fields[0]) + len(fields[1])
                    if size <= max_bytes:
                        if fields[1][:1] == b"{":
                            add_json(entry)  # type: ignore[arg-type]
                            nbytes += size
                            continue
                        if fields[0] not in _SINGLE_VALUE_KEYS:
                            add_text(entry)  # type: ignore[arg-type]
                            nbytes += size
                            continue
                elif len(fields) > 2:
                    size = sum(map(len, fields))
                    if size <= max_bytes:
                        add_fielded(entry)  # type: ignore[arg-type]
                        nbytes += size
                        continue
            try:
                rows.extend(self._decode_one(entry_id, fields))
            except BadEntry as exc:
                dead.append((entry_id, fields or [], exc.reason))
                continue
            nbytes += sum(map(len, fields))  # type: ignore[arg-type]
        batch.nbytes += nbytes
        batch.lane_count += len(batch.json) + len(batch.fielded) + len(batch.text) - lanes_before
        # Decode on a decode thread while we read on.
        if len(batch.json) >= DECODE_CHUNK:
            pool = self._executor("decode")
            batch.decoding.append(pool.submit(self._decode_lane, batch.json, "json"))
            batch.json = []
        if len(batch.fielded) >= DECODE_CHUNK:
            pool = self._executor("decode")
            batch.decoding.append(pool.submit(self._decode_lane, batch.fielded, "fields"))
            batch.fielded = []
        if len(batch.text) >= TEXT_CHUNK:
            pool = self._executor("decode")
            batch.decoding.append(pool.submit(self._decode_lane, batch.text, "text"))
            batch.text = []
        self.stats.read += len(entries)
        faults.crash_point("after_read")

    # -- committing -------------------------------------------------------------------------

    def _due_flush(self) -> bool:
        b = self._batch
        if not b:
            return False
        return (
            b.entries >= self.s.batch_rows
            or b.nbytes >= self.s.batch_bytes
            or time.monotonic() - b.started >= self.s.batch_age
            or self.stop.requested
        )

    def _write(self, b: _Batch) -> None:
        """Collect the batch's decoded JSON chunks, decode what is left of it, and commit it (on
        the commit thread: Delta's Rust writer releases the GIL, so it overlaps with reading)."""
        if b.json or b.fielded or b.text or b.decoding:
            decoded = [f.result() for f in b.decoding]
            if b.json:
                decoded.append(self._decode_lane(b.json, "json"))
            if b.fielded:
                decoded.append(self._decode_lane(b.fielded, "fields"))
            if b.text:
                decoded.append(self._decode_lane(b.text, "text"))
            for table, rows, dead in decoded:
                b.parts.append(table)
                b.rows.extend(rows)
                b.dead.extend(dead)
                if rows:
                    b.table = None
            b.json, b.fielded, b.text, b.decoding = [], [], [], []
        if b.rows or b.parts:
            started = time.perf_counter()
            try:
                table = _assemble(b)
                hours = self.writer.write(table)
            except Exception as exc:  # noqa: BLE001 - disk full, permissions, a broken table
                raise CommitFailed(_one_line(exc)) from exc
            elapsed = time.perf_counter() - started
            self.stats.commits += 1
            self.stats.commit_seconds += elapsed
            self.stats.ingested += table.num_rows
            self.stats.last_batch_rows = table.num_rows
            log.info(
                "consumer %s: committed %d rows (%d hours) in %.0f ms",
                self.s.consumer,
                table.num_rows,
                hours,
                elapsed * 1000,
            )
        faults.crash_point("after_commit")

    def _decode_one(self, entry_id: bytes, fields: list[bytes] | None) -> list[Row]:
        """records.decode_rows of one entry, with this consumer's limits and formats."""
        return decode_rows(
            entry_id.decode(),
            fields,
            max_bytes=self.s.max_entry_bytes,
            max_depth=self.s.max_json_depth,
            formats=self.formats,
        )

    def _decode_lane(self, entries: list[tuple[bytes, list[bytes]]], lane: str) -> _Decoded:
        """Entries of one lane (`json`: one JSON field; `fields`: a field per column; `text`: one
        plain-text field) -> Arrow
        rows in one go (decode thread). What the columnar decoder leaves (see columnar.py) is
        decoded entry by entry, bad entries becoming dead letters as usual. Never raises: an
        entry no decoder can take is a dead letter, not a stuck batch."""
        from ingest.consume import columnar

        table = None
        try:
            ids = [entry[0] for entry in entries]
            if lane == "fields":
                table, left = columnar.decode_fields(ids, [entry[1] for entry in entries])
            elif lane == "text":
                table, left = columnar.decode_text(
                    ids, [entry[1][1] for entry in entries], self.formats
                )
            else:
                table, left = columnar.decode_json(ids, [entry[1][1] for entry in entries])
            if table.num_rows + len(left) != len(entries):
                # Every entry must come back as a row or a leftover: one that came back as
                # neither would be acknowledged with no row and no dead letter.
                raise _LaneMiscount(
                    f"{table.num_rows} rows and {len(left)} left for {len(entries)} entries"
                )
        except Exception as exc:  # noqa: BLE001 - the per-entry path below decodes them all
            log.warning(
                "columnar decoding failed (%s): decoding %d entries one by one",
                _one_line(exc),
                len(entries),
            )
            table, left = None, list(range(len(entries)))
        rows: list[Row] = []
        dead: list[tuple[bytes, list[bytes], str]] = []
        for i in left:
            entry_id, fields = entries[i]
            try:
                rows.extend(self._decode_one(entry_id, fields))
            except BadEntry as exc:
                dead.append((entry_id, fields, exc.reason))
            except Exception as exc:  # noqa: BLE001 - a decoder bug must not stall ingest
                dead.append((entry_id, fields, f"decoder error: {_one_line(exc)}"))
        return table, rows, dead

    def _settle(self, wait: bool = True) -> None:
        """Collect the commit in flight: its ids become acknowledgeable. A failed commit puts its
        rows back in front of the batch being filled, unacknowledged."""
        if self._inflight is None:
            return
        future, b = self._inflight
        if not wait and not future.done():
            return
        self._inflight = None
        try:
            future.result()
        except CommitFailed:
            b.absorb(self._batch)
            self._batch = b
            raise
        self._dlq_backlog.extend(b.dead)
        self._ack_backlog.extend(b.ids)
        if self.on_commit:
            self.on_commit(self.stats)

    def _commit_only(self) -> None:
        """Commit everything read so far, synchronously; the ids move to the ack backlog."""
        self._settle()
        b, self._batch = self._batch, _Batch()
        if not b:
            return
        self._inflight = (_done_future(self._write, b), b)
        self._settle()

    def _flush(self, r: redis.Redis) -> None:
        """Hand the batch to the writer thread and keep reading while it commits; acknowledge
        the previous batch, whose commit has landed."""
        self._settle()
        b, self._batch = self._batch, _Batch()
        if b:
            # Arrow columns are built here, not on the writer thread: that work holds the GIL
            # and would only contend with reading.
            try:
                b.table = rows_to_arrow(b.rows) if b.rows else None
            except Exception:  # noqa: BLE001 - retried on the writer thread, which reports it
                b.table = None
            self._inflight = (self._executor("commit").submit(self._write, b), b)
        if self.stop.requested:
            self._settle()
        self._ack_committed(r)
        if time.monotonic() - self._last_trim > TRIM_EVERY:
            self._trim(r)

    def _executor(self, name: str) -> ThreadPoolExecutor:
        """The `decode` threads (JSON chunks) or the `commit` thread (batches, in order; a
        commit waits for its batch's chunks). They mostly run native code that releases the
        GIL, so decoding, committing and reading overlap."""
        pool = self._pools.get(name)
        if pool is None:
            from concurrent.futures import ThreadPoolExecutor

            workers = DECODE_THREADS if name == "decode" else 1
            pool = self._pools[name] = ThreadPoolExecutor(workers, thread_name_prefix=name)
        return pool

    def _ack_committed(self, r: redis.Redis) -> None:
        """Dead letters first, then XACK, pipelined: an entry is never acknowledged before its row
        or its DLQ copy exists. A crash in between leaves at worst a duplicate dead letter."""
        if self._dlq_backlog:
            pipe = r.pipeline(transaction=False)
            now = str(int(time.time() * 1000))
            for entry_id, fields, reason in self._dlq_backlog:
                pipe.xadd(self.s.dlq_stream, _dead_letter(entry_id, fields, reason, now))
            pipe.execute()
            self.stats.dead_lettered += len(self._dlq_backlog)
            for entry_id, _, reason in self._dlq_backlog[:20]:
                log.warning("dead-lettered %s: %s", entry_id.decode(), reason)
            self._dlq_backlog = []
        ids = self._ack_backlog
        if ids:
            faults.crash_point("before_ack")
            self._collect_acks()
            if self._acker is None:
                self._acker = r.connection_pool.get_connection()
            packed = [
                _pack_xack(self.stream, self.group, ids[i : i + ACK_CHUNK])
                for i in range(0, len(ids), ACK_CHUNK)
            ]
            # Sent now, replies read later: Redis applies them while we read on.
            self._acker.send_packed_command(packed)
            self._acks_unread += len(packed)
            self._ack_backlog = []

    def _collect_acks(self) -> None:
        """Read the replies of the XACKs sent so far (an error reply raises here)."""
        while self._acks_unread:
            self._acks_unread -= 1
            self._acker.read_response()

    def _trim(self, r: redis.Redis) -> None:
        """Trim only what every group has acknowledged (XTRIM MINID; never MAXLEN)."""
        self._last_trim = time.monotonic()
        groups = r.execute_command("XINFO", "GROUPS", self.stream)
        floor: tuple[int, int] | None = None
        for info in groups:
            g = dict(zip(info[::2], info[1::2], strict=True))
            if int(g[b"pending"]):
                summary = r.execute_command("XPENDING", self.stream, g[b"name"])
                keep = _id_tuple(summary[1])
            else:
                ms, seq = _id_tuple(g[b"last-delivered-id"])
                keep = (ms, seq + 1)
            floor = keep if floor is None or keep < floor else floor
        if floor is not None and floor > (0, 0):
            r.execute_command("XTRIM", self.stream, "MINID", f"{floor[0]}-{floor[1]}")

    def _settled(self, r: redis.Redis) -> bool:
        """Nothing pending in the group and nothing left to deliver (for --drain)."""
        self._settle()
        if self._ack_backlog or self._dlq_backlog:
            self._ack_committed(r)
        self._collect_acks()
        summary = r.execute_command("XPENDING", self.stream, self.group)
        if int(summary[0]):
            if time.monotonic() - self._last_claim > 1.0:
                self._claim(r)
            else:
                time.sleep(0.1)
            return False
        self._trim(r)
        return True


def _done_future(fn: Callable[[_Batch], None], b: _Batch) -> Future[None]:
    """Run `fn(b)` here and now, wrapped as a finished future."""
    from concurrent.futures import Future

    future: Future[None] = Future()
    try:
        fn(b)
    except BaseException as exc:  # noqa: BLE001 - handed to whoever settles the future
        future.set_exception(exc)
    else:
        future.set_result(None)
    return future


class CommitFailed(Exception):
    """The lake refused a commit; the batch stays unacknowledged."""


class _LaneMiscount(Exception):
    """The columnar decoder lost or repeated entries (a bug): the chunk is decoded one by one."""


def _assemble(b: _Batch) -> Any:
    """The batch's one Arrow table: the rows decoded one by one and the columnar parts, each
    `stream_id` once."""
    import pyarrow as pa

    if b.table is None:
        b.table = rows_to_arrow(b.rows)
    tables = [t for t in (b.table, *b.parts) if t is not None and t.num_rows] or [b.table]
    return unique_ids(pa.concat_tables(tables) if len(tables) > 1 else tables[0])


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _pause_gc() -> bool:
    """Ingest allocates millions of short-lived, acyclic objects (reply lists, row tuples): the
    cyclic collector's passes over the batch in hand cost throughput (a pass every 700
    allocations, Python's default: -20 %; every 50,000: -2 % median, 0-13 % over 7 alternating
    runs of bench/ingest.py). Freeze what start-up allocated and turn automatic collection off;
    the loop collects every GC_EVERY seconds instead. Returns whether it was on."""
    was_on = gc.isenabled()
    gc.freeze()
    gc.disable()
    return was_on


def _arrow_from_malloc() -> None:
    """Arrow's buffers (the JSON reader's, the batch tables') from the C allocator: mimalloc,
    Arrow's default, keeps freed pages, and ingest peaked ~55 MB higher with it at the same
    speed (bench/ingest.py, 4 alternating runs: 406 vs 350 MB)."""
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())


def _warm_decoder() -> None:
    from ingest.consume import columnar

    columnar.decode_json([b"0-1"], [b'{"ts":"2026-01-01T00:00:00Z","message":"warm-up"}'])
    # A line no format takes: every format's pattern is compiled once (~2 ms each), here
    # beside the first reads rather than in the first batch.
    columnar.decode_text([b"0-1"], [b"warm-up"])


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


def _id_tuple(raw: bytes) -> tuple[int, int]:
    ms, _, seq = raw.decode().partition("-")
    return int(ms), int(seq or 0)


def _before(entry_id: bytes) -> bytes:
    ms, seq = _id_tuple(entry_id)
    if seq:
        return f"{ms}-{seq - 1}".encode()
    return f"{ms - 1}-18446744073709551615".encode()


def _dead_letter(entry_id: bytes, fields: list[bytes], reason: str, now: str) -> dict[Any, Any]:
    letter: dict[Any, Any] = {b"reason": reason, b"stream_id": entry_id, b"failed_at": now}
    for i in range(0, len(fields) - 1, 2):
        key = fields[i]
        letter[b"orig:" + key if key in letter else key] = fields[i + 1]
    return letter


def run(settings: Settings, drain: bool = False, install_signals: bool = True) -> Stats:
    """Entry point of `logs ingest`."""
    # Off from here, not only in Consumer.run: the imports below (Redis, Arrow, Delta, then
    # Polars) allocate enough for the collector to cost them ~10 % too.
    gc_was_on = _pause_gc()
    try:
        # Fail fast with a clear message when Redis is absent at start; later outages are
        # retried.
        connect(resolve_url(settings), settings.block_ms).close()
        stop = StopSignal()
        if install_signals:
            stop.install()
        _arrow_from_malloc()
        consumer = Consumer(settings, drain=drain, stop=stop)
        if settings.metrics_port is None:
            return consumer.run()
        from ingest import metrics

        server = metrics.serve(settings.metrics_port, settings, lambda: consumer.stats)
        consumer.on_commit = server.on_commit
        log.info("consumer %s: metrics on %s/metrics", settings.consumer, server.url)
        try:
            return consumer.run()
        finally:
            server.close()
    finally:
        if gc_was_on:
            gc.enable()
