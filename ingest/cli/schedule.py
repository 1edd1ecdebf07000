"""Lake upkeep commands: `logs compact`, `logs rollup`, `logs maintain`, `logs schedule`.

Each prints one summary line on stderr (stdout stays empty: none of them produces data) and
draws progress only when stderr is a terminal.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import typer

from ingest.cli.common import (
    DataDirOpt,
    LakeUriOpt,
    RedisUrlOpt,
    StreamOpt,
    command,
    settings,
)
from ingest.cli.plain import note
from ingest.errors import UsageError

SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="Only partitions ending after this: 6h, 1h30m, 2d, today, 2024-05-01, "
        "2024-05-01T13:00 or a unix time.",
        show_default=False,
    ),
]


def parse_since(text: str | None) -> datetime | None:
    """`--since`, in the one grammar every command reads (queries/timerange.py)."""
    if text is None:
        return None
    from queries.timerange import parse_time

    return parse_time(text, datetime.now(UTC))


def _size(text: str | None) -> int | None:
    """`134217728`, `128MiB`, `64MB`, `512k` -> bytes."""
    if text is None:
        return None
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?b?\s*$", text.lower())
    if not match:
        raise UsageError(f"--target-file-size: expected bytes like 128MiB, got {text!r}")
    factor = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match[2]]
    return int(float(match[1]) * factor)


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr when it is a terminal; None (no drawing) otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def compact(
    ctx: typer.Context,
    hour: Annotated[
        str | None,
        typer.Option(
            "--hour", help="Only this hour, closed or not: 2024-05-01/13.", show_default=False
        ),
    ] = None,
    since: SinceOpt = None,
    all_hours: Annotated[
        bool, typer.Option("--all", help="Every dirty closed hour (the default).")
    ] = False,
    target_file_size: Annotated[
        str | None,
        typer.Option(
            "--target-file-size",
            help="Bytes per output file, e.g. 128MiB [env LOGS_TARGET_FILE_SIZE]",
            show_default=False,
        ),
    ] = None,
    grace: Annotated[
        float | None,
        typer.Option(
            "--grace",
            help="Seconds after its end an hour counts as closed [env "
            "LOGS_COMPACT_GRACE; default 600]",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    lake_uri: LakeUriOpt = None,
) -> None:
    """Rewrite dirty closed hours as a few large files sorted by time, each entry once.

    An hour is dirty when it has more than one file and compaction has not written exactly
    those. Each hour is swapped in one Delta commit; running queries keep their snapshot.

    Example:

        logs compact --since 24h
    """
    from ingest.upkeep import compact as compact_mod

    if hour is not None and (since is not None or all_hours):
        raise UsageError("--hour cannot be combined with --since or --all")
    if since is not None and all_hours:
        raise UsageError("--since and --all are alternatives: pick one")
    s = settings(
        ctx,
        data_dir=data_dir,
        lake_uri=lake_uri,
        target_file_size=_size(target_file_size),
        compact_grace=grace,
    )
    from ingest.lake.location import lake_of

    with _progress("compacting") as progress:
        report = compact_mod.compact(
            lake_of(s),
            target_file_size=s.target_file_size,
            grace=s.compact_grace,
            since=parse_since(since),
            hour=hour,
            progress=progress,
        )
    note(f"compacted {report.summary()} in {report.seconds:.1f} s")


def rollup(
    ctx: typer.Context,
    since: SinceOpt = None,
    all_partitions: Annotated[
        bool,
        typer.Option(
            "--all", help="Recompute every partition, not only those whose raw files changed."
        ),
    ] = False,
    hourly_only: Annotated[bool, typer.Option("--hourly", help="Only rollups_hourly.")] = False,
    daily_only: Annotated[bool, typer.Option("--daily", help="Only rollups_daily.")] = False,
    data_dir: DataDirOpt = None,
    lake_uri: LakeUriOpt = None,
) -> None:
    """Bring rollups_hourly and rollups_daily up to date with the raw logs.

    Only hours and days whose raw files changed since their last rollup are recomputed (from
    deduplicated raw rows), each replacing exactly its partitions; a rerun changes nothing.

    Example:

        logs rollup --since 2d
    """
    from ingest.lake.location import lake_of
    from ingest.upkeep import rollup as rollup_mod

    if since is not None and all_partitions:
        raise UsageError("--since and --all are alternatives: pick one")
    s = settings(ctx, data_dir=data_dir, lake_uri=lake_uri)
    with _progress("rolling up") as progress:
        report = rollup_mod.rollup(
            lake_of(s),
            hourly=not daily_only,
            daily=not hourly_only,
            since=parse_since(since),
            rebuild=all_partitions,
            retention_days=s.retention_days,
            progress=progress,
        )
    note(f"rolled up {report.summary()} in {report.seconds:.1f} s")


def maintain(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be deleted.")
    ] = False,
    data_dir: DataDirOpt = None,
    lake_uri: LakeUriOpt = None,
) -> None:
    """Apply retention, vacuum old files, checkpoint the tables.

    Raw partitions older than retention_days (default 30) and rollups older than
    rollup_retention_days (default 400) leave the tables; a day about to leave that has no
    rollup yet (late data) is rolled up first. Files no longer needed are deleted from disk
    once older than vacuum_retention_hours (default 1).

    Example:

        logs maintain --dry-run
    """
    from ingest.lake.location import lake_of
    from ingest.upkeep import maintain as maintain_mod

    s = settings(ctx, data_dir=data_dir, lake_uri=lake_uri)
    report = maintain_mod.maintain(
        lake_of(s),
        retention_days=s.retention_days,
        rollup_retention_days=s.rollup_retention_days,
        vacuum_retention_hours=s.vacuum_retention_hours,
        dry_run=dry_run,
    )
    if report.rolled_up:
        note(
            f"rollups: {len(report.rolled_up)} day{'s' if len(report.rolled_up) > 1 else ''} "
            "without rollups "
            f"{'to roll up' if dry_run else 'rolled up'} before retention "
            f"({_shown(report.rolled_up)})"
        )
    for table, partitions in report.expired.items():
        note(
            f"{table}: {len(partitions)} partitions {'to delete' if dry_run else 'deleted'}"
            f" ({_shown(partitions)})"
        )
    note(f"maintain: {report.summary()} in {report.seconds:.1f} s")


def _shown(names: list[str]) -> str:
    return ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")


def schedule(
    ctx: typer.Context,
    data_dir: DataDirOpt = None,
    lake_uri: LakeUriOpt = None,
    redis_url: RedisUrlOpt = None,
    stream: StreamOpt = None,
) -> None:
    """Run compaction, rollups, retention and maintenance on their schedules until stopped.

    Intervals and times come from logs.toml / LOGS_* (compact_interval, rollup_minute,
    nightly_at, maintain_interval). Only the holder of a Redis lease runs jobs; start a second
    scheduler and it stands by, taking over when the first is gone. Ctrl-C/SIGTERM stop it.

    Example:

        LOGS_COMPACT_INTERVAL=60 logs schedule
    """
    from ingest.upkeep import scheduler

    s = settings(ctx, data_dir=data_dir, lake_uri=lake_uri, redis_url=redis_url, stream=stream)
    started = time.monotonic()
    result = scheduler.run(s)
    note(f"scheduler stopped after {time.monotonic() - started:.0f} s ({result.runs} job runs)")
    if result.job_still_running:
        # The job's thread would keep the interpreter alive; its commits are atomic and the
        # next scheduler redoes its work, so leaving now loses nothing.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    command(app, compact)
    command(app, rollup)
    command(app, maintain)
    command(app, schedule)
