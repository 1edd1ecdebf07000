"""`logs send` and `logs parse`: files or a pipe -> records -> canonical documents.

Lines are decoded with the chosen encoding (a line that does not decode is never replaced: it is
counted, reported, and sent as the bytes it is, for ingest to dead-letter), joined into records
(formats/multiline.py), and read by the formats registry where line order and the sender's time
zone are known. A JSON line is sent as it is; a text record as the JSON document its format
reads. `--service/--host/--level` fill only what a record does not say itself.
"""

from __future__ import annotations

import codecs
import os
import select
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from ingest.formats.multiline import Joiner
from ingest.formats.registry import Formats, text_doc
from ingest.producer import Fields

READ_BATCH = 20_000
"""Records read from a file before they are sent: the text lane's fixed cost per call
(~25 ms) wants large batches. (From a pipe, a batch is whatever has arrived.)"""
QUIET_SECONDS = 1.0
"""A pipe quiet this long flushes the record it holds (the last line of a stack trace)."""
Record = str | bytes
"""A record's text, or the raw bytes of a line that did not decode."""


@dataclass
class Counts:
    lines: int = 0
    records: int = 0
    undecodable: int = 0
    first_undecodable: list[str] = field(default_factory=list)


def record_batches(
    paths: list[str],
    encoding: str,
    multiline: str,
    counts: Counts,
    formats: Formats,
    batch: int = READ_BATCH,
) -> Iterator[list[Record]]:
    """Records of the files (stdin when none), in batches; from a pipe a batch is whatever has
    arrived, so `docker logs -f api | logs send` forwards each record promptly."""
    codecs.lookup(encoding)  # LookupError for a codec that does not exist
    joiner = Joiner(multiline, formats.record_starts)
    if not paths:
        yield from _pipe(sys.stdin.fileno(), encoding, joiner, counts, batch, "<stdin>")
        return
    for path in paths:
        with open(path, "rb") as fh:
            pending: list[Record] = []
            for raw in fh:
                pending.extend(_records(raw, encoding, joiner, counts, path))
                if len(pending) >= batch:
                    yield pending
                    pending = []
            pending.extend(_flushed(joiner, counts))
            if pending:
                yield pending


def _pipe(
    fd: int, encoding: str, joiner: Joiner, counts: Counts, batch: int, name: str
) -> Iterator[list[Record]]:
    tail = b""
    while True:
        if joiner.pending and not select.select([fd], [], [], QUIET_SECONDS)[0]:
            flushed = list(_flushed(joiner, counts))
            if flushed:
                yield flushed
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        *complete, tail = (tail + chunk).split(b"\n")
        arrived: list[Record] = []
        for raw in complete:
            arrived.extend(_records(raw, encoding, joiner, counts, name))
        for i in range(0, len(arrived), batch):
            yield arrived[i : i + batch]
    last = list(_records(tail, encoding, joiner, counts, name)) if tail else []
    last.extend(_flushed(joiner, counts))
    if last:
        yield last


def _records(raw: bytes, encoding: str, joiner: Joiner, counts: Counts, where: str) -> list[Record]:
    raw = raw.rstrip(b"\r\n")
    if not raw or raw.isspace():
        return []
    counts.lines += 1
    done: list[Record] = []
    try:
        line = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        counts.undecodable += 1
        if len(counts.first_undecodable) < 3:
            counts.first_undecodable.append(f"{where} line {counts.lines} (byte {exc.start})")
        joiner.flush(done)  # type: ignore[arg-type]
        done.append(raw)
        counts.records += len(done)
        return done
    if line[:1] == "\ufeff":
        line = line[1:]
    joiner.feed(line, done)  # type: ignore[arg-type]
    counts.records += len(done)
    return done


def _flushed(joiner: Joiner, counts: Counts) -> list[Record]:
    done: list[str] = []
    joiner.flush(done)
    counts.records += len(done)
    return list(done)


def record_doc(record: str, formats: Formats, now_us: int) -> dict[str, Any] | None:
    """The document a text record stands for; None for a JSON line (sent as it is)."""
    if record.lstrip()[:1] == "{":
        try:
            value = orjson.loads(record)
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return None
    return text_doc(record, now_us, formats)


def batch_fields(records: list[Record], defaults: dict[str, str], formats: Formats) -> list[Fields]:
    """What to XADD for each record of a batch: lines the columnar text lane reads, read a
    batch at a time (~4x faster than one by one); the rest by `record_fields`."""
    from ingest.formats.textlane import read_docs

    now_us = time.time_ns() // 1000
    texts = [r for r in records if isinstance(r, str)]
    read = iter(read_docs(texts, now_us, formats, defaults) if len(texts) > 50 else [])
    out: list[Fields] = []
    for record in records:
        doc = next(read, None) if isinstance(record, str) else None
        out.append({"data": doc} if doc is not None else record_fields(record, defaults, formats))
    return out


def record_fields(record: Record, defaults: dict[str, str], formats: Formats) -> Fields:
    """What to XADD for one record."""
    from ingest.records import missing_columns

    if isinstance(record, bytes):
        return {"line": record}  # not UTF-8: ingest dead-letters it with its reason
    doc = record_doc(record, formats, time.time_ns() // 1000)
    if doc is None:
        if not defaults:
            return {"data": record}
        doc = orjson.loads(record)
    for column in missing_columns(doc) & defaults.keys():
        doc[column] = defaults[column]
    return {"data": orjson.dumps(doc)}
