"""OTLP/HTTP logs: `POST /v1/logs`, protobuf or JSON, answered in the request's own encoding.

Records map to documents through `ingest.formats.otlp`, the one OpenTelemetry mapping the
stream decoder uses too. Protobuf messages are turned into the dicts that mapping reads by field
access: 3-4 µs per record, against ~20 µs through `json_format.MessageToDict` (bench/receive.py
--profile, 1,000 records with 3 attributes). Records with nothing to store (no body, attribute
or event name) or larger than `max_entry_bytes` are refused in `partial_success`, which clients
do not retry; an undecodable body is a 400 with a `google.rpc.Status`.
"""

from __future__ import annotations

import base64
import operator
from collections.abc import Iterator
from typing import Any

import orjson

from ingest.formats import otlp as mapping
from ingest.receive import entries
from ingest.receive.http import Context, Reply, Request, Route
from ingest.receive.problems import BadRequest, Problem, TooLarge, UnsupportedMedia

PROTOCOL = "otlp"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"

# gRPC status codes for the google.rpc.Status of an error answer, by HTTP status.
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 413: 3, 415: 3, 429: 8, 503: 14}


def _is_json(request: Request) -> bool:
    return "json" in request.header("content-type").lower()


def render(problem: Problem, request: Request) -> Reply:
    code = _GRPC_CODES.get(problem.status, 2)
    if _is_json(request):
        body = orjson.dumps({"code": code, "message": problem.message})
        return Reply(problem.status, body, JSON)
    from google.rpc import status_pb2

    body = status_pb2.Status(code=code, message=problem.message).SerializeToString()
    return Reply(problem.status, body, PROTOBUF)


async def export(request: Request, ctx: Context) -> Reply:
    ctype = request.header("content-type").split(";")[0].strip().lower()
    if ctype in ("application/json",):
        docs, rejected = _json_docs(request.body, ctx)
    elif ctype in ("application/x-protobuf", "application/protobuf", ""):
        docs, rejected = _protobuf_docs(request.body, ctx)
    else:
        raise UnsupportedMedia(
            f"Content-Type {ctype!r}: use application/x-protobuf or application/json"
        )
    if docs:
        await ctx.sink.write(docs)
    return _success(request, rejected, len(docs))


def _success(request: Request, rejected: int, accepted: int) -> Reply:
    message = (
        f"{rejected} log record(s) refused: no body, attributes or event name, or larger than "
        "max_entry_bytes, or nested deeper than max_json_depth"
    )
    if _is_json(request):
        partial = (
            {"partialSuccess": {"rejectedLogRecords": str(rejected), "errorMessage": message}}
            if rejected
            else {}
        )
        return Reply(200, orjson.dumps(partial), JSON, records=accepted)
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

    response = logs_service_pb2.ExportLogsServiceResponse()
    if rejected:
        response.partial_success.rejected_log_records = rejected
        response.partial_success.error_message = message
    return Reply(200, response.SerializeToString(), PROTOBUF, records=accepted)


def _keep(docs: list[bytes], doc: dict[str, Any], ctx: Context) -> bool:
    try:
        data = entries.dumps(doc)
    except BadRequest:  # nested past what JSON text can hold here: refused, not stored
        return False
    if len(data) + 10 > ctx.limits.max_entry_bytes or entries.too_deep(
        data, ctx.limits.max_json_depth
    ):
        return False
    docs.append(data)
    return True


def _check_count(count: int, ctx: Context) -> None:
    if count > ctx.limits.max_records:
        raise TooLarge(
            f"request holds {count} log records; receive_max_records is {ctx.limits.max_records}"
        )


# -- JSON -------------------------------------------------------------------------------------


def _json_docs(body: bytes, ctx: Context) -> tuple[list[bytes], int]:
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not OTLP/JSON: {exc}") from None
    if not isinstance(request, dict):
        raise BadRequest("body is not OTLP/JSON: expected an ExportLogsServiceRequest object")
    try:
        records = list(_json_records(request))
        _check_count(len(records), ctx)
        docs: list[bytes] = []
        rejected = 0
        for record, doc in zip(records, mapping.request_docs(request), strict=True):
            content = _has_content(
                record.get("body"), record.get("attributes"), record.get("eventName")
            )
            if not (content and _keep(docs, doc, ctx)):
                rejected += 1
    except (TypeError, AttributeError) as exc:
        # A list where an object belongs, a number where a list does: not OTLP/JSON.
        raise BadRequest(f"body is not OTLP/JSON: {exc}") from None
    return docs, rejected


