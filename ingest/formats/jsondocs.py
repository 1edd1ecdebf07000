"""Known JSON schemas -> documents the column aliases read (design §3). Pure.

Most schemas need no more than aliases (records.ALIASES holds journald's `__REALTIME_TIMESTAMP`,
`PRIORITY`, `_HOSTNAME`, `SYSLOG_IDENTIFIER`; ECS's dotted `log.level`, `service.name`,
`host.name`, `trace.id`; CLEF's `@t`, `@l`, `@m`, `@tr`; structlog's `event`;
python-json-logger's `asctime`, `levelname`, `name`; Google Cloud's `severity`; syslog-ng's
`ISODATE`, `HOST`, `PROGRAM`, `MESSAGE`). This module does what an alias cannot:

- OpenTelemetry records and OTLP/JSON batches (`resourceLogs`: one document per record);
- Docker json-file (`{"log": "...\\n", "stream": ..., "time": ...}`): the trailing newline
  goes, and a `log` that is itself JSON or a known text format is read as such;
- nested objects (ECS `{"service": {"name": "auth"}}`): flattened to dotted keys;
- journald's `MESSAGE` as a byte array; Google Cloud's `projects/P/traces/ID` and
  `timestampSeconds`; CLEF's message template when no rendered message is given; log4j2's
  `instant`; MongoDB's `{"t": {"$date": ...}, "s": "I", "c": "NETWORK", "msg": ...}`.

`special(keys)` says, once per key set, whether a document needs any of this; the columnar
lane leaves documents with those keys to the per-entry decoder.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ingest.formats import otlp

NESTED_PARENTS = frozenset({"log", "service", "host", "trace", "Log", "Service", "Host"})
"""Top-level keys whose object values hold column fields (ECS nesting)."""
GCP_TRACE = "logging.googleapis.com/trace"
SPECIAL_KEYS = frozenset(
    {"resourceLogs", *otlp.RECORD_MARKERS, GCP_TRACE, "@mt", "timestampSeconds", "instant"}
)
"""Keys whose presence calls for `map_doc` (and sends a row off the columnar lane)."""


def special(keys: tuple[str, ...]) -> bool:
    """Whether documents with these keys need `map_doc` before the aliases."""
    if SPECIAL_KEYS.intersection(keys):
        return True
    if "t" in keys and "s" in keys and "c" in keys:  # MongoDB's structured log
        return True
    return "log" in keys and "stream" in keys  # Docker json-file, Kubernetes node logs


TextReader = Callable[[str], "dict[str, Any] | None"]
"""A text line -> the document of the text format that takes it, or None."""


def map_doc(doc: dict[str, Any], read_text: TextReader) -> list[dict[str, Any]]:
    """The documents a special one stands for (one, but for OTLP batches)."""
    if "resourceLogs" in doc:
        return list(otlp.request_docs(doc))
    if otlp.is_record(doc) and ("body" in doc or "timeUnixNano" in doc):
        return [otlp.record_doc(doc)]
    if "log" in doc and "stream" in doc and isinstance(doc["log"], str):
        return [_docker(doc, read_text)]
    trace = doc.get(GCP_TRACE)
    if isinstance(trace, str) and "/traces/" in trace:
        doc[GCP_TRACE] = trace.rpartition("/traces/")[2]
    if "timestampSeconds" in doc and "timestamp" not in doc:
        seconds = doc.pop("timestampSeconds")
        nanos = doc.pop("timestampNanos", 0)
        if isinstance(seconds, int | str) and isinstance(nanos, int | str):
            try:
                doc["timestamp"] = int(seconds) * 1_000_000 + int(nanos) // 1000
            except ValueError:
                doc["timestampSeconds"] = seconds
    if "@mt" in doc and "@m" not in doc and isinstance(doc["@mt"], str):
        doc["@m"] = render_template(doc["@mt"], doc)
    instant = doc.get("instant")  # log4j2's JsonLayout
    if isinstance(instant, dict) and "epochSecond" in instant:
        seconds, nanos = instant.get("epochSecond"), instant.get("nanoOfSecond", 0)
        if type(seconds) is int and type(nanos) is int:
            doc.pop("instant")
            doc.setdefault("timestamp", seconds * 1_000_000 + nanos // 1000)
    when = doc.get("t")
    if isinstance(when, dict) and "s" in doc and "c" in doc:  # MongoDB: {"t": {"$date": ...}}
        doc["t"] = when.get("$date", when)
        severity = doc.pop("s")
        doc["level"] = (
            _MONGO_SEVERITY.get(severity, severity) if isinstance(severity, str) else severity
        )
        doc.setdefault("component", doc.pop("c"))
    return [doc]


_MONGO_SEVERITY = {"F": "FATAL", "E": "ERROR", "W": "WARN", "I": "INFO", "D": "DEBUG"}
_MONGO_SEVERITY.update({f"D{n}": "DEBUG" for n in range(1, 6)})


def read_payload(line: str, read_text: TextReader) -> dict[str, Any] | None:
    """What a container runtime's line holds: a JSON object (`_format` json) or what a known
    text format reads; None for neither."""
    if line[:1] == "{":
        import orjson

        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            value.setdefault("_format", "json")
            return value
    return read_text(line)


def _docker(doc: dict[str, Any], read_text: TextReader) -> dict[str, Any]:
    line = doc.pop("log").rstrip("\r\n")
    inner = read_payload(line, read_text)
    if inner is None:
        doc["message"] = line
        doc["_format"] = "docker"
        return doc
    outer_time = doc.pop("time", None)
    merged = {**doc, **inner}
    merged["_format"] = f"docker/{inner.get('_format', 'text')}"
    if outer_time is not None and not any(k in merged for k in _TIME_KEYS):
        merged["time"] = outer_time
    return merged


_TIME_KEYS = ("ts", "timestamp", "time", "@timestamp", "@t", "datetime", "asctime")


def flatten_nested(doc: dict[str, Any]) -> dict[str, Any]:
    """`{"service": {"name": "a", "version": "1"}}` -> `{"service.name": "a",
    "service.version": "1"}`, for the parents in NESTED_PARENTS; other keys as they are."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key in NESTED_PARENTS and isinstance(value, dict):
            _flatten_into(out, key, value)
        else:
            out[key] = value
    return out


def _flatten_into(out: dict[str, Any], prefix: str, value: dict[str, Any]) -> None:
    for key, inner in value.items():
        name = f"{prefix}.{key}"
        if isinstance(inner, dict) and inner:
            _flatten_into(out, name, inner)
        else:
            out[name] = inner


def bytes_text(value: list[Any]) -> str | None:
    """journald writes a MESSAGE that is not valid UTF-8 as an array of byte values."""
    if not value or not all(type(b) is int and 0 <= b <= 255 for b in value):
        return None
    return bytes(value).decode("utf-8", "backslashreplace")


_HOLE = re.compile(r"\{\{|\}\}|\{([@$]?)([A-Za-z0-9_]+)(?:,[^}:]*)?(?::[^}]*)?\}")


def render_template(template: str, doc: dict[str, Any]) -> str:
    """A Serilog message template with its properties filled in (`{Name}`, `{@Name}`,
    `{Name:format}`); unknown holes stay as written."""

    def fill(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole in ("{{", "}}"):
            return whole[0]
        value = doc.get(match.group(2))
        if value is None and match.group(2) not in doc:
            return whole
        if isinstance(value, str):
            return value
        import orjson

        return orjson.dumps(value).decode()

    return _HOLE.sub(fill, template)
