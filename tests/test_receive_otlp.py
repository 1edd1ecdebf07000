"""`logs receive`, OTLP/HTTP: the OpenTelemetry Python SDK's own exporter (protobuf, gzip) lands
records with the right columns exactly once; protobuf and JSON requests of the same records give
the same entries (one mapping); bad bodies, tokens and empty records get OTLP's own answers."""

from __future__ import annotations

import base64
import gzip
import json
import logging
from typing import Any

import orjson
import pytest
import redis
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from tests.helpers import RedisProc
from tests.receiver import TOKEN, Receiver, attrs, post, rows

# The SDK's own LoggingHandler is what its docs show; it warns that it will move to a contrib
# package.
pytestmark = pytest.mark.filterwarnings("ignore:.*LoggingHandler.*:DeprecationWarning")


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_the_sdk_exporter_lands_every_record_once_with_its_columns(
    receiver: Receiver, redis_proc: RedisProc, compression: str
) -> None:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = LoggerProvider(
        resource=Resource.create({"service.name": "checkout", "host.name": "web-7"})
    )
    exporter = OTLPLogExporter(
        endpoint=receiver.url("otlp", "/v1/logs"),
        headers={"Authorization": f"Bearer {TOKEN}"},
        compression=Compression.Gzip if compression == "gzip" else Compression.NoCompression,
    )
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    captured = Captured()
    logger = logging.getLogger(f"shop.payments.{compression}")
    logger.handlers[:] = [LoggingHandler(level=logging.DEBUG, logger_provider=provider), captured]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("charge") as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
        logger.error("payment of order %s failed", 42, extra={"order_id": 42, "amount": 9.5})
    for i in range(300):
        logger.warning("retrying %d", i)
    assert provider.force_flush(30_000)
    provider.shutdown()

    got = rows(redis_proc.client(), receiver.stream)
    assert len(got) == 301
    assert [r.message for r in got] == [rec.getMessage() for rec in captured.records]
    for row, rec in zip(got, captured.records, strict=True):
        assert row.ts == int(rec.created * 1e9) // 1000
        assert (row.service, row.host) == ("checkout", "web-7")
    first = got[0]
    assert first.level == "ERROR"
    assert first.trace_id == trace_id
    extra = attrs(first)
    assert extra["order_id"] == 42 and extra["amount"] == 9.5
    assert extra["scope.name"] == logger.name
    assert len(extra["span_id"]) == 16
    assert {r.level for r in got[1:]} == {"WARN"}
    assert all(r.trace_id is None for r in got[1:])


def _any(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[_any(v) for v in value]))
    if isinstance(value, dict):
        pairs = [KeyValue(key=k, value=_any(v)) for k, v in value.items()]
        return AnyValue(kvlist_value=KeyValueList(values=pairs))
    if value is None:
        return AnyValue()
    return AnyValue(string_value=value)


def _request() -> logs_service_pb2.ExportLogsServiceRequest:
    request = logs_service_pb2.ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    for key, value in {"service.name": "api", "host.name": "h1", "deployment": "prod"}.items():
        resource_logs.resource.attributes.add(key=key, value=_any(value))
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "io.app"
    scope_logs.scope.version = "1.2"
    scope_logs.scope.attributes.add(key="lib", value=_any("x"))
    bodies: list[Any] = ["text body", 7, 2.5, True, b"\x00\xff", ["a", 1], {"k": {"n": [1]}}]
    for i, body in enumerate(bodies):
        record = scope_logs.log_records.add(
            time_unix_nano=1_795_168_800_123_456_789 + i * 1000,
            severity_number=9 + i,
            severity_text="" if i % 2 else "warning",
            trace_id=bytes(range(16)),
            span_id=bytes(range(8)),
            flags=1,
        )
        record.body.CopyFrom(_any(body))
        values: dict[str, Any] = {
            "s": "v",
            "i": -5,
            "d": 0.25,
            "b": False,
            "raw": b"\x01",
            "list": [1, "two", [3]],
            "map": {"x": 1},
            "empty": None,
            "ts": "an attribute named like a column",
        }
        for key, value in values.items():
            record.attributes.add(key=key, value=_any(value))
    # Only an observed time: ts falls back to it.
    scope_logs.log_records.add(observed_time_unix_nano=1_795_168_801_000_000_000).body.CopyFrom(
        _any("observed only")
    )
    return request


def _as_otlp_json(request: logs_service_pb2.ExportLogsServiceRequest) -> bytes:
    """The OTLP/JSON encoding: protobuf's JSON mapping, but enums as integers and trace and span
    ids in hex."""
    doc = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource_logs in doc["resourceLogs"]:
        for scope_logs in resource_logs["scopeLogs"]:
            for record in scope_logs["logRecords"]:
                for key in ("traceId", "spanId"):
                    if key in record:
                        record[key] = base64.b64decode(record[key]).hex()
    return orjson.dumps(doc)


