"""The Elasticsearch `_bulk` shim, with the handshake that real clients make first.

`GET /` names a configurable 8.x version (Filebeat refuses older servers), every answer carries
`X-Elastic-Product: Elasticsearch` (the Go client behind the OpenTelemetry Collector's exporter
refuses a server without it), the template, ILM and license probes of Logstash, Filebeat and
the Collector get empty successes, and rsyslog's `/_cat/health` a green cluster. `POST /_bulk`
and `/{index}/_bulk` take NDJSON action/source pairs: `index` and `create` become entries (the
source passes through, `_index` and `_id` kept beside its fields); other actions and unreadable
documents are per-item errors, in request order, as Elasticsearch reports them. A malformed
action line refuses the whole request.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from ingest.receive import entries
from ingest.receive.http import Context, Reply, Request, Route
from ingest.receive.problems import BadRequest, Problem, TooLarge

PROTOCOL = "elasticsearch"
PRODUCT_HEADER = (b"x-elastic-product", b"Elasticsearch")

_ERROR_TYPES = {
    400: "illegal_argument_exception",
    401: "security_exception",
    403: "security_exception",
    404: "resource_not_found_exception",
    405: "illegal_argument_exception",
    413: "content_too_long_exception",
    415: "media_type_header_exception",
    429: "es_rejected_execution_exception",
    503: "unavailable_exception",
}
# Probed by Logstash, Filebeat, Vector and the Collector before they send: answered with
# empty successes, since loglake has no templates, policies or pipelines to manage.
_PROBES = (
    "_ilm",
    "_index_template",
    "_template",
    "_component_template",
    "_ingest",
    "_nodes",
    "_logstash",
    "_xpack",
    "_data_stream",
    "_security",
    "_alias",
    "_aliases",
)


def _content_type(request: Request) -> str:
    # Clients asking for the compatible-with media type (elasticsearch-py 8, the Go client)
    # get it back; the others plain JSON.
    accept = request.header("accept")
    if "vnd.elasticsearch+json" in accept:
        version = accept.partition("compatible-with=")[2][:1] or "8"
        return f"application/vnd.elasticsearch+json;compatible-with={version}"
    return "application/json"


def _reply(request: Request, status: int, body: Any, records: int = 0) -> Reply:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return Reply(status, data, _content_type(request), [PRODUCT_HEADER], records)


def render(problem: Problem, request: Request) -> Reply:
    kind = _ERROR_TYPES.get(problem.status, "exception")
    cause = {"type": kind, "reason": problem.message}
    reply = _reply(
        request,
        problem.status,
        {"error": {"root_cause": [cause], **cause}, "status": problem.status},
    )
    if problem.status == 401:
        reply.headers.append(
            (b"www-authenticate", b'Basic realm="security", charset="UTF-8", ApiKey')
        )
    if request.method == "HEAD":
        reply.body = b""
    return reply


async def info(request: Request, ctx: Context) -> Reply:
    version = ctx.limits.es_version
    body = {
        "name": "loglake",
        "cluster_name": "loglake",
        "cluster_uuid": "bG9nbGFrZS1yZWNlaXZl",
        "version": {
            "number": version,
            "build_flavor": "default",
            "build_type": "docker",
            "build_hash": "loglake",
            "build_date": "2025-01-01T00:00:00.000Z",
            "build_snapshot": False,
            "lucene_version": "9.12.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "You Know, for Search",
    }
    reply = _reply(request, 200, body)
    if request.method == "HEAD":
        reply.body = b""
    return reply


async def probe(request: Request, ctx: Context) -> Reply:
    if request.path.startswith("/_cat/health"):
        return _cat_health(request)
    if request.path.startswith("/_license"):
        body: dict[str, Any] = {
            "license": {"status": "active", "type": "basic", "uid": "loglake", "mode": "basic"}
        }
    elif request.path.startswith("/_cluster/health"):
        body = {"cluster_name": "loglake", "status": "green", "timed_out": False}
    elif request.method in ("PUT", "POST", "DELETE"):
        body = {"acknowledged": True}
    else:
        body = {}
    reply = _reply(request, 200, body)
    if request.method == "HEAD":
        reply.body = b""
    return reply


def _cat_health(request: Request) -> Reply:
    """`/_cat/health`, rsyslog's `omelasticsearch` check before it resumes sending: one line
    of text as Elasticsearch writes it (a header line with `?v`), or JSON with `?format=json`."""
    now = time.time()
    values = {
        "epoch": str(int(now)),
        "timestamp": time.strftime("%H:%M:%S", time.gmtime(now)),
        "cluster": "loglake",
        "status": "green",
        "node.total": "1",
        "node.data": "1",
        "shards": "0",
        "pri": "0",
        "relo": "0",
        "init": "0",
        "unassign": "0",
        "pending_tasks": "0",
        "max_task_wait_time": "-",
        "active_shards_percent": "100.0%",
    }
    query = request.query
    if query.get("format") == "json":
        reply = _reply(request, 200, [values])
    else:
        text = " ".join(values.values()) + "\n"
        if "v" in query:
            text = " ".join(values) + "\n" + text
        reply = Reply(200, text.encode(), "text/plain; charset=UTF-8", [PRODUCT_HEADER])
    if request.method == "HEAD":
        reply.body = b""
    return reply


def _index_of(path: str) -> str | None:
    """`/{index}/_bulk` (or the ES 6 `/{index}/{type}/_bulk`) -> index; `/_bulk` -> None."""
    parts = [p for p in path.split("/") if p]
    return parts[0] if len(parts) >= 2 else None


async def bulk(request: Request, ctx: Context) -> Reply:
    started = time.monotonic()
    default_index = _index_of(request.path)
    items: list[tuple[str, dict[str, Any]]] = []
    """(action, item) in request order; an item awaiting its stream id has `_slot`."""
    docs: list[bytes] = []
    lines = request.body.split(b"\n")
    n = len(lines)
    i = 0
    while i < n:
        line = lines[i]
        i += 1
        if not line or line.isspace():
            continue
        action, meta = _action(line, i)
        if action == "delete":
            items.append((action, _unsupported(action, meta, default_index)))
            continue
        while i < n and (not lines[i] or lines[i].isspace()):
            i += 1  # blank lines between an action and its source: tolerated
        if i >= n:
            raise BadRequest(f"action [{action}] on line {i} has no source line after it")
        source = lines[i]
        i += 1
        if action == "update":
            items.append((action, _unsupported(action, meta, default_index)))
            continue
        item, doc = _document(source, meta, default_index, ctx)
        if doc is not None:
            item["_slot"] = len(docs)
            docs.append(doc)
        items.append((action, item))
    if not items:
        raise BadRequest("Validation Failed: 1: no requests added;")
    if len(items) > ctx.limits.max_records:
        raise TooLarge(
            f"request holds {len(items)} bulk actions; receive_max_records is "
            f"{ctx.limits.max_records}"
        )
    ids = await ctx.sink.write(docs) if docs else []
    keep = _item_filter(request)
    errors = False
    out = []
    for action, item in items:
        slot = item.pop("_slot", None)
        if slot is None:
            errors = True
        else:
            item = {
                "_index": item["_index"],
                "_id": item.get("_id") or ids[slot].decode(),
                "_version": 1,
                "result": "created",
                "_shards": _SHARDS,
                "_seq_no": slot,
                "_primary_term": 1,
                "status": 201,
            }
        if keep is not None:
            item = {k: v for k, v in item.items() if k in keep}
        out.append({action: item})
    took = int((time.monotonic() - started) * 1000)
    return _reply(request, 200, {"took": took, "errors": errors, "items": out}, len(docs))


_SHARDS = {"total": 1, "successful": 1, "failed": 0}


def _item_filter(request: Request) -> set[str] | None:
    """`filter_path=errors,items.*.error,items.*.status` (as Logstash asks): the item keys to
    keep, or None for all. Other paths are not filtered: an answer may say more than asked."""
    paths = request.query.get("filter_path")
    if not paths:
        return None
    wanted = {
        p.strip()[len("items.*.") :] for p in paths.split(",") if p.strip().startswith("items.*.")
    }
    return wanted or None


_ACTIONS: dict[bytes, tuple[str, dict[str, Any]]] = {}
"""Action lines already read: shippers repeat the same few (`{"index":{"_index":"logs"}}`)
thousands of times (-0.2 µs per document). Their metadata is never modified."""


def _action(line: bytes, number: int) -> tuple[str, dict[str, Any]]:
    known = _ACTIONS.get(line)
    if known is not None:
        return known
    found = _read_action(line, number)
    if b'"_id"' not in line:  # lines with ids are all different: not worth keeping
        if len(_ACTIONS) > 1000:
            _ACTIONS.clear()
        _ACTIONS[line] = found
    return found


def _read_action(line: bytes, number: int) -> tuple[str, dict[str, Any]]:
    try:
        action = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise BadRequest(
            f"Malformed action/metadata line [{number}], expected START_OBJECT"
        ) from None
    if not isinstance(action, dict) or len(action) != 1:
        raise BadRequest(
            f"Malformed action/metadata line [{number}], expected one action with its metadata"
        )
    ((name, meta),) = action.items()
    if name not in ("index", "create", "update", "delete"):
        raise BadRequest(
            f"Malformed action/metadata line [{number}], expected one of [create, delete, "
            f"index, update] but found [{name}]"
        )
    if not isinstance(meta, dict):
        raise BadRequest(f"Malformed action/metadata line [{number}], expected START_OBJECT")
    return name, meta


def _unsupported(action: str, meta: Any, default_index: Any) -> Any:
    """The per-item 400 of an action loglake does not do (it keeps what it receives)."""
    message = f"action [{action}] is not supported: loglake keeps what it receives"
    return _error_item(meta, default_index, 400, message)


def _error_item(
    meta: dict[str, Any], default_index: str | None, status: int, reason: str
) -> dict[str, Any]:
    item: dict[str, Any] = {"_index": meta.get("_index") or default_index or ""}
    if meta.get("_id") is not None:
        item["_id"] = str(meta["_id"])
    kind = "document_parsing_exception" if status == 400 else "exception"
    item.update(status=status, error={"type": kind, "reason": reason})
    return item


def _document(
    source: bytes, meta: dict[str, Any], default_index: str | None, ctx: Context
) -> tuple[dict[str, Any], bytes | None]:
    index = meta.get("_index") or default_index
    try:
        doc = orjson.loads(source)
    except orjson.JSONDecodeError as exc:
        return _error_item(meta, default_index, 400, f"failed to parse: {exc}"), None
    if not isinstance(doc, dict):
        return _error_item(meta, default_index, 400, "the document is not a JSON object"), None
    doc_id = meta.get("_id")
    if doc and "_index" not in doc and "_id" not in doc:
        # The common case: the shipper's own text, read once to check it, `_index` and `_id`
        # spliced in before its closing brace instead of the document written anew (-0.5 µs
        # of the receiver's ~4.5 per document).
        tail = b',"_index":' + orjson.dumps(index)
        if doc_id is not None:
            tail += b',"_id":' + orjson.dumps(str(doc_id))
        data = source.rstrip()[:-1] + tail + b"}"
    else:
        entries.with_meta(doc, {"_index": index, "_id": None if doc_id is None else str(doc_id)})
        try:
            data = entries.dumps(doc)
        except BadRequest as exc:
            return _error_item(meta, default_index, 400, exc.message), None
    if len(data) + 10 > ctx.limits.max_entry_bytes:
        reason = (
            f"document of {len(data)} bytes is over max_entry_bytes ({ctx.limits.max_entry_bytes})"
        )
        return _error_item(meta, default_index, 400, reason), None
    if entries.too_deep(data, ctx.limits.max_json_depth):
        reason = f"document nested deeper than max_json_depth ({ctx.limits.max_json_depth})"
        return _error_item(meta, default_index, 400, reason), None
    item: dict[str, Any] = {"_index": index or ""}
    if doc_id is not None:
        item["_id"] = str(doc_id)
    return item, data


async def single(request: Request, ctx: Context) -> Reply:
    """`POST /{index}/_doc`, `PUT /{index}/_doc/{id}`, `/{index}/_create/{id}`: one document."""
    parts = [p for p in request.path.split("/") if p]
    meta: dict[str, Any] = {"_index": parts[0]}
    if len(parts) >= 3:
        meta["_id"] = parts[2]
    item, doc = _document(request.body, meta, parts[0], ctx)
    if doc is None:
        raise BadRequest(item["error"]["reason"])
    (stream_id,) = await ctx.sink.write([doc])
    item.setdefault("_id", stream_id.decode())
    item.update(_version=1, result="created", _seq_no=0, _primary_term=1)
    item["_shards"] = {"total": 1, "successful": 1, "failed": 0}
    return _reply(request, 201, item, 1)


def route(method: str, path: str) -> Route | None:
    if path == "/" and method in ("GET", "HEAD"):
        return Route(PROTOCOL, info, render, writes=False)
    parts = [p for p in path.split("/") if p]
    if parts and parts[-1] == "_bulk" and len(parts) <= 3 and method in ("POST", "PUT"):
        return Route(PROTOCOL, bulk, render)
    if (
        len(parts) in (2, 3)
        and parts[1] in ("_doc", "_create")
        and not parts[0].startswith("_")
        and method in ("POST", "PUT")
    ):
        return Route(PROTOCOL, single, render)
    if parts and (
        parts[0] in _PROBES
        or parts[0] == "_license"
        or path.startswith(("/_cluster/health", "/_cat/health"))
    ):
        return Route(PROTOCOL, probe, render, writes=False)
    return None
