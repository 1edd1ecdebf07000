"""Splunk HTTP Event Collector, at the root of its port (Docker's `splunk` logging driver
refuses a URL with a path and appends `/services/collector/event/1.0` itself).

`/services/collector`, `/event`, `/event/1.0`: concatenated JSON envelopes (Docker's driver
writes them back to back, no separator) with `time` in epoch seconds (a number or its text),
`host`, `source`, `sourcetype`, `index`, `event` (text or object) and `fields`. `/raw`: lines,
metadata in the query string. A text event (or Docker's line) is read by the text formats: the
line's own time and level win over the envelope's. Answers in HEC's own JSON and codes; a
request with one bad event is refused whole (`invalid-event-number` names it), nothing of it
written.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from typing import Any

import orjson

from ingest.receive import entries
from ingest.receive.http import Context, Reply, Request, Route
from ingest.receive.problems import BadRequest, Problem, TooLarge, Unauthorized

PROTOCOL = "splunk"
SUCCESS = b'{"text":"Success","code":0}'
_ENVELOPE_KEYS = ("time", "host", "source", "sourcetype", "index")
_DOCKER_EVENT = frozenset(("line", "source", "tag", "attrs"))
_BOUNDARY = re.compile(rb"}\s*{")


class HecError(BadRequest):
    def __init__(self, message: str, code: int, event_number: int | None = None) -> None:
        super().__init__(message, event_number)
        self.code = code


def render(problem: Problem, request: Request) -> Reply:
    status = problem.status
    if isinstance(problem, HecError):
        body: dict[str, Any] = {"text": problem.message, "code": problem.code}
        if problem.event_number is not None:
            body["invalid-event-number"] = problem.event_number
    elif isinstance(problem, Unauthorized):
        text, code = (
            ("Token is required", 2) if problem.kind == "missing" else ("Invalid authorization", 3)
        )
        body = {"text": text, "code": code}
    elif status == 403:
        body = {"text": "Invalid token", "code": 4}
    elif problem.retryable:
        # HEC has one retryable answer for every transient condition.
        status = 503
        body = {"text": f"Server is busy: {problem.message}", "code": 9}
    elif status == 404:
        body = {"text": "The requested URL was not found on this server.", "code": 404}
    else:
        body = {"text": problem.message, "code": 6}
    return Reply(status, orjson.dumps(body), "application/json")


async def options(request: Request, ctx: Context) -> Reply:
    return Reply(200, b"", "text/plain", [(b"allow", b"OPTIONS, POST, GET")])


async def health(request: Request, ctx: Context) -> Reply:
    try:
        await ctx.sink.check_backlog()
    except Problem:
        return Reply(503, b'{"text":"HEC is unhealthy, queues are full","code":18}')
    return Reply(200, b'{"text":"HEC is healthy","code":17}')


def _envelopes(body: bytes) -> list[Any]:
    """Concatenated JSON values. Fast path: split where one object ends and the next begins
    and read each piece with orjson; a split that fell inside a string leaves a piece that is
    not JSON, and then the whole body is read by the stdlib decoder, value by value."""
    pieces = _BOUNDARY.split(body.strip())
    if len(pieces) > 1:
        pieces = [pieces[0] + b"}"] + [b"{" + p + b"}" for p in pieces[1:-1]] + [b"{" + pieces[-1]]
    try:
        return [orjson.loads(p) for p in pieces]
    except orjson.JSONDecodeError:
        pass
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HecError(f"Invalid data format: invalid UTF-8 at byte {exc.start}", 6) from None
    decoder = json.JSONDecoder()
    values: list[Any] = []
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return values
        try:
            value, at = decoder.raw_decode(text, at)
        except (ValueError, RecursionError):
            raise HecError("Invalid data format", 6, len(values)) from None
        values.append(value)


def _event_doc(envelope: Any, number: int) -> dict[str, Any]:
    if not isinstance(envelope, dict):
        raise HecError("Invalid data format", 6, number)
    if "event" not in envelope:
        raise HecError("Event field is required", 12, number)
    event = envelope["event"]
    if event is None or event == "" or event == {}:
        raise HecError("Event field cannot be blank", 13, number)
    line: str | None = None
    """A text line the event holds (the event itself, or the line of Docker's driver)."""
    if isinstance(event, dict):
        docker = _DOCKER_EVENT.issuperset(event) and "line" in event
        doc = _docker(event) if docker else dict(event)
        if docker and isinstance(event["line"], str):
            line = event["line"]
    elif isinstance(event, str):
        doc, line = {"message": event}, event
    else:
        doc = {"message": orjson.dumps(event).decode()}
    meta: dict[str, Any] = {key: envelope.get(key) for key in _ENVELOPE_KEYS[1:]}
    meta["ts"] = entries.ts_from_seconds(envelope.get("time"))
    fields = envelope.get("fields")
    if isinstance(fields, dict):
        meta.update(fields)
    doc = entries.with_meta(doc, meta)
    if line is not None:  # what the line says of itself wins: its own time, level, host...
        doc = entries.with_line(doc, line, time.time_ns() // 1000)
    return doc


def _docker(event: dict[str, Any]) -> dict[str, Any]:
    """Docker's splunk driver: `{"line": text or the line's own JSON, "source": "stdout",
    "tag": ..., "attrs": {labels, env}}` -> the line's fields (or the line as `message`), the
    output stream as `stream`, the tag (the container by default) as `container`."""
    line = event["line"]
    doc: dict[str, Any] = dict(line) if isinstance(line, dict) else {"message": line}
    meta: dict[str, Any] = {"stream": event.get("source"), "container": event.get("tag")}
    attrs = event.get("attrs")
    if isinstance(attrs, dict):
        meta.update(attrs)
    return entries.with_meta(doc, meta)


_ACK_IDS = itertools.count()


def _success(request: Request, records: int) -> Reply:
    """HEC's success; with an ackId when the client names a channel (indexer acknowledgement,
    which Vector and the Collector turn on by default)."""
    channel = request.header("x-splunk-request-channel") or request.query.get("channel")
    if not channel:
        return Reply(200, SUCCESS, records=records)
    body = orjson.dumps({"text": "Success", "code": 0, "ackId": next(_ACK_IDS)})
    return Reply(200, body, records=records)


async def ack(request: Request, ctx: Context) -> Reply:
    """`/services/collector/ack`: every id we handed out is acknowledged already, since the
    answer that carried it came only after Redis had taken the events."""
    try:
        asked = orjson.loads(request.body or b"{}").get("acks", [])
        acks = {str(int(i)): True for i in asked}
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        raise HecError("Invalid data format", 6) from None
    return Reply(200, orjson.dumps({"acks": acks}))


async def event(request: Request, ctx: Context) -> Reply:
    if not request.body.strip():
        raise HecError("No data", 5)
    envelopes = _envelopes(request.body)
    if len(envelopes) > ctx.limits.max_records:
        raise TooLarge(
            f"request holds {len(envelopes)} events; receive_max_records is "
            f"{ctx.limits.max_records}"
        )
    docs = []
    for number, envelope in enumerate(envelopes):
        data = entries.dumps(_event_doc(envelope, number))
        if len(data) + 10 > ctx.limits.max_entry_bytes:
            raise HecError(
                f"Event of {len(data)} bytes is over max_entry_bytes "
                f"({ctx.limits.max_entry_bytes})",
                6,
                number,
            )
        if entries.too_deep(data, ctx.limits.max_json_depth):
            raise HecError(
                f"Event nested deeper than max_json_depth ({ctx.limits.max_json_depth})",
                6,
                number,
            )
        docs.append(data)
    await ctx.sink.write(docs)
    return _success(request, len(docs))


async def raw(request: Request, ctx: Context) -> Reply:
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HecError(f"Invalid data format: invalid UTF-8 at byte {exc.start}", 6) from None
    lines = [line.rstrip("\r") for line in text.split("\n") if line.strip()]
    if not lines:
        raise HecError("No data", 5)
    if len(lines) > ctx.limits.max_records:
        raise TooLarge(
            f"request holds {len(lines)} lines; receive_max_records is {ctx.limits.max_records}"
        )
    query = request.query
    meta: dict[str, Any] = {key: query[key] for key in _ENVELOPE_KEYS[1:] if query.get(key)}
    if "time" in query:
        meta["ts"] = entries.ts_from_seconds(query["time"])
    if meta:
        now_us = time.time_ns() // 1000
        batch: list[entries.Entry] = [
            entries.dumps(
                entries.with_line(entries.with_meta({"message": line}, meta), line, now_us)
            )
            for line in lines
        ]
    else:
        # Nothing known but the line: the stream decoder's text formats read it.
        batch = [entries.text_entry(line) for line in lines]
    await ctx.sink.write(batch)
    return _success(request, len(batch))


_EVENT_PATHS = frozenset(
    ("/services/collector", "/services/collector/event", "/services/collector/event/1.0")
)
_RAW_PATHS = frozenset(("/services/collector/raw", "/services/collector/raw/1.0"))
_ACK_PATHS = frozenset(("/services/collector/ack", "/services/collector/ack/1.0"))
_HEALTH_PATHS = frozenset(("/services/collector/health", "/services/collector/health/1.0"))


def route(method: str, path: str) -> Route | None:
    path = path.rstrip("/") or "/"
    if not path.startswith("/services/collector"):
        return None
    if method == "OPTIONS":
        return Route(PROTOCOL, options, render, writes=False, public=True)
    if path in _HEALTH_PATHS and method in ("GET", "HEAD"):
        return Route(PROTOCOL, health, render, writes=False, public=True)
    if path in _EVENT_PATHS and method == "POST":
        return Route(PROTOCOL, event, render)
    if path in _RAW_PATHS and method == "POST":
        return Route(PROTOCOL, raw, render)
    if path in _ACK_PATHS and method == "POST":
        return Route(PROTOCOL, ack, render, backpressure=False)
    return None
