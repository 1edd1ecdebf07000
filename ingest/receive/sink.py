"""The receiver's side of Redis: one request's entries XADDed all or nothing, and backpressure.

Every request's entries go out as one `MULTI`, the XADDs, `EXEC`, written in one piece on a
single pipelined connection that all requests share (replies come back in order, so each request
waits only for its own). The transaction is what makes a refusal clean: when Redis refuses
(out of memory, read-only replica) or the connection drops before `EXEC`, nothing of the request
was written, and the client is told to retry. The one unknowable case is a connection lost
after `EXEC` was sent and before its reply: the client is told to retry and may send the
request twice (README, "Delivery").

Commands are packed by hand and replies parsed by hiredis: redis-py's pipeline costs ~4 µs per
XADD in Python, this ~0.4 µs (bench/receive.py).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from ingest.config import mask_url
from ingest.errors import one_line
from ingest.receive.entries import Entry
from ingest.receive.problems import Busy, Unavailable

log = logging.getLogger("logs.receive")

CHECK_EVERY = 0.5
"""Seconds a backlog reading (group lag, stream length) is trusted before it is read again."""
RECONNECT_PAUSE = 1.0
"""After a failed connect, requests are refused at once for this long instead of each waiting."""


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def pack(*args: bytes) -> bytes:
    """One command in RESP."""
    return b"*%d\r\n" % len(args) + b"".join(_bulk(a) for a in args)


class _Waiter:
    __slots__ = ("future", "left", "replies", "keep")

    def __init__(self, future: asyncio.Future[_Waiter], count: int, keep: bool) -> None:
        self.future = future
        self.left = count
        self.replies: list[Any] = []
        self.keep = keep
        """Keep every reply (handshakes, backlog reads); else only errors and the last one."""


class _Connection(asyncio.Protocol):
    """A Redis connection whose replies are handed, in order, to the requests that wait."""

    def __init__(self) -> None:
        import hiredis

        self._reader = hiredis.Reader()
        self._error_type = hiredis.ReplyError
        self.waiters: deque[_Waiter] = deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiters = self.waiters
        while waiters:
            waiter = waiters[0]
            while waiter.left:
                reply = reader.gets()
                if reply is False:
                    return
                waiter.left -= 1
                if waiter.keep or not waiter.left or isinstance(reply, self._error_type):
                    waiter.replies.append(reply)
            waiters.popleft()
            if not waiter.future.done():
                waiter.future.set_result(waiter)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.future.done():
                waiter.future.set_exception(ConnectionError(str(exc or "connection closed")))

    def send(self, data: bytes | list[bytes], count: int, keep: bool) -> asyncio.Future[_Waiter]:
        if self.closed or self.transport is None or self.transport.is_closing():
            raise ConnectionError("connection closed")
        future: asyncio.Future[_Waiter] = asyncio.get_running_loop().create_future()
        self.waiters.append(_Waiter(future, count, keep))
        if isinstance(data, list):
            self.transport.writelines(data)
        else:
            self.transport.write(data)
        return future

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class Sink:
    """XADDs to `stream` for the requests of one receiver process."""

    def __init__(
        self, url: str, stream: str, group: str, max_lag: int, timeout: float = 10.0
    ) -> None:
        from redis.connection import parse_url

        self.url = url
        self.stream = stream
        self.group = group.encode()
        self.max_lag = max_lag
        self.timeout = timeout
        self._where = mask_url(url)
        self._params: dict[str, Any] = parse_url(url)
        self._tls = url.startswith("rediss://")
        key = stream.encode()
        # `*5 XADD key * data <doc>`: everything but the document is the same for every entry.
        self._json_head = b"*5\r\n" + _bulk(b"XADD") + _bulk(key) + _bulk(b"*") + _bulk(b"data")
        self._key_bulk = _bulk(b"XADD") + _bulk(key) + _bulk(b"*")
        self._multi = pack(b"MULTI")
        self._exec = pack(b"EXEC")
        self._backlog_cmds = pack(b"XLEN", key) + pack(b"XINFO", b"GROUPS", key)
        self._conn: _Connection | None = None
        self._connecting: asyncio.Lock | None = None
        self._failed_at = 0.0
        self._down_logged = False
        self._backlog = 0
        self._backlog_what = ""
        self._checked_at = -1e9
        self._checking: asyncio.Task[None] | None = None

    # -- connection -------------------------------------------------------------------------

    async def _connection(self) -> _Connection:
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            conn = self._conn
            if conn is not None and not conn.closed:
                return conn
            if time.monotonic() - self._failed_at < RECONNECT_PAUSE:
                raise Unavailable(f"Redis at {self._where} is unreachable; retry later")
            try:
                conn = await asyncio.wait_for(self._open(), 5.0)
            except (OSError, ConnectionError, TimeoutError, RedisRefused) as exc:
                self._failed_at = time.monotonic()
                if not self._down_logged:
                    log.warning("receive: Redis at %s unreachable: %s", self._where, one_line(exc))
                    self._down_logged = True
                raise Unavailable(f"Redis at {self._where} is unreachable; retry later") from None
            if self._down_logged:
                log.warning("receive: Redis at %s is back", self._where)
                self._down_logged = False
            self._conn = conn
            return conn

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        p = self._params
        if p.get("path"):
            _, conn = await loop.create_unix_connection(_Connection, p["path"])
        else:
            tls = ssl.create_default_context() if self._tls else None
            _, conn = await loop.create_connection(
                _Connection, p.get("host", "localhost"), p.get("port", 6379), ssl=tls
            )
        hello: list[bytes] = []
        if p.get("password") is not None:
            user = p.get("username")
            pw = str(p["password"]).encode()
            hello.append(pack(b"AUTH", str(user).encode(), pw) if user else pack(b"AUTH", pw))
        if p.get("db"):
            hello.append(pack(b"SELECT", str(p["db"]).encode()))
        if hello:
            waiter = await conn.send(hello, len(hello), keep=True)
            for reply in waiter.replies:
                if isinstance(reply, Exception):
                    conn.close()
                    # The reply names the problem (WRONGPASS, ...), never the password.
                    raise RedisRefused(str(reply))
        return conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _roundtrip(self, data: bytes | list[bytes], count: int, keep: bool) -> _Waiter:
        conn = await self._connection()
        try:
            future = conn.send(data, count, keep)
            return await asyncio.wait_for(future, self.timeout)
        except (ConnectionError, OSError) as exc:
            self._drop()
            self._failed_at = time.monotonic()
            raise Unavailable(f"lost Redis at {self._where} ({one_line(exc)}); retry") from None
        except TimeoutError:
            # Replies are matched to requests by order: after a timeout that order is lost.
            self._drop()
            raise Unavailable(
                f"Redis at {self._where} did not answer within {self.timeout:.0f} s; retry"
            ) from None

    # -- writes -----------------------------------------------------------------------------

    def _pack(self, entries: Sequence[Entry]) -> list[bytes]:
        parts = [self._multi]
        append = parts.append
        json_head = self._json_head
        for entry in entries:
            if isinstance(entry, bytes):
                append(json_head)
                append(b"$%d\r\n" % len(entry))
                append(entry)
                append(b"\r\n")
            else:
                append(b"*%d\r\n" % (3 + len(entry)))
                append(self._key_bulk)
                for part in entry:
                    append(b"$%d\r\n" % len(part))
                    append(part)
                    append(b"\r\n")
        append(self._exec)
        return [b"".join(parts)]

    async def write(self, entries: Sequence[Entry]) -> list[bytes]:
        """XADD every entry in one transaction; their stream ids, in order. Raises
        `Unavailable` when Redis is unreachable or refused them (then none was added)."""
        if not entries:
            return []
        waiter = await self._roundtrip(self._pack(entries), len(entries) + 2, keep=False)
        result = waiter.replies[-1]
        errors = [r for r in waiter.replies if isinstance(r, Exception)]
        if isinstance(result, list):
            errors.extend(r for r in result if isinstance(r, Exception))
        if errors or not isinstance(result, list):
            reason = one_line(errors[0]) if errors else "no reply to EXEC"
            log.warning("receive: Redis refused %d entries: %s", len(entries), reason)
            raise Unavailable(f"Redis refused the entries ({reason}); retry later")
        return result

    # -- backpressure -----------------------------------------------------------------------

    async def check_backlog(self) -> None:
        """Raise `Busy` while the group's lag or the stream's length is over the limit (read
        at most every CHECK_EVERY seconds), `Unavailable` when Redis cannot be reached."""
        if time.monotonic() - self._checked_at > CHECK_EVERY:
            if self._checking is None or self._checking.done():
                self._checking = asyncio.ensure_future(self._read_backlog())
            await asyncio.shield(self._checking)
        if self._backlog > self.max_lag:
            raise Busy(
                f"ingest is behind: {self._backlog_what} {self._backlog:,} is over "
                f"receive_max_lag {self.max_lag:,}; retry later"
            )

    async def _read_backlog(self) -> None:
        waiter = await self._roundtrip(self._backlog_cmds, 2, keep=True)
        length, groups = waiter.replies
        backlog, what = (length if isinstance(length, int) else 0), "stream length"
        if isinstance(groups, list):
            for group in groups:
                if not isinstance(group, list):
                    continue
                info = dict(zip(group[::2], group[1::2], strict=False))
                lag = info.get(b"lag")
                if info.get(b"name") == self.group and isinstance(lag, int) and lag > backlog:
                    backlog, what = lag, "group lag"
        self._backlog, self._backlog_what = backlog, what
        self._checked_at = time.monotonic()

    async def ping(self) -> bool:
        try:
            waiter = await self._roundtrip(pack(b"PING"), 1, keep=True)
        except Unavailable:
            return False
        return not isinstance(waiter.replies[0], Exception)

    async def close(self) -> None:
        self._drop()


class RedisRefused(Exception):
    """Redis answered the connection handshake (AUTH, SELECT) with an error."""
