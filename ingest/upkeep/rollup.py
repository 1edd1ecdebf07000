"""Rollups: Delta tables `rollups_hourly` (per date, hour, service, level) and `rollups_daily`
(per date, service, level), computed from deduplicated raw rows with the columns of
`schema.ROLLUP_*_COLUMNS`. Daily rows come from raw rows too, never from hourly percentiles.

Only partitions whose raw files changed are recomputed: `_loglake/rollups.json` in the lake
(beside the tables, so every host sees it) remembers the file set each partition was computed
from (`{"hourly": {"DATE/HH": [files]}, "daily": {"DATE": [files]}}`, paths relative to the
logs table). It is written after the rollup commit by the holder of the rollup lock (locks.py):
a crash in between only makes partitions recomputed. Each run writes at most one commit per
table, replacing exactly the recomputed partitions; a rerun with nothing changed writes nothing.
A remote lake's raw files are read through Arrow datasets (ingest/lake/datasets.py).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.errors import DataUnavailable
from ingest.lake import layout
from ingest.lake import state as lakestate
from ingest.lake.location import Lake, lake_of
from ingest.lake.schema import (
    MEASURES,
    ROLLUP_DAILY_COLUMNS,
    ROLLUP_HOURLY_COLUMNS,
    arrow_schema,
)
from ingest.lake.state import HourFiles
from ingest.upkeep.locks import lake_lock
from ingest.upkeep.rollup_state import load_state, save_state
from ingest.upkeep.rollup_state import stale_hours as stale_hours  # status, scheduler

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from ingest.lake.datasets import Fragments

log = logging.getLogger("logs.rollup")

FILE_COLUMNS = "ts, level, service, host, message, trace_id, attrs, stream_id, ingested_at"
MEMORY_LIMIT = "1GB"
"""DuckDB's budget while rolling up; beyond it DuckDB spills to state/rollup-spill."""
Progress = Callable[[int, int], None]
"""Called with (partitions done, partitions to do)."""


@dataclass
class RollupReport:
    hours: list[str] = field(default_factory=list)
    """`DATE/HH` partitions of rollups_hourly rewritten."""
    days: list[str] = field(default_factory=list)
    """`DATE` partitions of rollups_daily rewritten."""
    rows: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{len(self.hours)} hours, {len(self.days)} days recomputed ({self.rows:,} rollup rows)"
        )


