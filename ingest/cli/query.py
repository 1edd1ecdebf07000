"""Read-path commands: `logs sql`, `logs schema`, `logs export` — a thin edge over queries/.

Imports stay light here (typer + our pure modules); DuckDB, deltalake, pyarrow and redis are
imported by queries/ inside the command that needs them, so `logs --help` stays instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ingest.cli.common import (
    DataDirOpt,
    GroupOpt,
    LakeUriOpt,
    RedisUrlOpt,
    StreamOpt,
    command,
    settings,
)
from ingest.cli.lazy import LightCommand
from ingest.cli.plain import note
from ingest.errors import UsageError
from queries.formats import Format

FormatOpt = Annotated[
    Format | None,
    typer.Option(
        "--format",
        "-F",
        case_sensitive=False,
        show_default=False,
        help="Output format [env LOGS_FORMAT; default table, or from the -o extension]",
    ),
]
OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        show_default=False,
        help="Write to this file instead of stdout (atomically).",
    ),
]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        show_default=False,
        help="Only rows with ts >= this: 15m, 2h, 1d, 1h30m, 2026-11-20, "
        "2026-11-20T10:00Z, unix seconds, today, yesterday (naive = UTC).",
    ),
]
UntilOpt = Annotated[
    str | None,
    typer.Option(
        "--until", show_default=False, help="Only rows with ts < this (same forms as --since)."
    ),
]


class _PairsCommand(LightCommand):
    """`-p NAME VALUE`: Typer cannot declare a repeatable two-value option, click can."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.name == "param":
                param.nargs = 2


def _window(since: str | None, until: str | None) -> Any:
    from queries.timerange import window

    return window(since, until)


def sql(
    ctx: typer.Context,
    query: Annotated[
        str | None,
        typer.Argument(help="One SELECT statement; - reads it from stdin.", show_default=False),
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Read the SQL from this file.", show_default=False)
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            metavar="NAME VALUE",
            parser=lambda v: v,
            show_default=False,
            help="Bind $NAME to VALUE (repeatable); values are never spliced into the SQL.",
        ),
    ] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    live: Annotated[
        bool,
        typer.Option("--live", help="Add entries still in Redis (pending or not yet delivered)."),
    ] = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    max_rows: Annotated[
        int, typer.Option("--max-rows", help="Rows the table format shows (-1: all).")
    ] = 40,
    no_header: Annotated[
        bool, typer.Option("--no-header", help="csv/tsv without the header line.")
    ] = False,
    data_dir: DataDirOpt = None,
    lake_uri: LakeUriOpt = None,
    redis_url: RedisUrlOpt = None,
    stream: StreamOpt = None,
    group: GroupOpt = None,
) -> None:
    """Query the lake with SQL (DuckDB): views logs, rollups_hourly, rollups_daily, dead_letters.

    `logs` shows every entry once. --since/--until narrow it to [since, until) UTC and prune
    hour partitions; --live adds what Redis still holds. Read-only: one SELECT per call.

    Example:

    \b
        logs sql --since 1h "select level, count(*) from logs group by level"
        logs sql -F jsonl -p svc api 'select * from logs where service = $svc limit 5'
    """
    from ingest.cli.sqlcmd import sql as run

    s = settings(
        ctx, data_dir=data_dir, lake_uri=lake_uri, redis_url=redis_url, stream=stream, group=group
    )
    # `-p` yields (name, value) pairs (see _PairsCommand), though typed as strings for Typer.
    params = {str(pair[0]): str(pair[1]) for pair in param or []}
    run(
        s,
        query,
        file=file,
        params=params,
        since=since,
        until=until,
        live=live,
        fmt=fmt.value if fmt else None,
        output=output,
        max_rows=max_rows,
        no_header=no_header,
    )


