"""`logs sql`'s work once its arguments are parsed, without Typer: the Typer command
(cli/query.py) and the fast path (cli/fast.py) both end here, so they answer alike.
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.cli.plain import note, utf8
from ingest.errors import UsageError

if TYPE_CHECKING:
    from ingest import config


def sql(
    s: config.Settings,
    query: str | None,
    *,
    file: Path | None = None,
    params: dict[str, str] | None = None,
    since: str | None = None,
    until: str | None = None,
    live: bool = False,
    fmt: str | None = None,
    output: Path | None = None,
    max_rows: int = 40,
    no_header: bool = False,
) -> None:
    """Run one statement and write its rows to stdout or to `output`."""
    from queries import render
    from queries.run import output_file, run_sql
    from queries.timerange import window as time_window

    text = _read_sql(query, file)
    chosen = render.pick_format(fmt, output, s.format)
    window = time_window(since, until)
    binary = chosen in render.BINARY
    if output is None and binary and sys.stdout.isatty():
        raise UsageError(
            f"{chosen.value} is binary: not writing it to a terminal",
            hint="add -o FILE.parquet, or pipe the output",
        )
    tty = output is None and sys.stdout.isatty()
    stdout = sys.stdout.buffer if binary else sys.stdout
    target = output_file(output, binary) if output is not None else nullcontext(stdout)
    with target as sink:
        rows = run_sql(
            s,
            text,
            sink,
            fmt=chosen,
            params=params or {},
            window=window,
            live=live,
            width=render.terminal_width() if tty else None,
            header=not no_header,
            max_rows=max_rows,
            footer=note,
        )
        sink.flush()
    if output is not None:
        note(f"wrote {rows:,} rows to {output}")


def _read_sql(query: str | None, file: Path | None) -> str:
    if query is not None and file is not None:
        raise UsageError("give the SQL as an argument or with --file, not both")
    if file is not None:
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read --file {file}: {exc.strerror or exc}") from None
        return utf8(raw, f"--file {file}")
    if query == "-":
        stdin = getattr(sys.stdin, "buffer", None)
        return utf8(stdin.read(), "the SQL on stdin") if stdin is not None else sys.stdin.read()
    if query is None:
        raise UsageError(
            "no SQL given", hint='logs sql "select level, count(*) from logs group by level"'
        )
    return query