def rollup(
    where: Lake | Path,
    *,
    hourly: bool = True,
    daily: bool = True,
    since: datetime | None = None,
    ended_before: datetime | None = None,
    rebuild: bool = False,
    retention_days: int | None = None,
    days: Collection[str] | None = None,
    progress: Progress | None = None,
) -> RollupReport:
    """Recompute the dirty hourly and daily partitions.

    `since` keeps partitions ending after it; `ended_before` keeps only partitions (hours, days)
    that ended by then (the scheduler leaves the open hour alone); `rebuild` ignores the state
    and recomputes every selected partition. Days older than `retention_days` are never
    recomputed: their raw rows are (being) deleted, so late rows there would turn complete
    rollups into partial ones. `days` (`YYYY-MM-DD`) selects exactly those days and their hours,
    whatever their age and the other filters: retention names days no rollup holds yet, whole.
    """
    lake = lake_of(where)
    started = time.monotonic()
    report = RollupReport()
    with lake_lock(lake, "rollup"):
        from ingest.lake.tables import open_delta, table_exists

        raw = open_delta(lake)
        if raw is None:
            return report
        # One snapshot for the whole run: the files we read are the files we record.
        hours = lakestate.hours_of(raw)
        compacted = lakestate.compacted_of(hours)
        state = load_state(lake)
        if not table_exists(lake, layout.ROLLUPS_HOURLY):
            state["hourly"] = {}
        if not table_exists(lake, layout.ROLLUPS_DAILY):
            state["daily"] = {}

        oldest = None
        if retention_days is not None:
            oldest = retention_cutoff(retention_days)

        def keep(start: datetime, end: datetime) -> bool:
            if days is not None:
                return f"{start:%Y-%m-%d}" in days
            return (
                (since is None or end > since)
                and (ended_before is None or end <= ended_before)
                and (oldest is None or start >= oldest)
            )

        todo_hours: list[HourFiles] = []
        if hourly:
            for key in sorted(hours):
                h = hours[key]
                start = layout.hour_start(h.date, h.hour)
                if keep(start, start + timedelta(hours=1)) and (
                    rebuild or state["hourly"].get(key) != list(h.files)
                ):
                    todo_hours.append(h)
        todo_days: dict[str, list[HourFiles]] = {}
        if daily:
            by_day: dict[str, list[HourFiles]] = {}
            for h in hours.values():
                by_day.setdefault(h.date, []).append(h)
            for date in sorted(by_day):
                start = layout.hour_start(date, "00")
                files = sorted(f for h in by_day[date] for f in h.files)
                if keep(start, start + timedelta(days=1)) and (
                    rebuild or state["daily"].get(date) != files
                ):
                    todo_days[date] = sorted(by_day[date], key=lambda h: h.key)
        total = len(todo_hours) + len(todo_days)
        if not total:
            report.seconds = time.monotonic() - started
            return report

        con = _connect(lake.scratch)
        source = _Source(lake, raw)
        done = 0
        try:
            if todo_hours:
                parts = []
                for h in todo_hours:
                    parts.append(_aggregate(con, source, [h], compacted, per_hour=True))
                    done += 1
                    if progress is not None:
                        progress(done, total)
                report.rows += _replace(
                    lake,
                    layout.ROLLUPS_HOURLY,
                    ROLLUP_HOURLY_COLUMNS,
                    ["date", "hour"],
                    parts,
                    [(h.date, h.hour) for h in todo_hours],
                )
                report.hours = [h.key for h in todo_hours]
                save_state(
                    lake,
                    "hourly",
                    {h.key: list(h.files) for h in todo_hours},
                    keep_keys=set(hours),
                )
            if todo_days:
                parts = []
                for day_hours in todo_days.values():
                    parts.append(_aggregate(con, source, day_hours, compacted, per_hour=False))
                    done += 1
                    if progress is not None:
                        progress(done, total)
                report.rows += _replace(
                    lake,
                    layout.ROLLUPS_DAILY,
                    ROLLUP_DAILY_COLUMNS,
                    ["date"],
                    parts,
                    [(d,) for d in todo_days],
                )
                report.days = list(todo_days)
                save_state(
                    lake,
                    "daily",
                    {d: sorted(f for h in hs for f in h.files) for d, hs in todo_days.items()},
                    keep_keys={h.date for h in hours.values()},
                )
        finally:
            con.close()
    report.seconds = time.monotonic() - started
    log.debug("rollup: %s in %.1f s", report.summary(), report.seconds)
    return report


# -- computing ------------------------------------------------------------------------------------


def _measure(name: str) -> str:
    # Only JSON numbers count: a string "12" in attrs is not a measurement.
    return (
        f"case when json_type(attrs, '$.{name}') in ('BIGINT', 'UBIGINT', 'DOUBLE') "
        f"then json_extract(attrs, '$.{name}')::DOUBLE end"
    )


_MEASURE_SQL = ",\n".join(
    f"quantile_cont({name}, {q}) as {name}_{stat}"
    if stat != "max"
    else f"max({name}) as {name}_max"
    for name in MEASURES
    for stat, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", None))
)


def aggregate_sql(source: str, partition: str) -> str:
    """The rollup query over a relation `source` of log rows (public: tests recompute with it)."""
    measures = ", ".join(f"{_measure(m)} as {m}" for m in MEASURES)
    return f"""
        select {partition}, service, level,
            count(*)::BIGINT as count,
            count(*) filter (where level in ('ERROR', 'FATAL'))::BIGINT as error_count,
            coalesce(sum(strlen(message)), 0)::BIGINT as message_bytes,
            count(distinct host)::BIGINT as distinct_hosts,
            min(ts) as first_ts,
            max(ts) as last_ts,
            {_MEASURE_SQL}
        from (select *, {measures} from {source})
        group by all
        order by all
    """


