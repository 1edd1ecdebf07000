"""Operations commands: `logs status`, `logs tail`, `logs dlq ...`, `logs config`."""

from __future__ import annotations

import inspect
import json
import os
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from ingest import dlq as dlq_lib
from ingest import status as status_lib
from ingest.cli.common import (
    DataDirOpt,
    GroupOpt,
    RedisUrlOpt,
    StreamOpt,
    edge,
    note,
    resolve,
    settings,
)
from ingest.config import Settings, mask_url
from ingest.errors import DataUnavailable, ExitCode, RedisUnavailable, UsageError


class TableOrJson(StrEnum):
    table = "table"
    json = "json"


class TailFormat(StrEnum):
    text = "text"
    jsonl = "jsonl"


class ListFormat(StrEnum):
    table = "table"
    jsonl = "jsonl"
    json = "json"


def _format_opt(default: str) -> Any:
    return typer.Option(
        "--format", "-F", help=f"Output format [default {default}].", show_default=False
    )


def _client(s: Settings):  # type: ignore[no-untyped-def]
    from ingest.redis_conn import connect, resolve_url

    return connect(resolve_url(s), s.block_ms)


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


# -- status -----------------------------------------------------------------------------------


@edge
def status(
    ctx: typer.Context,
    fmt: Annotated[TableOrJson, _format_opt("table")] = TableOrJson.table,
    hours: Annotated[
        int, typer.Option("--hours", min=0, help="Recent hour partitions to list.")
    ] = status_lib.RECENT_HOURS,
    data_dir: DataDirOpt = None,
    redis_url: RedisUrlOpt = None,
    stream: StreamOpt = None,
    group: GroupOpt = None,
) -> None:
    """Show the pipeline at a glance: stream, group lag and pending, consumers, DLQ, lake hours,
    dirty hours, scheduled jobs and the scheduler lease.

    When Redis (or the lake) cannot be reached the rest is still shown, and the exit code is 3.

    Example:

        logs status -F json | jq '.group.lag, .dlq.length'
    """
    s = settings(ctx, data_dir=data_dir, redis_url=redis_url, stream=stream, group=group)
    facts = status_lib.collect(s, hours)
    if fmt is TableOrJson.json:
        _out(json.dumps(facts, indent=2))
    else:
        status_lib.render_table(facts, sys.stdout)
    if not facts["redis"]["reachable"]:
        raise RedisUnavailable(facts["redis"]["error"] or "Redis unreachable")
    if not facts["lake"]["reachable"]:
        raise DataUnavailable(f"cannot read the lake: {facts['lake']['error']}")


def _status_help() -> str:
    """The command's docstring plus the JSON keys documented in ingest/status.py."""
    head, _, example = inspect.cleandoc(status.__doc__ or "").partition("Example:")
    module = status_lib.__doc__ or ""
    keys = module[module.index("- `generated_at`") :].strip()
    return f"{head.rstrip()}\n\n\b\nJSON keys (stable):\n{keys}\n\nExample:{example}"


# -- tail -------------------------------------------------------------------------------------


@edge
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
    fmt: Annotated[TailFormat, _format_opt("text")] = TailFormat.text,
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
        client = tail_lib.raw_client(_client(s))
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


# -- dlq --------------------------------------------------------------------------------------

dlq_app = typer.Typer(
    invoke_without_command=True,
    rich_markup_mode=None,
)


@dlq_app.callback()
def dlq_main(ctx: typer.Context) -> None:
    """Dead letters: entries ingest could not turn into rows, with the reason. Without a
    subcommand: `logs dlq list`.

    Example:

        logs dlq list -n 20 && logs dlq replay --all
    """
    if ctx.invoked_subcommand is None:
        dlq_list(ctx)


