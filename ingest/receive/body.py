"""Request bodies: read within the size limit, then inflated within it, chunk by chunk.

The limit (`receive_max_body`) applies to the body as received and again to what it inflates
to, checked while inflating: a gzip bomb (a few KB that inflate to gigabytes) is refused after at
most the limit plus one chunk has been produced, never held whole in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from ingest.receive.problems import BadRequest, RequestTimeout, TooLarge, UnsupportedMedia

CHUNK = 1 << 20
"""Bytes inflated per step: the most a body can overshoot the limit by before it is refused."""

READ_IDLE = 30.0
"""Seconds a request body may stall between two chunks before the request is dropped (a
stalled upload holds one of the app's writer slots)."""
DRAIN_LIMIT = 256 * 1024 * 1024
"""Most bytes of a refused body read and dropped so the client gets its 413."""

Receive = Callable[[], Awaitable[dict[str, Any]]]


def _too_large(limit: int, what: str) -> TooLarge:
    return TooLarge(f"request body {what} exceeds receive_max_body ({limit} bytes)")


async def read(
    receive: Receive, limit: int, declared: int | None, expect_continue: bool = False
) -> bytes:
    """The raw body of an ASGI request (chunked or not), refused past `limit` bytes."""
    if declared is not None and declared > limit:
        if not expect_continue:
            # The client is sending it anyway: read and drop it, so the 413 reaches a client
            # that reads its answer only once the body is sent (urllib, requests).
            await _drain(receive, 0)
        raise _too_large(limit, f"of {declared} bytes")
    # From here the body is read (or drained) whatever happens.
    parts: list[bytes] = []
    size = 0
    while True:
        message = await _next(receive)
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                if message.get("more_body", False):
                    await _drain(receive, size)
                raise _too_large(limit, "as sent")
            parts.append(chunk)
        if not message.get("more_body", False):
            break
    return parts[0] if len(parts) == 1 else b"".join(parts)


async def discard(receive: Receive) -> None:
    """Read and drop a body the request was refused before reading (a wrong token, ingest
    behind), so the answer reaches clients that read it only once the body is sent."""
    with contextlib.suppress(ConnectionResetError, RequestTimeout):
        await _drain(receive, 0)


async def _drain(receive: Receive, size: int) -> None:
    """Read and drop the rest of a refused body, up to DRAIN_LIMIT bytes (past that the
    connection is closed under the client instead)."""
    while size <= DRAIN_LIMIT:
        message = await _next(receive)
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _next(receive: Receive) -> dict[str, Any]:
    try:
        message = await asyncio.wait_for(receive(), READ_IDLE)
    except TimeoutError:
        raise RequestTimeout(f"request body stalled for {READ_IDLE:.0f} s") from None
    if message["type"] == "http.disconnect":
        raise ConnectionResetError("client went away")
    return message


def inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """`body` decoded from its Content-Encoding (none, gzip, deflate, zstd, snappy)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return _zlib(body, zlib.MAX_WBITS | 16, limit, "gzip")
    if encoding == "deflate":
        # RFC 9110's deflate is zlib-wrapped; some clients send raw deflate: try both.
        try:
            return _zlib(body, zlib.MAX_WBITS, limit, "deflate")
        except BadRequest:
            return _zlib(body, -zlib.MAX_WBITS, limit, "deflate")
    if encoding == "zstd":
        return _zstd(body, limit)
    if encoding == "snappy":
        return snappy_block(body, limit)
    raise UnsupportedMedia(
        f"Content-Encoding {encoding!r} is not supported (gzip, deflate, zstd, snappy)"
    )


def _zlib(body: bytes, wbits: int, limit: int, name: str) -> bytes:
    parts: list[bytes] = []
    size = 0
    data = body
    try:
        # One pass per member: gzip allows several concatenated, and some shippers append.
        while data:
            inflater = zlib.decompressobj(wbits)
            while not inflater.eof:
                out = inflater.decompress(data, CHUNK)
                data = inflater.unconsumed_tail
                if out:
                    size += len(out)
                    if size > limit:
                        raise _too_large(limit, f"inflated from {name}")
                    parts.append(out)
                elif not data:
                    raise BadRequest(f"body is not valid {name}: truncated")
            data = inflater.unused_data
    except zlib.error as exc:
        raise BadRequest(f"body is not valid {name}: {exc}") from None
    return b"".join(parts)


def _zstd(body: bytes, limit: int) -> bytes:
    import io

    import zstandard

    parts: list[bytes] = []
    size = 0
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(body), read_across_frames=True
        )
        while True:
            out = reader.read(CHUNK)
            if not out:
                break
            size += len(out)
            if size > limit:
                raise _too_large(limit, "inflated from zstd")
            parts.append(out)
    except zstandard.ZstdError as exc:
        raise BadRequest(f"body is not valid zstd: {exc}") from None
    return b"".join(parts)


def snappy_block(body: bytes, limit: int) -> bytes:
    """Snappy block format (Loki, Prometheus remote write). The block starts with its
    uncompressed length, checked against the limit before anything is inflated."""
    import cramjam

    length = 0
    shift = 0
    for i, byte in enumerate(body[:5]):
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
        if i == 4:
            raise BadRequest("body is not valid snappy: bad length header")
    else:
        if body:
            raise BadRequest("body is not valid snappy: bad length header")
    if length > limit:
        raise _too_large(limit, f"inflated from snappy ({length} bytes)")
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except Exception as exc:  # noqa: BLE001 - cramjam raises its own DecompressionError
        raise BadRequest(f"body is not valid snappy: {exc}") from None