class _Source:
    """Raw files as a DuckDB relation: `read_parquet` of local paths, or a registered Arrow
    dataset of a remote lake's files."""

    def __init__(self, lake: Lake, raw: Any) -> None:
        self.lake = lake
        self.root = lake.table_path() if lake.is_local else None
        self.fragments: Fragments | None = None
        if not lake.is_local:
            from ingest.lake.datasets import Fragments

            self.fragments = Fragments(raw)

    def relation(
        self, con: duckdb.DuckDBPyConnection, name: str, files: list[str], params: dict[str, Any]
    ) -> str:
        if self.fragments is None:
            assert self.root is not None
            params[name] = [str(self.root / f) for f in files]
            return f"read_parquet(${name})"
        con.register(f"_rollup_{name}", self.fragments.subset(files))
        return f"_rollup_{name}"


def _aggregate(
    con: duckdb.DuckDBPyConnection,
    source: _Source,
    hours: list[HourFiles],
    compacted: dict[str, list[str]],
    per_hour: bool,
) -> pa.Table:
    """Rollup rows of `hours` (one hour, or every hour of one day), duplicates removed from the
    hours that may hold them."""
    clean = [f for h in hours if lakestate.is_clean(h, compacted) for f in h.files]
    dirty = [f for h in hours if not lakestate.is_clean(h, compacted) for f in h.files]
    sources = []
    params: dict[str, Any] = {}
    if clean:
        scan = source.relation(con, "clean", clean, params)
        sources.append(f"select {FILE_COLUMNS} from {scan}")
    if dirty:
        # Copies of one stream_id are identical rows, any of them will do.
        scan = source.relation(con, "dirty", dirty, params)
        sources.append(f"select distinct on (stream_id) {FILE_COLUMNS} from {scan}")
    date = hours[0].date
    partition = "$date::VARCHAR as date" + (", $hour::VARCHAR as hour" if per_hour else "")
    params["date"] = date
    if per_hour:
        params["hour"] = hours[0].hour
    sql = aggregate_sql("(" + " union all ".join(sources) + ")", partition)
    try:
        relation = con.sql(sql, params=params)
        assert relation is not None
        return relation.to_arrow_table()
    except Exception as exc:  # duckdb.IOException and friends, imported lazily
        if type(exc).__name__ in ("IOException", "HTTPException", "InvalidInputException"):
            from ingest.lake.errors import scrub

            raise DataUnavailable(f"rollup of {date}: {scrub(str(exc), source.lake)}") from exc
        raise


def _connect(scratch: Path) -> duckdb.DuckDBPyConnection:
    import duckdb

    spill = layout.state_dir(scratch) / "rollup-spill"
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        config={
            "memory_limit": MEMORY_LIMIT,
            "temp_directory": str(spill),
            "threads": max(1, min(4, os.cpu_count() or 1)),
        }
    )
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    return con


# -- writing --------------------------------------------------------------------------------------


def _replace(
    lake: Lake,
    table_name: str,
    columns: list[tuple[str, str, bool]],
    partition_by: list[str],
    parts: list[pa.Table],
    partitions: list[tuple[str, ...]],
) -> int:
    """Replace exactly `partitions` of a rollup table with `parts`, in one commit."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from ingest.lake.tables import commit_properties
    from ingest.lake.writer import open_table

    schema = arrow_schema(columns)
    where = lake.table_path(table_name) if lake.is_local else lake.table_uri(table_name)
    table = open_table(where, schema, partition_by, lake=lake)
    data = pa.concat_tables([p.select(schema.names).cast(schema) for p in parts])
    # Our own partition values (dates and hours from the snapshot), one term per date.
    by_date: dict[str, list[str]] = {}
    for values in partitions:
        by_date.setdefault(values[0], []).extend(values[1:])
    if partition_by == ["date"]:
        predicate = "date IN (" + ", ".join(f"'{d}'" for d in sorted(by_date)) + ")"
    else:
        predicate = " OR ".join(
            f"(date = '{d}' AND hour IN (" + ", ".join(f"'{h}'" for h in sorted(hs)) + "))"
            for d, hs in sorted(by_date.items())
        )
    write_deltalake(
        table,
        data,
        mode="overwrite",
        predicate=predicate,
        commit_properties=commit_properties("rollup"),
    )
    return data.num_rows


def retention_cutoff(days: int, now: datetime | None = None) -> datetime:
    """Midnight UTC `days` days ago: raw dates before it are outside retention."""
    now = now or datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days)


def ended_hours_before(now: datetime | None = None) -> datetime:
    """The start of the current hour: every hour before it has ended."""
    now = now or datetime.now(UTC)
    return now.replace(minute=0, second=0, microsecond=0)