@edge
def dlq_list(
    ctx: typer.Context,
    count: Annotated[
        int, typer.Option("--count", "-n", min=1, help="Newest letters to show.")
    ] = 50,
    fmt: Annotated[ListFormat, _format_opt("table")] = ListFormat.table,
    data_dir: DataDirOpt = None,
    redis_url: RedisUrlOpt = None,
    stream: StreamOpt = None,
) -> None:
    """List the newest dead letters with their reasons (oldest of them first).

    Example:

        logs dlq list -n 20 -F jsonl | jq -r .reason | sort | uniq -c
    """
    s = settings(ctx, data_dir=data_dir, redis_url=redis_url, stream=stream)
    client = _client(s)
    total = client.xlen(s.dlq_stream)
    letters = dlq_lib.newest(client, s.dlq_stream, count)
    if fmt is ListFormat.table:
        rows = [
            (
                d.id,
                status_lib.rfc3339_ms(d.failed_at) if d.failed_at else "",
                d.stream_id,
                d.reason,
                _preview(d),
            )
            for d in letters
        ]
        if rows:
            _table(("ID", "FAILED AT", "ORIGINAL ID", "REASON", "FIELDS"), rows)
    elif fmt is ListFormat.jsonl:
        for d in letters:
            _out(json.dumps(d.as_json(), ensure_ascii=False))
    else:
        _out(json.dumps([d.as_json() for d in letters], ensure_ascii=False, indent=2))
    if total == 0:
        note(f"no dead letters in {s.dlq_stream}")
    elif total > len(letters):
        note(f"{len(letters)} newest of {total:,} dead letters shown (-n to see more)")


@edge
def dlq_show(
    ctx: typer.Context,
    letter_id: Annotated[
        str,
        typer.Argument(
            metavar="ID", help="Dead letter id (from `logs dlq list`).", show_default=False
        ),
    ],
    fmt: Annotated[TableOrJson, _format_opt("table")] = TableOrJson.table,
    data_dir: DataDirOpt = None,
    redis_url: RedisUrlOpt = None,
    stream: StreamOpt = None,
) -> None:
    """Show one dead letter with all its original fields.

    Example:

        logs dlq show 1795399178064-0
    """
    s = settings(ctx, data_dir=data_dir, redis_url=redis_url, stream=stream)
    letter = dlq_lib.get(_client(s), s.dlq_stream, letter_id)
    if letter is None:
        raise UsageError(
            f"no dead letter {letter_id} in {s.dlq_stream}", hint="`logs dlq list` shows the ids"
        )
    if fmt is TableOrJson.json:
        _out(json.dumps(letter.as_json(), ensure_ascii=False, indent=2))
        return
    doc = letter.as_json()
    for key in ("id", "failed_at", "stream_id", "reason"):
        _out(f"{key}: {doc[key]}")
    _out("fields:")
    for key, value in doc["fields"].items():
        _out(f"  {key}: {value}")


@edge
def dlq_replay(
    ctx: typer.Context,
    ids: Annotated[
        list[str] | None,
        typer.Argument(metavar="[ID]...", help="Letters to replay.", show_default=False),
    ] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every letter.")] = False,
    data_dir: DataDirOpt = None,
    redis_url: RedisUrlOpt = None,
    stream: StreamOpt = None,
) -> None:
    """Re-add dead letters' original fields to the stream; each letter is deleted only once its
    entry is back in the stream. Prints `<letter id> <new stream id>` per replayed letter.

    A replayed entry gets a new stream id (and so, without a timestamp of its own, a new event
    time). If it fails again, ingest dead-letters it again.

    Example:

        logs dlq replay --all
    """
    if replay_all == bool(ids):
        raise UsageError(
            "give dead letter ids or --all (not both)", hint="`logs dlq list` shows the ids"
        )
    s = settings(ctx, data_dir=data_dir, redis_url=redis_url, stream=stream)
    client = _client(s)
    if replay_all:
        letters = list(dlq_lib.scan(client, s.dlq_stream))
        missing: list[str] = []
    else:
        found = {i: dlq_lib.get(client, s.dlq_stream, i) for i in ids or []}
        letters = [d for d in found.values() if d is not None]
        missing = [i for i, d in found.items() if d is None]
    done = dlq_lib.replay(client, s.stream, s.dlq_stream, letters)
    for letter_id, new_id in done.added:
        _out(f"{letter_id} {new_id}")
    sys.stdout.flush()
    note(f"replayed {len(done.added)} dead letters into {s.stream}")
    if done.empty:
        note(
            f"kept {len(done.empty)} letters whose payload was lost before ingest read it: "
            f"nothing to replay ({', '.join(done.empty[:5])})"
        )
    gone = missing + done.missing
    if gone:
        raise UsageError(f"not in {s.dlq_stream}: {', '.join(gone[:10])}")


