"""The receiver as one raw ASGI application: every protocol's paths on every port.

Per request, in order: route (404/405 in a neutral JSON form), token (the protocol's 401/403),
backpressure (its retryable 429/503 with Retry-After), body read and inflated within the limit
(its 413), the protocol's handler (which answers only after Redis took every entry), then the
metrics and, for any answer that is not 2xx, one access-log line. Unexpected exceptions become a
500 and one log line, never a traceback on a client's screen or ours (LOGS_DEBUG=1 logs it).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from ingest.config import Settings
from ingest.receive import auth, body, elastic, hec, loki, ndjson, otlp
from ingest.receive.http import Context, Limits, Reply, Request, Route
from ingest.receive.metrics import ReceiveMetrics
from ingest.receive.problems import (
    RETRY_AFTER,
    MethodNotAllowed,
    NotFound,
    Problem,
)
from ingest.receive.sink import Sink

log = logging.getLogger("logs.receive")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

WRITERS = 16
"""Write requests read and decoded at once; the rest wait their turn. With 32 MiB bodies that
bounds the bodies held to ~0.5 GB (the event loop works on one at a time anyway)."""

_ROUTERS = (hec.route, loki.route, ndjson.route, elastic.route)


def _neutral(problem: Problem, request: Request) -> Reply:
    return Reply(problem.status, orjson.dumps({"error": problem.message}))


class ReceiverApp:
    def __init__(self, settings: Settings, redis_url: str) -> None:
        self.tokens = auth.parse_tokens(settings.receive_tokens)
        self.limits = Limits(
            max_body=settings.receive_max_body,
            max_records=settings.receive_max_records,
            max_entry_bytes=settings.max_entry_bytes,
            es_version=settings.receive_es_version,
            max_json_depth=settings.max_json_depth,
        )
        self.sink = Sink(redis_url, settings.stream, settings.group, settings.receive_max_lag)
        self.ctx = Context(self.sink, self.limits)
        self.metrics = ReceiveMetrics()
        self._writers = asyncio.Semaphore(WRITERS)

    def route(self, method: str, path: str) -> Route | None:
        found = otlp.ROUTES.get((method, path))
        if found is not None:
            return found
        for router in _ROUTERS:
            found = router(method, path)
            if found is not None:
                return found
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Decoding a request makes tens of thousands of short-lived objects: the
                # automatic collector ran over them (and over the start-up heap) again and
                # again. The start-up heap is frozen and the young generations are collected on
                # a timer instead (CPU per record, OTLP/JSON 9.5 -> 7.0-7.2 µs, _bulk 5.0 ->
                # 4.1-4.6 µs; freezing alone: 7.7 and 4.5; peak RSS ~105 MB, as before).
                gc.freeze()
                gc.disable()
                collector = asyncio.ensure_future(_collect_garbage())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                collector.cancel()
                gc.enable()
                await self.sink.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        request = Request(
            method, path, scope.get("query_string", b""), headers, client[0] if client else "-"
        )
        route = self.route(method, path)
        protocol = route.protocol if route else "other"
        problem: Problem | None = None
        try:
            if route is None:
                reply = await self._own(request)
            else:
                if not route.public:
                    auth.check(self.tokens, headers.get("authorization"))
                if route.writes:
                    if route.backpressure:
                        await self.sink.check_backlog()
                    # Bodies in memory at once are bounded: past WRITERS requests wait here.
                    async with self._writers:
                        reply = await self._write(route, request, receive)
                else:
                    reply = await route.handler(request, self.ctx)
        except Problem as exc:
            problem = exc
            reply = (route.render if route else _neutral)(exc, request)
            if exc.retryable:
                reply.headers.append((b"retry-after", b"%d" % RETRY_AFTER))
            if (
                route is not None
                and route.writes
                and not request.body_started
                and headers.get("expect", "").lower() != "100-continue"
            ):
                await body.discard(receive)
        except ConnectionResetError:
            return  # the client left before sending its whole body: nobody to answer
        except Exception as exc:  # noqa: BLE001 - one bad request must not take the server down
            log.error(
                "receive: internal error on %s %s: %s: %s",
                method,
                path,
                type(exc).__name__,
                exc,
                exc_info=bool(os.environ.get("LOGS_DEBUG")),
            )
            problem = Problem(f"internal error ({type(exc).__name__})")
            reply = (route.render if route else _neutral)(problem, request)
        await _respond(send, reply, method)
        size = request.size
        seconds = time.perf_counter() - started
        self.metrics.observe(protocol, reply.status, reply.records, size, seconds)
        if not 200 <= reply.status < 300:
            reason = problem.message if problem else ""
            log.warning(
                "receive: %d %s %s from %s (%s, %d bytes, %.0f ms)%s",
                reply.status,
                method,
                path,
                request.client,
                protocol,
                size,
                seconds * 1000,
                f": {reason}" if reason else "",
            )

    async def _write(self, route: Route, request: Request, receive: Receive) -> Reply:
        """Read and inflate the body within the limits, then hand it to the protocol."""
        headers = request.headers
        request.body_started = True
        raw = await body.read(
            receive,
            self.limits.max_body,
            _length(headers),
            headers.get("expect", "").lower() == "100-continue",
        )
        request.size = len(raw)
        encoding = headers.get("content-encoding", "")
        if route.own_snappy and encoding.strip().lower() == "snappy":
            encoding = ""
        request.body = body.inflate(raw, encoding, self.limits.max_body)
        return await route.handler(request, self.ctx)

    async def _own(self, request: Request) -> Reply:
        """`/healthz` and `/metrics`; anything else is not ours."""
        if request.path == "/healthz" and request.method in ("GET", "HEAD"):
            return await self._health()
        if request.path == "/metrics" and request.method == "GET":
            return Reply(200, self.metrics.text(), "text/plain; version=0.0.4; charset=utf-8")
        for method in ("POST", "GET", "PUT"):
            if method != request.method and self.route(method, request.path) is not None:
                raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}")
        raise NotFound(f"no such endpoint: {request.method} {request.path}")

    async def _health(self) -> Reply:
        redis_ok = await self.sink.ping()
        accepting, reason = redis_ok, None if redis_ok else "Redis is unreachable"
        if redis_ok:
            try:
                await self.sink.check_backlog()
            except Problem as exc:
                accepting, reason = False, exc.message
        report = {"ok": accepting, "redis": {"ok": redis_ok}, "reason": reason}
        return Reply(200 if accepting else 503, orjson.dumps(report))


async def _collect_garbage() -> None:
    """The youngest generation every second (what one second of requests left in cycles:
    uvicorn's request objects and asyncio's tasks are), older ones every 10 and 60 s."""
    ticks = 0
    while True:
        await asyncio.sleep(1.0)
        ticks += 1
        gc.collect(2 if ticks % 60 == 0 else 1 if ticks % 10 == 0 else 0)


def _length(headers: dict[str, str]) -> int | None:
    value = headers.get("content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


async def _respond(send: Send, reply: Reply, method: str) -> None:
    payload = b"" if method == "HEAD" or reply.status in (204, 304) else reply.body
    headers = [(b"content-type", reply.content_type.encode())]
    if reply.status != 204:
        headers.append((b"content-length", b"%d" % len(reply.body)))
    headers.extend(reply.headers)
    if not any(name == b"x-elastic-product" for name, _ in reply.headers):
        # Elasticsearch clients check this header on every answer, even a 404 of a path this
        # shim does not serve; it is harmless to the others.
        headers.append(elastic.PRODUCT_HEADER)
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def from_env() -> ReceiverApp:
    """An app from LOGS_* settings, for running under another ASGI server (bench/receive.py
    compares granian with uvicorn this way): `granian --interface asgi --factory
    ingest.receive.app:from_env`."""
    from ingest import config
    from ingest.redis_conn import resolve_url

    settings = config.load().settings
    return ReceiverApp(settings, resolve_url(settings))
