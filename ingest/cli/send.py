"""`logs send` and `logs parse`: lines read where they are sent (ingest/sending.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ingest.cli.common import (
    DataDirOpt,
    RedisUrlOpt,
    StreamOpt,
    command,
    settings,
)
from ingest.cli.plain import note
from ingest.cli.write import producer_client

if TYPE_CHECKING:
    from ingest.config import Settings
    from ingest.formats.registry import Formats
    from ingest.sending import Counts

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


def register(app: typer.Typer) -> None:
    command(app, send)
    command(app, parse)
