"""`logs tail`: the newest entries still in the stream, and a live follow."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from typing import Annotated

import typer

from ingest.cli.common import (
    DataDirOpt,
    RedisUrlOpt,
    StreamOpt,
    command,
    format_option,
    redis_client,
    settings,
)
from ingest.cli.plain import note
from ingest.errors import ExitCode


class TailFormat(StrEnum):
    text = "text"
    jsonl = "jsonl"


# -- tail -------------------------------------------------------------------------------------


def tail(
    ctx: typer.Context,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new entries.")
    ] = False,
    lines: Annotated[
        int, typer.Option("--lines", "-n", min=0, help="Newest entries to show first.")
    ] = 20,
    level: Annotated[
        str | None,
        typer.Option(
            "--level",
            metavar="LEVEL",
            show_default=False,
            help="Only these levels: ERROR, WARN+ (WARN and worse), debug,info.",
        ),
    ] = None,
    service: Annotated[
        list[str] | None,
        typer.Option(
            "--service",
            metavar="SERVICE",
            show_default=False,
            help="Only this service (repeatable).",
        ),
    ] = None,
    grep: Annotated[
        str | None,
        typer.Option(
            "--grep",
            metavar="TEXT",
            show_default=False,
            help="Only entries whose message or attributes contain TEXT (any case).",
        ),
    ] = None,
    fmt: Annotated[TailFormat, format_option("text")] = TailFormat.text,
    data_dir: DataDirOpt = None,
    redis_url: RedisUrlOpt = None,
    stream: StreamOpt = None,
) -> None:
    """Show the newest entries still in the stream; with -f, follow new ones live.

    Reads the stream directly (XREVRANGE/XREAD), never through the consumer group, so it takes
    nothing from ingest. Ingest trims entries once they are committed, so without -f this shows
    what is still in Redis (use `logs sql` for older logs). Entries are decoded like ingest
    does; with -f it survives Redis restarts and resumes after the last entry it read. Colour
    only on a terminal, and never with NO_COLOR set.

    Example:

        logs tail -f --level WARN+ --service api
    """
    from ingest import tail as tail_lib
    from ingest.formats.registry import from_settings
    from ingest.redis_conn import connect, resolve_url

    s = settings(ctx, data_dir=data_dir, redis_url=redis_url, stream=stream)
    flt = tail_lib.Filter(
        levels=tail_lib.parse_levels(level) if level else None,
        services=frozenset(service) if service else None,
        grep=grep or None,
    )
    color = (
        fmt is TailFormat.text
        and sys.stdout.isatty()
        and not os.environ.get("NO_COLOR")
        and os.environ.get("TERM") != "dumb"
    )

    def show(line: tail_lib.Line) -> None:
        text = (
            tail_lib.format_jsonl(line)
            if fmt is TailFormat.jsonl
            else tail_lib.format_text(line, color)
        )
        sys.stdout.write(text + "\n")

    try:
        client = tail_lib.raw_client(redis_client(s))
        formats = from_settings(s)
        shown, top = tail_lib.newest(client, s.stream, lines, flt, formats)
        client.close()
        for line in shown:
            show(line)
        sys.stdout.flush()
        if not follow:
            return
        live = tail_lib.follow(
            lambda: connect(resolve_url(s), s.block_ms, check=False),
            s.stream,
            top,
            flt,
            note,
            s.block_ms,
            formats,
        )
        for line in live:
            show(line)
            sys.stdout.flush()
    except KeyboardInterrupt:
        raise typer.Exit(ExitCode.INTERRUPTED) from None


def register(app: typer.Typer) -> None:
    command(app, tail)
