"""`logs dlq list|show|replay|purge`: the dead letters, read, replayed and purged."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from ingest.cli.common import (
    DataDirOpt,
    RedisUrlOpt,
    StreamOpt,
    command,
    format_option,
    out,
    out_table,
    redis_client,
    settings,
)
from ingest.cli.ops import TableOrJson
from ingest.cli.plain import note
from ingest.errors import UsageError

if TYPE_CHECKING:
    from ingest.dlq import DeadLetter


class ListFormat(StrEnum):
    table = "table"
    jsonl = "jsonl"
    json = "json"


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


def dlq_list(
    ctx: typer.Context,
    count: Annotated[int, typer.Option("--count", "-n", help="Newest letters to show.")] = 50,
    fmt: Annotated[ListFormat, format_option("table")] = ListFormat.table,
    data_dir: DataDirOpt = None,
    redis_url: RedisUrlOpt = None,
    stream: StreamOpt = None,
) -> None:
    """List the newest dead letters with their reasons (oldest of them first).

    Example:

        logs dlq list -n 20 -F jsonl | jq -r .reason | sort | uniq -c
    """
    if count < 1:
        raise UsageError(f"--count must be at least 1, got {count}")
    from ingest import dlq as dlq_lib
    from ingest import status as status_lib

    s = settings(ctx, data_dir=data_dir, redis_url=redis_url, stream=stream)
    client = redis_client(s)
    total = client.xlen(s.dlq_stream)
    letters = dlq_lib.newest(client, s.dlq_stream, count)
    if fmt is ListFormat.table:
        # The columns of the dead_letters view, in its order.
        rows = [
            (
                d.dlq_id,
                d.stream_id,
                status_lib.rfc3339_ms(d.failed_at) if d.failed_at else "",
                d.reason,
                _preview(d),
            )
            for d in letters
        ]
        if rows:
            out_table(("DLQ ID", "STREAM ID", "FAILED AT", "REASON", "FIELDS"), rows)
    elif fmt is ListFormat.jsonl:
        for d in letters:
            out(json.dumps(d.as_json(), ensure_ascii=False))
    else:
        out(json.dumps([d.as_json() for d in letters], ensure_ascii=False, indent=2))
    if total == 0:
        note(f"no dead letters in {s.dlq_stream}")
    elif total > len(letters):
        note(f"{len(letters)} newest of {total:,} dead letters shown (-n to see more)")


def dlq_show(
    ctx: typer.Context,
    letter_id: Annotated[
        str,
        typer.Argument(
            metavar="ID", help="Dead letter id (from `logs dlq list`).", show_default=False
        ),
    ],
    fmt: Annotated[TableOrJson, format_option("table")] = TableOrJson.table,
    data_dir: DataDirOpt = None,
    redis_url: RedisUrlOpt = None,
    stream: StreamOpt = None,
) -> None:
    """Show one dead letter with all its original fields.

    Example:

        logs dlq show 1795399178064-0
    """
    from ingest import dlq as dlq_lib

    dlq_lib.check_id(letter_id)  # before reaching for Redis: a typo is a usage error
    s = settings(ctx, data_dir=data_dir, redis_url=redis_url, stream=stream)
    letter = dlq_lib.get(redis_client(s), s.dlq_stream, letter_id)
    if letter is None:
        raise UsageError(
            f"no dead letter {letter_id} in {s.dlq_stream}", hint="`logs dlq list` shows the ids"
        )
    if fmt is TableOrJson.json:
        out(json.dumps(letter.as_json(), ensure_ascii=False, indent=2))
        return
    doc = letter.as_json()
    for key in ("dlq_id", "stream_id", "failed_at", "reason"):
        out(f"{key}: {doc[key]}")
    out("fields:")
    for key, value in doc["fields"].items():
        out(f"  {key}: {value}")


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
    from ingest import dlq as dlq_lib

    s = settings(ctx, data_dir=data_dir, redis_url=redis_url, stream=stream)
    client = redis_client(s)
    if replay_all:
        letters = list(dlq_lib.scan(client, s.dlq_stream))
        missing: list[str] = []
    else:
        found = {i: dlq_lib.get(client, s.dlq_stream, i) for i in ids or []}
        letters = [d for d in found.values() if d is not None]
        missing = [i for i, d in found.items() if d is None]
    done = dlq_lib.replay(client, s.stream, s.dlq_stream, letters)
    for letter_id, new_id in done.added:
        out(f"{letter_id} {new_id}")
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
    """Delete dead letters that failed before a time (a duration ago, or a UTC date/time).

    Letters are cut by their `failed_at` (see `logs dlq list`), not by their id: every letter
    is looked at.

    Example:

        logs dlq purge --before 7d
    """
    from datetime import UTC, datetime

    from queries.timerange import parse_time

    cutoff = parse_time(before, datetime.now(UTC), flag="--before")
    from ingest import dlq as dlq_lib
    from ingest import status as status_lib

    s = settings(ctx, data_dir=data_dir, redis_url=redis_url, stream=stream)
    purged = dlq_lib.purge(redis_client(s), s.dlq_stream, cutoff)
    note(
        f"purged {purged.deleted} dead letters that failed before "
        f"{status_lib.rfc3339_ms(cutoff)} ({purged.examined:,} looked at)"
    )


def _preview(letter: DeadLetter, width: int = 60) -> str:
    from ingest import dlq as dlq_lib

    text = " ".join(f"{dlq_lib.text(k)}={dlq_lib.text(v)}" for k, v in letter.fields)
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


def register(app: typer.Typer) -> None:
    command(dlq_app, dlq_list, "list")
    command(dlq_app, dlq_show, "show")
    command(dlq_app, dlq_replay, "replay")
    command(dlq_app, dlq_purge, "purge")
    app.add_typer(dlq_app, name="dlq")
