"""Request bodies the shippers send (OTLP protobuf/JSON, Elasticsearch `_bulk`), the stream
entries the receiver makes of them, and the ceiling: how fast this process alone can XADD
those entries (bench/receive.py)."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import orjson
import redis

from ingest.generate import entries

TOKEN = "bench-token"
BATCH = 1000
"""Records per request; bench/receive.py --batch sets it."""


# -- request bodies -----------------------------------------------------------------------------


def _docs(n: int, seed: int) -> list[dict[str, Any]]:
    return [orjson.loads(e["data"]) for e in entries(n, hours=1, seed=seed, shape="json")]


def otlp_request(docs: list[dict[str, Any]]) -> Any:
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    from ingest.receive.entries import ts_from_ns  # noqa: F401 - same package as the receiver
    from ingest.records import parse_ts

    severity = {"DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17}
    request = logs_service_pb2.ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.add(
        key="service.name", value=AnyValue(string_value=docs[0]["service"])
    )
    resource_logs.resource.attributes.add(
        key="host.name", value=AnyValue(string_value=docs[0]["host"])
    )
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "bench"
    for doc in docs:
        record = scope_logs.log_records.add(
            time_unix_nano=parse_ts(doc["ts"]) * 1000,  # type: ignore[operator]
            severity_number=severity.get(doc["level"], 9),
            severity_text=doc["level"],
            trace_id=bytes.fromhex(doc["trace_id"].rjust(32, "0")),
            span_id=bytes.fromhex(doc["trace_id"][:16].rjust(16, "0")),
        )
        record.body.string_value = doc["message"]
        record.attributes.add(key="latency_ms", value=AnyValue(double_value=doc["latency_ms"]))
        if "user_id" in doc:
            record.attributes.add(key="user_id", value=AnyValue(int_value=doc["user_id"]))
        record.attributes.add(key="http.route", value=AnyValue(string_value="/api/v1/items"))
    return request


def bodies(fmt: str, batches: int) -> list[tuple[str, str, bytes]]:
    """(path, content type, body) per batch of 1,000 records."""
    from google.protobuf import json_format

    out = []
    for b in range(batches):
        docs = _docs(BATCH, seed=b)
        if fmt == "bulk":
            lines = []
            for doc in docs:
                lines.append(b'{"index":{"_index":"logs-bench"}}')
                lines.append(orjson.dumps({"@timestamp": doc.pop("ts"), **doc}))
            out.append(("/_bulk", "application/x-ndjson", b"\n".join(lines) + b"\n"))
            continue
        request = otlp_request(docs)
        if fmt == "otlp-proto":
            out.append(("/v1/logs", "application/x-protobuf", request.SerializeToString()))
        else:
            doc = json_format.MessageToDict(request, use_integers_for_enums=True)
            for record in doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"]:
                import base64

                record["traceId"] = base64.b64decode(record["traceId"]).hex()
                record["spanId"] = base64.b64decode(record["spanId"]).hex()
            out.append(("/v1/logs", "application/json", orjson.dumps(doc)))
    return out


def stream_entries(path: str, ctype: str, body: bytes) -> list[bytes]:
    """The entries the receiver makes of one request, computed with its own code."""
    from ingest.receive import elastic, otlp
    from ingest.receive.http import Context, Limits, Request

    class _Sink:
        docs: list[bytes] = []

        async def write(self, docs: list[bytes]) -> list[bytes]:
            self.docs = list(docs)
            return [b"0-%d" % i for i in range(len(docs))]

    sink = _Sink()
    ctx = Context(sink, Limits(1 << 30, 1 << 30, 1 << 20, "8.17.0"))  # type: ignore[arg-type]
    request = Request("POST", path, b"", {"content-type": ctype}, "-", body)
    handler = elastic.bulk if path == "/_bulk" else otlp.export
    asyncio.run(handler(request, ctx))
    return sink.docs


# -- the ceiling --------------------------------------------------------------------------------


def ceiling_redispy(port: int, stream: str, batches: list[list[bytes]]) -> float:
    client = redis.Redis(port=port)
    client.delete(stream)
    started = time.perf_counter()
    for docs in batches:
        pipe = client.pipeline(transaction=False)
        for doc in docs:
            pipe.xadd(stream, {"data": doc})
        pipe.execute()
    return sum(map(len, batches)) / (time.perf_counter() - started)


def ceiling_raw(port: int, stream: str, batches: list[list[bytes]]) -> tuple[float, float]:
    """Hand-packed XADDs (1,000 per round trip), replies read by hiredis: the fastest this
    process can hand entries to Redis. Records/s and this process's CPU µs per record."""
    import hiredis

    redis.Redis(port=port).delete(stream)
    sock = socket.create_connection(("127.0.0.1", port))
    head = b"*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$4\r\ndata\r\n" % (
        len(stream),
        stream.encode(),
    )
    reader = hiredis.Reader()
    cpu = time.process_time()
    started = time.perf_counter()
    for docs in batches:
        sock.sendall(b"".join(head + b"$%d\r\n%s\r\n" % (len(d), d) for d in docs))
        left = len(docs)
        while left:
            reader.feed(sock.recv(1 << 20))
            while left and reader.gets() is not False:
                left -= 1
    elapsed = time.perf_counter() - started
    total = sum(map(len, batches))
    sock.close()
    return total / elapsed, (time.process_time() - cpu) / total * 1e6