def test_protobuf_and_json_requests_give_the_same_entries(
    receiver: Receiver, redis_proc: RedisProc
) -> None:
    request = _request()
    status, headers, body = post(
        receiver.url("otlp", "/v1/logs"),
        request.SerializeToString(),
        {"Content-Type": "application/x-protobuf"},
    )
    assert status == 200 and headers["content-type"] == "application/x-protobuf"
    response = logs_service_pb2.ExportLogsServiceResponse.FromString(body)
    assert response.partial_success.rejected_log_records == 0
    status, headers, body = post(
        receiver.url("otlp", "/v1/logs"),
        gzip.compress(_as_otlp_json(request)),
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert status == 200 and headers["content-type"] == "application/json"
    assert orjson.loads(body) == {}

    client: redis.Redis = redis_proc.client()
    got = rows(client, receiver.stream)
    assert len(got) == 16
    from_protobuf, from_json = got[:8], got[8:]
    strip = [r[:-2] for r in from_protobuf]  # all but stream_id and ingested_at
    assert strip == [r[:-2] for r in from_json]

    first = from_protobuf[0]
    assert (first.level, first.service, first.host) == ("WARN", "api", "h1")
    assert first.message == "text body"
    assert first.trace_id == bytes(range(16)).hex()
    extra = attrs(first)
    assert extra["list"] == [1, "two", [3]] and extra["map"] == {"x": 1}
    assert extra["raw"] == "AQ==" and extra["empty"] is None
    assert extra["attr.ts"] == "an attribute named like a column"
    assert extra["scope.name"] == "io.app" and extra["lib"] == "x" and extra["deployment"] == "prod"
    assert [r.message for r in from_protobuf[1:7]] == [
        "7",
        "2.5",
        "true",
        "AP8=",
        '["a",1]',
        '{"k":{"n":[1]}}',
    ]
    assert from_protobuf[7].message == "observed only"
    assert from_protobuf[7].ts == 1_795_168_801_000_000


def test_records_without_anything_to_store_are_refused_in_partial_success(
    receiver: Receiver, redis_proc: RedisProc
) -> None:
    request = logs_service_pb2.ExportLogsServiceRequest()
    records = request.resource_logs.add().scope_logs.add().log_records
    records.add(time_unix_nano=1_795_168_800_000_000_000).body.string_value = "kept"
    records.add(time_unix_nano=1_795_168_800_000_000_000)  # no body, no attributes
    status, _, body = post(
        receiver.url("otlp", "/v1/logs"),
        request.SerializeToString(),
        {"Content-Type": "application/x-protobuf"},
    )
    assert status == 200
    partial = logs_service_pb2.ExportLogsServiceResponse.FromString(body).partial_success
    assert partial.rejected_log_records == 1 and "refused" in partial.error_message
    assert [r.message for r in rows(redis_proc.client(), receiver.stream)] == ["kept"]


@pytest.mark.parametrize(
    ("ctype", "payload"),
    [
        ("application/x-protobuf", b"\xff\xff\xff garbage"),
        # A body string of invalid UTF-8: the protobuf runtime refuses it.
        ("application/x-protobuf", b"\n\x0c\x12\n\x12\x08*\x06\n\x04AB\xff\xfe"),
        ("application/json", b'{"resourceLogs": [ not json'),
        ("application/json", b"\xff\xfe invalid utf-8"),
    ],
)
def test_undecodable_bodies_get_400_with_a_google_rpc_status(
    receiver: Receiver, redis_proc: RedisProc, ctype: str, payload: bytes
) -> None:
    status, headers, body = post(receiver.url("otlp", "/v1/logs"), payload, {"Content-Type": ctype})
    assert status == 400
    if ctype == "application/json":
        answer = orjson.loads(body)
        assert answer["code"] == 3 and answer["message"]
    else:
        answer = status_pb2.Status.FromString(body)
        assert answer.code == 3 and "ExportLogsServiceRequest" in answer.message
    assert rows(redis_proc.client(), receiver.stream) == []
    # The server keeps serving.
    empty = b"{}" if ctype == "application/json" else b""
    assert post(receiver.url("otlp", "/v1/logs"), empty, {"Content-Type": ctype})[0] == 200


@pytest.mark.parametrize(
    ("authorization", "status", "code"),
    [(None, 401, 16), ("Bearer wrong", 403, 7), ("Digest abc", 401, 16)],
)
def test_tokens_are_checked_in_otlp_form(
    receiver: Receiver, redis_proc: RedisProc, authorization: str | None, status: int, code: int
) -> None:
    headers = {"Content-Type": "application/x-protobuf"}
    if authorization:
        headers["Authorization"] = authorization
    got, _, body = post(
        receiver.url("otlp", "/v1/logs"), _request().SerializeToString(), headers, token=None
    )
    assert got == status
    assert status_pb2.Status.FromString(body).code == code
    assert rows(redis_proc.client(), receiver.stream) == []


def test_unsupported_content_types_are_415(receiver: Receiver) -> None:
    status, _, body = post(receiver.url("otlp", "/v1/logs"), b"x", {"Content-Type": "text/csv"})
    assert status == 415
    assert "application/x-protobuf" in status_pb2.Status.FromString(body).message


def test_a_record_nested_past_max_json_depth_is_refused_in_partial_success(
    receiver: Receiver, redis_proc: RedisProc
) -> None:
    value: dict[str, Any] = {"stringValue": "leaf"}
    for _ in range(70):
        value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    records = [
        {"body": {"stringValue": "deep"}, "attributes": [{"key": "nest", "value": value}]},
        {"body": {"stringValue": "flat"}},
    ]
    request = {"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}
    status, _, body = post(
        receiver.url("otlp", "/v1/logs"),
        json.dumps(request).encode(),  # 280 levels of JSON: past what orjson writes
        {"Content-Type": "application/json"},
    )
    assert status == 200
    assert orjson.loads(body)["partialSuccess"]["rejectedLogRecords"] == "1"
    assert [r.message for r in rows(redis_proc.client(), receiver.stream)] == ["flat"]
