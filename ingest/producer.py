"""Producers: turn lines or generated entries into pipelined XADDs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import redis

Fields = dict[Any, Any]
"""Field name -> value of one entry, as XADD takes them."""

PIPELINE_SIZE = 1000


def line_to_fields(line: str, defaults: dict[str, str]) -> Fields:
    """A JSON object line is sent whole in one `data` field (its types survive); plain text
    becomes `message` beside the defaults. Defaults only fill fields the line lacks."""
    text = line.rstrip("\r\n")
    if text.lstrip().startswith("{"):
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict):
            if defaults:
                lowered = {k.lower() for k in doc}
                for key, value in defaults.items():
                    if key not in lowered:
                        doc[key] = value
                return {"data": orjson.dumps(doc)}
            return {"data": text}
    fields: Fields = {"message": text}
    fields.update(defaults)
    return fields


def xadd_all(
    r: redis.Redis,
    stream: str,
    entries: Iterable[Fields],
    progress: Any = None,
) -> int:
    """XADD every entry, pipelined in batches; returns how many were added."""
    sent = 0
    pipe = r.pipeline(transaction=False)
    queued = 0
    for fields in entries:
        pipe.xadd(stream, fields)
        queued += 1
        if queued == PIPELINE_SIZE:
            pipe.execute()
            sent += queued
            queued = 0
            if progress:
                progress(sent)
    if queued:
        pipe.execute()
        sent += queued
        if progress:
            progress(sent)
    return sent


def line_batches(paths: list[str], batch: int = PIPELINE_SIZE) -> Iterator[list[str]]:
    """Lines of the given files (or stdin when none), in batches. From a pipe a batch is whatever
    has arrived, so `docker logs -f api | logs send` forwards each line promptly."""
    import os
    import sys

    if not paths:
        fd = sys.stdin.fileno()
        tail = b""
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            *complete, tail = (tail + chunk).split(b"\n")
            arrived = [b.decode("utf-8", "replace") for b in complete if b.strip()]
            for i in range(0, len(arrived), batch):
                yield arrived[i : i + batch]
        if tail.strip():
            yield [tail.decode("utf-8", "replace")]
        return
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines: list[str] = []
            for line in fh:
                if line.strip():
                    lines.append(line)
                    if len(lines) == batch:
                        yield lines
                        lines = []
            if lines:
                yield lines
