"""Write-path commands: `logs send`, `logs gen`, `logs ingest`, `logs down`."""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ingest import redis_server
from ingest.cli.common import DataDirOpt, GroupOpt, RedisUrlOpt, StreamOpt, edge, note, settings
from ingest.config import Settings

if TYPE_CHECKING:
    from ingest.formats.registry import Formats
    from ingest.sending import Counts
from ingest.redis_conn import connect, resolve_url


class Shape(StrEnum):
    fields = "fields"
    json = "json"
    text = "text"


def producer_client(s: Settings):  # type: ignore[no-untyped-def]
    """A client for producers: the configured Redis, else the embedded one (started if needed)."""
    if not s.redis_url:
        url, started = redis_server.start(s.data_dir)
        if started:
            note(
                f"started the embedded Redis at {url} (data in {s.data_dir}/redis; "
                "`logs down` stops it)"
            )
    return connect(resolve_url(s, start_embedded=True))


MultilineOpt = Annotated[
    str,
    typer.Option(
        "--multiline",
        help="Join stack traces and continuation lines: auto, none, or a REGEX that matches "
        "the first line of each record.",
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="Read every line with this format only (see `logs parse --list`).",
        show_default=False,
    ),
]
EncodingOpt = Annotated[
    str, typer.Option("--encoding", help="Encoding of the input (e.g. latin-1 for old files).")
]
TimezoneOpt = Annotated[
    str | None,
    typer.Option(
        "--timezone",
        help="Zone of times written without one [env LOGS_TIMEZONE; default UTC].",
        show_default=False,
    ),
]
FilesArg = Annotated[
    list[Path] | None,
    typer.Argument(help="Files to read; stdin when none.", show_default=False),
]


def _send_formats(s: Settings, format_name: str | None) -> Formats:
    """The formats `send`/`parse` read with: the settings', one forced by --format."""
    from ingest.formats.registry import Formats, from_settings

    formats = from_settings(s)
    if format_name is None:
        return formats
    if format_name not in formats.names:
        from ingest.errors import UsageError

        raise UsageError(
            f"--format {format_name!r}: no such format; known: {', '.join(formats.names)}"
        )
    return Formats(formats.custom, formats.timezone, force=format_name)


def _check_files(files: list[Path] | None) -> list[str]:
    from ingest.errors import UsageError

    for path in files or []:
        if not path.is_file():
            raise UsageError(f"no such file: {path}")
    return [str(p) for p in files or []]


def _report_undecodable(counts: Counts, encoding: str, sent: bool) -> None:
    if not counts.undecodable:
        return
    where = ", ".join(counts.first_undecodable)
    fate = (
        "sent as they are: ingest dead-letters them (see `logs dlq list`)"
        if sent
        else "shown as errors"
    )
    more = ", ..." if counts.undecodable > len(counts.first_undecodable) else ""
    note(
        f"{counts.undecodable} lines were not valid {encoding} ({where}{more}); {fate}; "
        "--encoding latin-1 reads legacy files"
    )


