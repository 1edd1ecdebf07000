"""Retention and table maintenance.

Raw partitions older than `retention_days` and rollup partitions older than
`rollup_retention_days` leave their tables in one commit each. Rollups outlive raw data, so a
day about to leave the raw table that no rollup holds yet (late data) is rolled up first, its
hours and the day, from its still complete raw rows. Files no snapshot needs any more
are deleted from disk by vacuum only once they are older than `vacuum_retention_hours`, so
queries on an older snapshot keep working. Then a checkpoint per changed table and cleanup of
expired Delta log entries, and spill files left by crashed compactions.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.errors import DataUnavailable
from ingest.lake import layout
from ingest.lake.location import Lake, lake_of
from ingest.upkeep import rollup, rollup_state

if TYPE_CHECKING:
    from deltalake import DeltaTable

log = logging.getLogger("logs.maintain")

TABLES = [layout.LOGS_TABLE, layout.ROLLUPS_HOURLY, layout.ROLLUPS_DAILY]
ORPHAN_SWEEP_HOURS = 1.0
"""Files never committed (a crashed writer's) are swept only with a window at least this long,
so an append still in flight is never mistaken for one."""


@dataclass
class MaintainReport:
    dry_run: bool = False
    expired: dict[str, list[str]] = field(default_factory=dict)
    """Table -> partitions (`DATE/HH` or `DATE`) removed by retention."""
    rolled_up: list[str] = field(default_factory=list)
    """Days (`DATE`) retention rolled up before deleting their raw hours: none had a rollup."""
    rolled_up_hours: int = 0
    """Hourly partitions computed for them (with dry_run: their raw hours)."""
    vacuumed: dict[str, int] = field(default_factory=dict)
    """Table -> files deleted from disk (or that would be, with dry_run)."""
    checkpoints: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        raw = self.expired.get(layout.LOGS_TABLE, [])
        rollups = sum(len(v) for k, v in self.expired.items() if k != layout.LOGS_TABLE)
        files = sum(self.vacuumed.values())
        text = f"retention {verb} {len(raw)} raw hours and {rollups} rollup partitions"
        if self.rolled_up:
            days = len(self.rolled_up)
            text += (
                f" ({'would first roll up' if self.dry_run else 'first rolled up'} {days} "
                f"day{'s' if days > 1 else ''} without rollups: {self.rolled_up_hours} hours, "
                f"{days} daily)"
            )
        text += f"; vacuum {verb} {files} files"
        if self.checkpoints:
            text += f"; checkpointed {', '.join(self.checkpoints)}"
        return text


def maintain(
    where: Lake | Path,
    *,
    retention_days: int,
    rollup_retention_days: int,
    vacuum_retention_hours: float,
    dry_run: bool = False,
    retention: bool = True,
    vacuum: bool = True,
    now: datetime | None = None,
) -> MaintainReport:
    """Apply retention, then vacuum, checkpoint and log cleanup on every table that exists."""
    lake = lake_of(where)
    started = time.monotonic()
    report = MaintainReport(dry_run=dry_run)
    tables = _open_all(lake)
    if retention:
        limits = {
            layout.LOGS_TABLE: retention_days,
            layout.ROLLUPS_HOURLY: rollup_retention_days,
            layout.ROLLUPS_DAILY: rollup_retention_days,
        }
        cutoffs = {
            name: rollup.retention_cutoff(days, now).strftime("%Y-%m-%d")
            for name, days in limits.items()
        }
        if _roll_up_first(lake, tables, cutoffs, report):
            tables = _open_all(lake)  # the rollup tables moved, or were just created
        for name, table in tables.items():
            expired = _expire(table, cutoffs[name], dry_run)
            if expired:
                report.expired[name] = expired
        if not dry_run:
            _forget(lake, report.expired)
    if vacuum:
        for name, table in tables.items():
            report.vacuumed[name] = _vacuum(lake, table, vacuum_retention_hours, dry_run)
            if not dry_run and _checkpoint(lake, name, table):
                report.checkpoints.append(name)
        if not dry_run:
            _sweep_spill(lake.scratch)
    report.seconds = time.monotonic() - started
    log.debug("maintain: %s in %.1f s", report.summary(), report.seconds)
    return report


def _open_all(lake: Lake) -> dict[str, DeltaTable]:
    return {name: t for name in TABLES if (t := _open(lake, name)) is not None}


def _open(lake: Lake, name: str) -> DeltaTable | None:
    from ingest.lake.tables import open_delta

    return open_delta(lake, name)


def _partitions(table: DeltaTable) -> set[tuple[str, ...]]:
    import pyarrow as pa

    actions = pa.table(table.get_add_actions(flatten=True))
    columns = [f"partition.{c}" for c in table.metadata().partition_columns]
    data = actions.select(columns).to_pydict()
    return set(zip(*(data[c] for c in columns), strict=True)) if columns else set()


def _expire(table: DeltaTable, cutoff: str, dry_run: bool) -> list[str]:
    """Remove the partitions dated before `cutoff` (`YYYY-MM-DD`) in one commit: a partition
    predicate drops whole files, nothing is rewritten."""
    expired = sorted("/".join(p) for p in _partitions(table) if p[0] < cutoff)
    if expired and not dry_run:
        from deltalake import CommitProperties

        # The cutoff is our own formatted date: nothing user-supplied reaches the predicate.
        table.delete(
            f"date < '{cutoff}'",
            commit_properties=CommitProperties(custom_metadata={"loglake": "retention"}),
        )
    return expired


def _roll_up_first(
    lake: Lake, tables: dict[str, DeltaTable], cutoffs: dict[str, str], report: MaintainReport
) -> bool:
    """Roll up the days retention is about to delete that rollups_daily does not hold (and
    would keep: not past rollup retention). Their raw rows are complete: retention deletes a
    date whole, after this. A day that has a rollup is left alone, as `logs rollup` does: its
    raw rows may be only late ones arrived after the date was deleted. True if it wrote."""
    raw = tables.get(layout.LOGS_TABLE)
    if raw is None:
        return False
    daily = tables.get(layout.ROLLUPS_DAILY)
    rolled = {p[0] for p in _partitions(daily)} if daily is not None else set()
    floor, cutoff = cutoffs[layout.ROLLUPS_DAILY], cutoffs[layout.LOGS_TABLE]
    hours = sorted(p for p in _partitions(raw) if floor <= p[0] < cutoff and p[0] not in rolled)
    report.rolled_up = sorted({date for date, _ in hours})
    if not hours or report.dry_run:
        report.rolled_up_hours = len(hours)
        return False
    done = rollup.rollup(lake, days=set(report.rolled_up), rebuild=True)
    report.rolled_up_hours = len(done.hours)
    log.debug("maintain: rolled up %s before retention: %s", report.rolled_up, done.summary())
    return True


def _forget(lake: Lake, expired: dict[str, list[str]]) -> None:
    """Keep the rollup state in step with the tables (compaction's record is the file names:
    it leaves with the files)."""
    if layout.ROLLUPS_HOURLY in expired:
        rollup_state.forget(lake, "hourly", expired[layout.ROLLUPS_HOURLY])
    if layout.ROLLUPS_DAILY in expired:
        rollup_state.forget(lake, "daily", expired[layout.ROLLUPS_DAILY])


def _vacuum(lake: Lake, table: DeltaTable, retention_hours: float, dry_run: bool) -> int:
    # deltalake counts whole hours; round up so a file is never deleted early.
    hours = max(0, math.ceil(retention_hours))
    full = retention_hours >= ORPHAN_SWEEP_HOURS
    try:
        candidates = table.vacuum(
            retention_hours=hours, dry_run=True, enforce_retention_duration=False, full=full
        )
        if dry_run or not candidates:
            return len(candidates)
        present = _present(lake, table, candidates)
        table.vacuum(
            retention_hours=hours, dry_run=False, enforce_retention_duration=False, full=full
        )
        return present
    except OSError as exc:
        if not lake.is_local:
            from ingest.lake.errors import storage_error

            raise storage_error(exc, lake, "vacuum") from None
        raise DataUnavailable(f"vacuum of {table.table_uri}: {exc}") from exc


def _present(lake: Lake, table: DeltaTable, candidates: list[str]) -> int:
    """Candidates still there (vacuum also lists files a crash already took). A remote lake's
    are counted as listed: a HEAD per file is not worth a log line."""
    if not lake.is_local:
        return len(candidates)
    root = Path(table.table_uri.removeprefix("file://"))
    return sum(1 for c in candidates if (root / c).exists() or Path(c).exists())


def _checkpoint(lake: Lake, name: str, table: DeltaTable) -> bool:
    """Checkpoint when the table moved since the last one, then drop expired log files."""
    import json

    from ingest.lake.store import LakeStore

    table.update_incremental()
    try:
        raw = LakeStore(lake).read(f"{name}/_delta_log/_last_checkpoint")
        last = json.loads(raw or b"")["version"]
    except (OSError, ValueError, KeyError):
        last = -1
    if last >= table.version():
        return False
    table.create_checkpoint()
    table.cleanup_metadata()
    return True


def _sweep_spill(data_dir: Path) -> None:
    """Leftover work files of crashed compactions (their process is gone)."""
    from ingest.upkeep import compact

    compact.spill_root(data_dir)