def schema(
    ctx: typer.Context,
    view: Annotated[
        str | None, typer.Argument(help="One view (default: all).", show_default=False)
    ] = None,
    fmt: FormatOpt = None,
    data_dir: DataDirOpt = None,
    lake_uri: LakeUriOpt = None,
) -> None:
    """List the views `logs sql` offers, with their columns and types.

    Example:

    \b
        logs schema logs
    """
    from queries import render
    from queries.session import open_session
    from queries.views import VIEWS, VIEWS_HINT

    s = settings(ctx, data_dir=data_dir, lake_uri=lake_uri)
    if view is not None and view not in VIEWS:
        raise UsageError(f"no view named {view!r}", hint=VIEWS_HINT)
    chosen = render.pick_format(fmt.value if fmt else None, None, s.format)
    if chosen in render.BINARY and sys.stdout.isatty():
        raise UsageError(f"{chosen.value} is binary: not writing it to a terminal")
    session = open_session(s, views=[view] if view else VIEWS, read_dead_letters=False)
    names = ", ".join(f"'{v}'" for v in ([view] if view else VIEWS))
    cursor = session.con.execute(
        "SELECT table_name AS view, column_name AS column, data_type AS type "
        f"FROM information_schema.columns WHERE table_name IN ({names}) "
        f"ORDER BY list_position([{names}], table_name), ordinal_position"
    )
    tty = sys.stdout.isatty()
    sink = sys.stdout.buffer if chosen in render.BINARY else sys.stdout
    render.WRITERS[chosen](
        render.Result.of(cursor),
        sink,
        max_rows=-1,
        width=render.terminal_width() if tty else None,
        footer=note,
    )
    sink.flush()


def export(
    ctx: typer.Context,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            show_default=False,
            help="FILE.parquet for one file, or a directory for a hive-partitioned dataset.",
        ),
    ],
    since: SinceOpt = None,
    until: UntilOpt = None,
    all_rows: Annotated[bool, typer.Option("--all", help="Export the whole lake.")] = False,
    where: Annotated[
        str | None,
        typer.Option(
            "--where",
            help="SQL predicate on logs columns, e.g. \"level = 'ERROR'\".",
            show_default=False,
        ),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns", help="Comma-separated columns (default: all).", show_default=False
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    lake_uri: LakeUriOpt = None,
) -> None:
    """Export deduplicated log rows to plain Parquet (zstd, µs UTC) for any tool.

    Needs --since (optionally --until) or --all. Progress on stderr when it is a terminal.

    Example:

    \b
        logs export --since 1d --where "level in ('ERROR', 'FATAL')" -o errors.parquet
    """
    from ingest.status_table import human_size
    from queries import export as export_mod

    s = settings(ctx, data_dir=data_dir, lake_uri=lake_uri)
    if all_rows and (since or until):
        raise UsageError("--all exports everything: leave out --since/--until")
    if not all_rows and since is None:
        raise UsageError(
            "say what to export: --since (and --until), or --all",
            hint="logs export --since 1d -o day.parquet",
        )
    window = _window(since, until)
    picked = export_mod.parse_columns(columns)
    if sys.stderr.isatty():
        stats = _export_with_bar(export_mod, s, output, window, where, picked)
    else:
        stats = export_mod.export(s, output, window=window, where=where, columns=picked)
    note(
        f"exported {stats.rows:,} rows ({stats.hours} hours) to {stats.path}: "
        f"{human_size(stats.nbytes)} in {stats.seconds:.1f} s"
    )


def _export_with_bar(
    export_mod: Any, s: Any, output: Path, window: Any, where: str | None, picked: list[str]
) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("exporting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("hours  {task.fields[rows]:,} rows"),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("export", total=None, rows=0)

        def progress(done: int, total: int, rows: int) -> None:
            bar.update(task, completed=done, total=total, rows=rows)

        return export_mod.export(
            s, output, window=window, where=where, columns=picked, progress=progress
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    command(app, sql, cls=_PairsCommand)
    command(app, schema)
    command(app, export)