@edge
def send(
    ctx: typer.Context,
    files: FilesArg = None,
    service: Annotated[str | None, typer.Option(help="Service for lines that have none.")] = None,
    host: Annotated[str | None, typer.Option(help="Host for lines that have none.")] = None,
    level: Annotated[str | None, typer.Option(help="Level for lines that have none.")] = None,
    multiline: MultilineOpt = "auto",
    format_name: FormatOpt = None,
    encoding: EncodingOpt = "utf-8",
    timezone: TimezoneOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the rows the lines would become; send nothing.")
    ] = False,
    data_dir: DataDirOpt = None,
    redis_url: RedisUrlOpt = None,
    stream: StreamOpt = None,
) -> None:
    """Send log lines (JSON objects or text in any known format) to the stream.

    Each line is read where it is sent: syslog, access logs, logfmt, stack traces joined to
    their line... (`logs parse` shows how). The flags fill only what a line does not say.

    Example:

        docker logs -f api 2>&1 | logs send --service api
    """
    from ingest.sending import Counts, batch_fields, record_batches

    s = settings(ctx, data_dir=data_dir, redis_url=redis_url, stream=stream, timezone=timezone)
    paths = _check_files(files)
    formats = _send_formats(s, format_name)
    _check_encoding(encoding)
    _check_multiline(multiline)
    defaults = {k: v for k, v in (("service", service), ("host", host), ("level", level)) if v}
    if dry_run:
        _print_rows(paths, encoding, multiline, formats, defaults)
        return
    r = producer_client(s)
    sent = 0
    counts = Counts()
    try:
        for records in record_batches(paths, encoding, multiline, counts, formats):
            pipe = r.pipeline(transaction=False)
            for fields in batch_fields(records, defaults, formats):
                pipe.xadd(s.stream, fields)
            pipe.execute()
            sent += len(records)
    finally:
        joined = f" ({counts.lines} lines)" if counts.lines != sent else ""
        note(f"sent {sent} entries{joined} to {s.stream}")
        _report_undecodable(counts, encoding, sent=True)


@edge
def parse(
    ctx: typer.Context,
    files: FilesArg = None,
    multiline: MultilineOpt = "auto",
    format_name: FormatOpt = None,
    encoding: EncodingOpt = "utf-8",
    timezone: TimezoneOpt = None,
    service: Annotated[str | None, typer.Option(help="Service for lines that have none.")] = None,
    host: Annotated[str | None, typer.Option(help="Host for lines that have none.")] = None,
    level: Annotated[str | None, typer.Option(help="Level for lines that have none.")] = None,
    list_formats: Annotated[
        bool, typer.Option("--list", help="List the format names and exit.")
    ] = False,
) -> None:
    """Show how lines would become rows (one JSON object a line), sending nothing.

    Check a `[parsers.NAME]` pattern of logs.toml, or see what loglake makes of a file.

    Example:

        head app.log | logs parse
    """
    s = settings(ctx, timezone=timezone)
    formats = _send_formats(s, format_name)
    if list_formats:
        for name in formats.names:
            print(name)
        return
    paths = _check_files(files)
    _check_encoding(encoding)
    _check_multiline(multiline)
    defaults = {k: v for k, v in (("service", service), ("host", host), ("level", level)) if v}
    _print_rows(paths, encoding, multiline, formats, defaults)


def _check_multiline(multiline: str) -> None:
    import re

    from ingest.errors import UsageError

    if multiline in ("auto", "none"):
        return
    try:
        re.compile(multiline)
    except re.error as exc:
        raise UsageError(
            f"--multiline {multiline!r}: not a regular expression ({exc}); "
            "use auto, none, or a REGEX matching the first line of each record"
        ) from None


def _check_encoding(encoding: str) -> None:
    import codecs

    from ingest.errors import UsageError

    try:
        codecs.lookup(encoding)
    except LookupError:
        raise UsageError(f"--encoding {encoding!r}: no such encoding") from None


def _print_rows(
    paths: list[str],
    encoding: str,
    multiline: str,
    formats: Formats,
    defaults: dict[str, str],
) -> None:
    import sys
    import time

    import orjson

    from ingest.records import decode_rows
    from ingest.sending import Counts, batch_fields, record_batches
    from ingest.tail import Line, format_jsonl

    counts = Counts()
    now_ms = time.time_ns() // 1_000_000
    n = 0
    for records in record_batches(paths, encoding, multiline, counts, formats):
        out = []
        for fields in batch_fields(records, defaults, formats):
            flat = [part for kv in fields.items() for part in kv]
            raw = [p if isinstance(p, bytes) else str(p).encode() for p in flat]
            sid = f"{now_ms}-{n}"
            n += 1
            try:
                rows = decode_rows(sid, raw, formats=formats)
            except Exception as exc:  # noqa: BLE001 - a bad line is shown, not fatal
                reason = getattr(exc, "reason", str(exc))
                out.append(orjson.dumps({"error": reason}).decode())
                continue
            for row in rows:
                shown = orjson.loads(format_jsonl(Line(row.stream_id, row)))
                del shown["stream_id"]  # not sent: no id yet
                out.append(orjson.dumps(shown).decode())
        sys.stdout.write("".join(f"{line}\n" for line in out))
        sys.stdout.flush()
    _report_undecodable(counts, encoding, sent=False)


