"""NDJSON: `POST /ingest`, one JSON object or one text line per line (scripts, and the generic
`http` outputs of Vector and Fluent Bit). The same rules as `logs send`: an object line passes
through whole as one `data` field, a text line becomes a one-field text entry for the stream
decoder's text formats; `?service=&host=&level=` fill what lines lack. A JSON array body
(Vector's `codec: json` without framing) is taken element by element.
"""

from __future__ import annotations

from typing import Any

import orjson

from ingest.receive import entries
from ingest.receive.http import Context, Reply, Request, Route
from ingest.receive.problems import BadRequest, Problem, TooLarge

PROTOCOL = "ndjson"
_DEFAULT_KEYS = ("service", "host", "level")


def render(problem: Problem, request: Request) -> Reply:
    return Reply(problem.status, orjson.dumps({"error": problem.message}))


def _lines(body: bytes) -> list[bytes]:
    stripped = body.strip()
    if stripped.startswith(b"[") and stripped.endswith(b"]"):
        try:
            values = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            values = None
        if isinstance(values, list):
            return [v.encode() if isinstance(v, str) else orjson.dumps(v) for v in values]
    return [line for line in body.split(b"\n") if line.strip()]


def _entry(line: bytes, number: int, defaults: dict[str, str]) -> entries.Entry:
    line = line.rstrip(b"\r")
    if line.lstrip()[:1] == b"{":
        try:
            doc: Any = orjson.loads(line)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict):
            if not defaults:
                return line.strip()
            present = {k.lower() for k in doc}
            for key, value in defaults.items():
                if key not in present:
                    doc[key] = value
            return entries.dumps(doc)
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"line {number}: invalid UTF-8 at byte {exc.start}") from None
    if defaults:
        return entries.dumps({"message": text, **defaults})
    return entries.text_entry(text)


async def ingest(request: Request, ctx: Context) -> Reply:
    lines = _lines(request.body)
    if not lines:
        raise BadRequest("empty body: send one JSON object or text line per line")
    if len(lines) > ctx.limits.max_records:
        raise TooLarge(
            f"request holds {len(lines)} lines; receive_max_records is {ctx.limits.max_records}"
        )
    query = request.query
    defaults = {k: query[k] for k in _DEFAULT_KEYS if query.get(k)}
    batch = [_entry(line, number, defaults) for number, line in enumerate(lines, 1)]
    depth = ctx.limits.max_json_depth
    for number, entry in enumerate(batch, 1):
        if isinstance(entry, bytes) and entries.too_deep(entry, depth):
            raise BadRequest(f"line {number}: JSON nested deeper than max_json_depth ({depth})")
    await ctx.sink.write(batch)
    return Reply(200, orjson.dumps({"accepted": len(batch)}), records=len(batch))


def route(method: str, path: str) -> Route | None:
    if path == "/ingest" and method in ("POST", "PUT"):
        return Route(PROTOCOL, ingest, render)
    return None