def _json_records(request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The records `mapping.request_docs` maps, in its order (it skips what is not an object)."""
    for resource_logs in request.get("resourceLogs") or []:
        if not isinstance(resource_logs, dict):
            continue
        for scope_logs in resource_logs.get("scopeLogs") or []:
            if not isinstance(scope_logs, dict):
                continue
            for record in scope_logs.get("logRecords") or []:
                if isinstance(record, dict):
                    yield record


def _has_content(body: Any, attributes: Any, event_name: Any) -> bool:
    return bool(mapping.any_value(body) not in (None, "") or attributes or event_name)


# -- protobuf -----------------------------------------------------------------------------------


def _protobuf_docs(body: bytes, ctx: Context) -> tuple[list[bytes], int]:
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
    from opentelemetry.proto.logs.v1 import logs_pb2

    try:
        request = logs_service_pb2.ExportLogsServiceRequest.FromString(body)
    except DecodeError as exc:
        raise BadRequest(f"body is not an OTLP ExportLogsServiceRequest: {exc}") from None
    _check_count(
        sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs), ctx
    )
    docs: list[bytes] = []
    rejected = 0
    record_doc = mapping.record_doc
    max_entry = ctx.limits.max_entry_bytes
    max_depth = ctx.limits.max_json_depth
    has_event_name = "event_name" in logs_pb2.LogRecord.DESCRIPTOR.fields_by_name
    for resource_logs in request.resource_logs:
        resource = {kv.key: plain(kv.value) for kv in resource_logs.resource.attributes}
        for scope_logs in resource_logs.scope_logs:
            s = scope_logs.scope
            scope = mapping.scope_attrs(
                {
                    "name": s.name,
                    "version": s.version,
                    "attributes": [
                        {"key": kv.key, "value": json_value(kv.value)} for kv in s.attributes
                    ],
                }
            )
            for r in scope_logs.log_records:
                record_body = r.body
                body_kind = record_body.WhichOneof("value")
                attributes = r.attributes
                event_name = r.event_name if has_event_name else ""
                if body_kind == "string_value":
                    message: Any = record_body.string_value
                    has_body = message != ""
                else:
                    has_body = body_kind is not None
                    # Other bodies in their OTLP/JSON form, read by the mapping exactly as in a
                    # JSON request.
                    message = json_value(record_body)
                if not (has_body or attributes or event_name):
                    rejected += 1
                    continue
                plain_attrs = {}
                for kv in attributes:
                    value = kv.value
                    getter = _SCALARS.get(value.WhichOneof("value"))  # type: ignore[arg-type]
                    plain_attrs[kv.key] = getter(value) if getter else plain(value)
                record = {
                    "timeUnixNano": r.time_unix_nano,
                    "observedTimeUnixNano": r.observed_time_unix_nano,
                    "severityNumber": r.severity_number,
                    "severityText": r.severity_text,
                    "body": message,
                    # Already plain: the mapping takes attributes as a list of key/values or as
                    # a mapping (the latter skips building ~3 dicts per attribute).
                    "attributes": plain_attrs,
                    "traceId": r.trace_id.hex(),
                    "spanId": r.span_id.hex(),
                    "flags": r.flags,
                    "eventName": event_name,
                }
                try:
                    data = entries.dumps(record_doc(record, resource, scope))
                except BadRequest:
                    rejected += 1
                    continue
                if len(data) + 10 > max_entry or entries.too_deep(data, max_depth):
                    rejected += 1
                else:
                    docs.append(data)
    return docs, rejected


_SCALARS = {
    kind: operator.attrgetter(kind)
    for kind in ("string_value", "int_value", "double_value", "bool_value")
}


def plain(value: Any) -> Any:
    """A protobuf AnyValue -> the plain value `mapping.any_value` reads from its JSON form."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if kind == "array_value":
        return [plain(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: plain(kv.value) for kv in value.kvlist_value.values}
    return None


def json_value(value: Any) -> dict[str, Any]:
    """A protobuf AnyValue -> its OTLP/JSON form (`{"stringValue": ...}`)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return {}
    if kind == "array_value":
        return {"arrayValue": {"values": [json_value(v) for v in value.array_value.values]}}
    if kind == "kvlist_value":
        pairs = [{"key": kv.key, "value": json_value(kv.value)} for kv in value.kvlist_value.values]
        return {"kvlistValue": {"values": pairs}}
    if kind == "int_value":
        return {"intValue": str(value.int_value)}
    if kind == "bytes_value":
        return {"bytesValue": base64.b64encode(value.bytes_value).decode()}
    camel = {
        "string_value": "stringValue",
        "double_value": "doubleValue",
        "bool_value": "boolValue",
    }
    return {camel[kind]: getattr(value, kind)}


ROUTES = {("POST", "/v1/logs"): Route(PROTOCOL, export, render)}