@edge
def gen(
    ctx: typer.Context,
    count: Annotated[
        int, typer.Option("--count", "-n", min=0, help="Entries to generate.")
    ] = 10_000,
    hours: Annotated[
        float, typer.Option(min=0.0, help="Spread event times over the last H hours.")
    ] = 1.0,
    rate: Annotated[
        float | None,
        typer.Option(
            min=0.0, help="Entries per second (default: as fast as possible).", show_default=False
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    shape: Annotated[
        Shape,
        typer.Option(help="Entry shape: JSON in one field, a field per column, or plain text."),
    ] = Shape.json,
    malformed: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of malformed entries.")
    ] = 0.0,
    data_dir: DataDirOpt = None,
    redis_url: RedisUrlOpt = None,
    stream: StreamOpt = None,
) -> None:
    """Generate realistic synthetic logs into the stream.

    Example:

        logs gen --count 50000 --hours 3
    """
    from ingest.generate import entries
    from ingest.producer import xadd_all

    s = settings(ctx, data_dir=data_dir, redis_url=redis_url, stream=stream)
    r = producer_client(s)
    started = time.monotonic()
    source = entries(count, hours=hours, seed=seed, shape=shape.value, malformed=malformed)
    if rate:
        source = _paced(source, rate)
    sent = xadd_all(r, s.stream, source)
    elapsed = time.monotonic() - started
    note(
        f"generated {sent} entries into {s.stream} in {elapsed:.1f} s "
        f"({sent / max(elapsed, 1e-9):,.0f}/s)"
    )


def _paced(source, rate: float):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    for i, fields in enumerate(source):
        wait = started + i / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        yield fields


@edge
def ingest(
    ctx: typer.Context,
    drain: Annotated[
        bool, typer.Option("--drain", help="Exit 0 once nothing is pending or undelivered.")
    ] = False,
    consumer: Annotated[
        str | None,
        typer.Option(
            "--consumer",
            help="Consumer name [env LOGS_CONSUMER; default host-pid]",
            show_default=False,
        ),
    ] = None,
    batch_rows: Annotated[
        int | None, typer.Option(help="Rows per commit.", show_default=False)
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            show_default=False,
            help="Serve Prometheus /metrics and /healthz on this port [env LOGS_METRICS_PORT]",
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    redis_url: RedisUrlOpt = None,
    stream: StreamOpt = None,
    group: GroupOpt = None,
) -> None:
    """Consume the stream into the Delta table (at-least-once; queries see each entry once).

    Example:

        logs ingest --drain
    """
    from ingest.consume import consumer as consumer_mod

    s = settings(
        ctx,
        data_dir=data_dir,
        redis_url=redis_url,
        stream=stream,
        group=group,
        consumer=consumer,
        batch_rows=batch_rows,
        metrics_port=metrics_port,
    )
    started = time.monotonic()
    stats = consumer_mod.run(s, drain=drain)
    elapsed = time.monotonic() - started
    note(
        f"ingested {stats.ingested} entries, dead-lettered {stats.dead_lettered}, "
        f"{stats.commits} commits in {elapsed:.2f} s"
    )


@edge
def down(ctx: typer.Context, data_dir: DataDirOpt = None) -> None:
    """Stop the embedded Redis (its data stays under data/redis).

    Example:

        logs down
    """
    s = settings(ctx, data_dir=data_dir)
    if redis_server.stop(s.data_dir):
        note("stopped the embedded Redis")
    else:
        note("the embedded Redis was not running")


def register(app: typer.Typer) -> None:
    app.command()(send)
    app.command()(parse)
    app.command()(gen)
    app.command()(ingest)
    app.command()(down)