@edge
def dlq_purge(
    ctx: typer.Context,
    before: Annotated[
        str,
        typer.Option(
            "--before",
            help="Delete letters that failed before this: 7d, 12h, 2026-11-20, 2026-11-20T10:00Z.",
            show_default=False,
        ),
    ],
    data_dir: DataDirOpt = None,
    redis_url: RedisUrlOpt = None,
    stream: StreamOpt = None,
) -> None:
    """Delete dead letters older than a time (a duration ago, or a UTC date/time).

    Example:

        logs dlq purge --before 7d
    """
    from datetime import UTC, datetime

    from queries.timerange import parse_time

    cutoff = parse_time(before, datetime.now(UTC), flag="--before")
    s = settings(ctx, data_dir=data_dir, redis_url=redis_url, stream=stream)
    deleted = dlq_lib.purge(_client(s), s.dlq_stream, cutoff)
    note(f"purged {deleted} dead letters that failed before {status_lib.rfc3339_ms(cutoff)}")


def _preview(letter: dlq_lib.DeadLetter, width: int = 60) -> str:
    text = " ".join(f"{dlq_lib.text(k)}={dlq_lib.text(v)}" for k, v in letter.fields)
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    for line in status_lib.table_lines(header, rows):
        _out(line)


# -- config -----------------------------------------------------------------------------------


@edge
def config(
    ctx: typer.Context,
    fmt: Annotated[TableOrJson, _format_opt("table")] = TableOrJson.table,
    data_dir: DataDirOpt = None,
    redis_url: RedisUrlOpt = None,
    stream: StreamOpt = None,
    group: GroupOpt = None,
) -> None:
    """Show every setting, its value and where it came from: flag, env LOGS_X, file PATH or
    default. Passwords in URLs are masked.

    Example:

        LOGS_STREAM=app logs config -F json | jq .stream
    """
    resolved = resolve(ctx, data_dir=data_dir, redis_url=redis_url, stream=stream, group=group)
    values: dict[str, dict[str, Any]] = {}
    for name, source in resolved.sources.items():
        value = getattr(resolved.settings, name)
        if isinstance(value, Path):
            value = str(value)
        elif name == "redis_url" and value:
            value = mask_url(value)
        elif name == "receive_tokens" and value:
            value = "***"  # secrets are never printed
        values[name] = {"value": value, "source": source}
    if fmt is TableOrJson.json:
        _out(json.dumps(values, indent=2))
        return
    rows = [
        (name, "" if v["value"] is None else str(v["value"]), v["source"])
        for name, v in values.items()
    ]
    if resolved.settings.redis_url is None:
        rows = [(n, "(embedded)" if n == "redis_url" else v, src) for n, v, src in rows]
    _table(("SETTING", "VALUE", "SOURCE"), rows)


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("status", help=_status_help())(status)
    app.command("tail")(tail)
    app.command("config")(config)
    dlq_app.command("list")(dlq_list)
    dlq_app.command("show")(dlq_show)
    dlq_app.command("replay")(dlq_replay)
    dlq_app.command("purge")(dlq_purge)
    app.add_typer(dlq_app, name="dlq")
