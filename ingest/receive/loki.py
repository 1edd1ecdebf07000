"""Loki push: `POST /loki/api/v1/push`, JSON (gzip optional) or protobuf in a snappy block.

Each entry becomes a canonical document: its time, the line as `message`, the stream's labels
and the entry's structured metadata as fields, `X-Scope-OrgID` as `tenant`; a line a text
format reads (syslog, access logs, logfmt...) adds what it says of itself, its own time first.
Which label is the service or the host is left to the stream decoder's aliases
(`service_name`, `app`, `container`, `host`, ...), with one Loki convention added: a stream
labelled only with `job` (Promtail's and Alloy's scrape configs) takes it as its service.
Success is 204; errors are plain text, as Loki answers.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import orjson

from ingest.receive import entries
from ingest.receive.body import snappy_block
from ingest.receive.http import Context, Reply, Request, Route
from ingest.receive.problems import BadRequest, Problem, TooLarge
from ingest.records import ALIASES, CONDITIONAL

PROTOCOL = "loki"
_SERVICE_LABELS = frozenset(ALIASES["service"]) - CONDITIONAL.keys()
"""Labels the stream decoder reads as the service whatever else a stream has (records.ALIASES)."""
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_.]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|})')


def render(problem: Problem, request: Request) -> Reply:
    reply = Reply(problem.status, problem.message.encode() + b"\n", "text/plain; charset=utf-8")
    return reply


@functools.cache
def _push_request() -> Any:
    """logproto.PushRequest, declared here from Loki's push.proto (field numbers and types) and
    built by the protobuf runtime; Loki publishes no Python package of its messages."""
    from google.protobuf import (
        descriptor_pb2,
        descriptor_pool,
        message_factory,
        timestamp_pb2,  # noqa: F401 - registers timestamp.proto
    )

    f = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="loglake/loki_push.proto",
        package="logproto",
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"],
    )

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> None:
        m = proto.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            field = m.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name

    one, many = f.LABEL_OPTIONAL, f.LABEL_REPEATED
    message("PushRequest", ("streams", 1, f.TYPE_MESSAGE, many, ".logproto.StreamAdapter"))
    message(
        "StreamAdapter",
        ("labels", 1, f.TYPE_STRING, one, ""),
        ("entries", 2, f.TYPE_MESSAGE, many, ".logproto.EntryAdapter"),
        ("hash", 3, f.TYPE_UINT64, one, ""),
    )
    message(
        "LabelPairAdapter",
        ("name", 1, f.TYPE_STRING, one, ""),
        ("value", 2, f.TYPE_STRING, one, ""),
    )
    message(
        "EntryAdapter",
        ("timestamp", 1, f.TYPE_MESSAGE, one, ".google.protobuf.Timestamp"),
        ("line", 2, f.TYPE_STRING, one, ""),
        ("structuredMetadata", 3, f.TYPE_MESSAGE, many, ".logproto.LabelPairAdapter"),
    )
    # A pool of our own: no clash with any other `logproto` a process may have loaded.
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    pool.AddSerializedFile(proto.SerializeToString())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("logproto.PushRequest"))


def push_request_class() -> Any:
    """The PushRequest message class (tests build requests with it, as Loki clients do)."""
    return _push_request()


def parse_labels(text: str) -> dict[str, str]:
    """`{job="api", host="a \\"b\\""}` (Prometheus label syntax, Go-quoted values) -> dict."""
    text = text.strip()
    if text in ("", "{}"):
        return {}
    if not text.startswith("{") or not text.endswith("}"):
        raise BadRequest(f'labels {text[:80]!r}: expected {{name="value", ...}}')
    labels: dict[str, str] = {}
    at = 1
    while at < len(text):
        match = _LABEL.match(text, at)
        if match is None:
            raise BadRequest(f"labels {text[:80]!r}: cannot read them at offset {at}")
        name, quoted, end = match.groups()
        try:
            labels[name] = orjson.loads(f'"{quoted}"')
        except orjson.JSONDecodeError:
            raise BadRequest(f"labels {text[:80]!r}: bad escape in {name}") from None
        at = match.end()
        if end == "}":
            break
    return labels


def _doc(
    labels: dict[str, str], ns: int, line: str, metadata: dict[str, str], tenant: str | None
) -> bytes:
    doc: dict[str, Any] = dict(labels)
    doc.update(metadata)
    meta: dict[str, Any] = {"ts": entries.ts_from_ns(ns), "message": line, "tenant": tenant}
    if "job" in labels and not _SERVICE_LABELS.intersection(doc):
        meta["service"] = labels["job"]
    doc = entries.with_line(entries.with_meta(doc, meta), line, ns // 1000)
    return entries.dumps(doc)


def _count(total: int, ctx: Context) -> None:
    if total > ctx.limits.max_records:
        raise TooLarge(
            f"request holds {total} entries; receive_max_records is {ctx.limits.max_records}"
        )


def _from_json(body: bytes, tenant: str | None, ctx: Context) -> list[bytes]:
    try:
        push = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not a Loki push request: {exc}") from None
    streams = push.get("streams") if isinstance(push, dict) else None
    if not isinstance(streams, list):
        raise BadRequest('body is not a Loki push request: expected {"streams": [...]}')
    try:
        _count(sum(len(s.get("values") or []) for s in streams if isinstance(s, dict)), ctx)
    except TypeError:
        raise BadRequest("each stream's values must be a list") from None
    docs = []
    for stream in streams:
        if not isinstance(stream, dict):
            raise BadRequest("each stream must be an object")
        labels = stream.get("stream") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise BadRequest("stream labels must be an object of strings")
        values = stream.get("values") or []
        if not isinstance(values, list):
            raise BadRequest("each stream's values must be a list")
        for value in values:
            if not isinstance(value, list) or len(value) not in (2, 3):
                raise BadRequest('each value must be ["<unix ns>", "<line>"(, {metadata})]')
            ns = value[0]
            try:
                ns = int(ns)
            except (TypeError, ValueError):
                raise BadRequest(f"timestamp {str(ns)[:40]!r} is not unix nanoseconds") from None
            line = value[1]
            if not isinstance(line, str):
                raise BadRequest("each line must be a string")
            metadata = value[2] if len(value) == 3 else {}
            if not isinstance(metadata, dict):
                raise BadRequest("structured metadata must be an object")
            docs.append(_doc(labels, ns, line, metadata, tenant))
    return docs


def _from_protobuf(body: bytes, tenant: str | None, ctx: Context, limit: int) -> list[bytes]:
    from google.protobuf.message import DecodeError

    data = snappy_block(body, limit)
    try:
        push = _push_request().FromString(data)
    except DecodeError as exc:
        raise BadRequest(f"body is not a Loki PushRequest: {exc}") from None
    _count(sum(len(s.entries) for s in push.streams), ctx)
    docs = []
    for stream in push.streams:
        labels = parse_labels(stream.labels)
        for entry in stream.entries:
            ts = entry.timestamp
            metadata = {pair.name: pair.value for pair in entry.structuredMetadata}
            docs.append(
                _doc(labels, ts.seconds * 1_000_000_000 + ts.nanos, entry.line, metadata, tenant)
            )
    return docs


async def push(request: Request, ctx: Context) -> Reply:
    tenant = request.header("x-scope-orgid") or None
    ctype = request.header("content-type").split(";")[0].strip().lower()
    body = request.body
    if ctype == "application/json":
        if request.header("content-encoding").strip().lower() == "snappy":
            body = snappy_block(body, ctx.limits.max_body)
        docs = _from_json(body, tenant, ctx)
    elif "protobuf" not in ctype and body.lstrip()[:1] == b"{":
        # Loki takes every other type as protobuf; a JSON body sent without its type (some
        # scripts) is read as JSON first. A snappy block can start with `{` too (a 123-byte
        # message): if the JSON reading fails, it is read as protobuf.
        try:
            docs = _from_json(body, tenant, ctx)
        except BadRequest:
            docs = _from_protobuf(body, tenant, ctx, ctx.limits.max_body)
    else:
        docs = _from_protobuf(body, tenant, ctx, ctx.limits.max_body)
    for doc in docs:
        if len(doc) + 10 > ctx.limits.max_entry_bytes:
            limit = ctx.limits.max_entry_bytes
            raise BadRequest(f"an entry of {len(doc)} bytes is over max_entry_bytes ({limit})")
    if docs:
        await ctx.sink.write(docs)
    return Reply(204, b"", "text/plain", records=len(docs))


async def ready(request: Request, ctx: Context) -> Reply:
    return Reply(200, b"ready\n", "text/plain")


def route(method: str, path: str) -> Route | None:
    if path in ("/loki/api/v1/push", "/api/prom/push") and method == "POST":
        return Route(PROTOCOL, push, render, own_snappy=True)
    if path == "/ready" and method == "GET":
        return Route(PROTOCOL, ready, render, writes=False, public=True)
    return None
