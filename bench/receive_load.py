"""HTTP load for bench/receive.py: pre-built requests over keep-alive connections, closed loop
(as fast as answered) and open loop (a fixed schedule, latency from each scheduled start)."""

from __future__ import annotations

import asyncio
import time

from bench import receive_bodies as payload


def raw_request(port: int, path: str, ctype: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {ctype}\r\n"
        f"Authorization: Bearer {payload.TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def closed_loop(
    port: int, requests: list[bytes], clients: int
) -> tuple[float, list[float], int]:
    """Every request sent as soon as a connection is free: records/s, latencies, failures."""
    queue = list(reversed(requests))
    latencies: list[float] = []
    failures = 0

    async def client() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            request = queue.pop()
            started = time.perf_counter()
            if await _exchange(reader, writer, request) != 200:
                failures += 1
            latencies.append(time.perf_counter() - started)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return len(requests) * payload.BATCH / (time.perf_counter() - started), latencies, failures


async def open_loop(
    port: int, requests: list[bytes], rate: float, seconds: float, connections: int
) -> tuple[list[float], int, int]:
    """Requests started on a fixed schedule (`rate` records/s); latency from the scheduled
    start, so a stall counts for every request it delays."""
    interval = payload.BATCH / rate
    count = int(seconds / interval)
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies: list[float] = []
    failures = 0
    start = time.perf_counter() + 0.1

    async def one(i: int) -> None:
        nonlocal failures
        due = start + i * interval
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        conn = await pool.get()
        if await _exchange(*conn, requests[i % len(requests)]) != 200:
            failures += 1
        latencies.append(time.perf_counter() - due)
        pool.put_nowait(conn)

    await asyncio.gather(*(one(i) for i in range(count)))
    while not pool.empty():
        pool.get_nowait()[1].close()
    return latencies, count, failures


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000
