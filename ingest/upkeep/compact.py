"""Compaction of the `logs` table: each dirty closed hour becomes a few large zstd files, sorted
by `ts`, each `stream_id` once, swapped in by ONE Delta commit (add the new files, remove
exactly the files read). Readers see the old file set or the new one, never both; the old
files stay on disk until vacuum. The commit's files are recorded with lakestate, which is what
makes the hour clean for readers.

Memory stays bounded for any hour size: the hour is cut into time slices (a per-second row
histogram); each Parquet piece (a small file, or a row group of a big one) whose `ts` range
lies in one slice is read when that slice is merged, pieces spanning slices are split into
spill files under state/ first. Each slice is deduplicated and sorted, and Polars' streaming
Parquet sink writes the slices in order. Copies of one `stream_id` are identical rows (decoding
is deterministic), so they always fall into the same slice.
"""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import math
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ingest import procs
from ingest.errors import DataUnavailable, UsageError
from ingest.lake import layout
from ingest.lake import state as lakestate
from ingest.lake.schema import arrow_schema
from ingest.lake.state import HourFiles

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa
    from deltalake import DeltaTable
    from deltalake.transaction import AddAction

log = logging.getLogger("logs.compact")

SLICE_BYTES = 48 * 1024 * 1024
"""In-memory bytes of one time slice (peak RSS is a few times this: sort, Arrow copies)."""
ROW_GROUP_ROWS = 131_072
"""Rows per Parquet row group of compacted files: small enough for DuckDB to prune by `ts`."""
ZSTD_LEVEL = 3
SPILL_DIR = "compact-spill"
CONFLICT_RETRIES = 2
"""Extra attempts, within one run, for hours whose commit lost to a concurrent append."""

_HOUR_KEY = re.compile(r"^\d{4}-\d{2}-\d{2}/\d{2}$")
Progress = Callable[[int, int], None]
"""Called with (hours done, hours to do)."""


@dataclass
class HourResult:
    key: str
    outcome: str
    """`compacted`, `conflict` (a concurrent write to the hour won; retried later), `clean`
    (someone compacted it meanwhile) or `vanished` (deleted meanwhile)."""
    files_before: int = 0
    files_after: int = 0
    rows_before: int = 0
    rows_after: int = 0
    seconds: float = 0.0


@dataclass
class CompactReport:
    hours: list[HourResult] = field(default_factory=list)
    seconds: float = 0.0
    conflicts_seen: int = 0
    """Commits given up because the hour changed meanwhile (each retried or left for later)."""

    @property
    def compacted(self) -> list[HourResult]:
        return [h for h in self.hours if h.outcome == "compacted"]

    @property
    def conflicts(self) -> list[HourResult]:
        return [h for h in self.hours if h.outcome == "conflict"]

    def summary(self) -> str:
        done = self.compacted
        before = sum(h.files_before for h in done)
        after = sum(h.files_after for h in done)
        dropped = sum(h.rows_before - h.rows_after for h in done)
        rows = sum(h.rows_after for h in done)
        text = (
            f"{len(done)} hours, {before} files -> {after}, {rows:,} rows "
            f"({dropped:,} duplicates dropped)"
        )
        if self.conflicts:
            text += f", {len(self.conflicts)} hours busy (retried next run)"
        return text


def check_hour_key(key: str) -> str:
    """`YYYY-MM-DD/HH` (also accepts `YYYY-MM-DDTHH`), validated."""
    key = key.strip().replace("T", "/").replace(" ", "/")
    if not _HOUR_KEY.match(key):
        raise UsageError(f"hour must look like 2024-05-01/13, got {key!r}")
    date, hour = key.split("/")
    try:
        layout.hour_start(date, hour)
    except ValueError:
        raise UsageError(f"no such hour: {key!r}") from None
    return key


def is_closed(hour: HourFiles, now: datetime, grace: float) -> bool:
    """Closed: the hour ended more than `grace` seconds ago (late rows are still possible)."""
    return layout.hour_end(hour.date, hour.hour) + timedelta(seconds=grace) <= now


def plan(
    data_dir: Path,
    *,
    grace: float,
    since: datetime | None = None,
    hour: str | None = None,
    now: datetime | None = None,
) -> list[HourFiles]:
    """Dirty hours to compact, oldest first: closed ones, or exactly `hour` (closed or not)."""
    now = now or datetime.now(UTC)
    compacted = lakestate.load_compacted(data_dir)
    hours = lakestate.snapshot(data_dir)
    if hour is not None:
        key = check_hour_key(hour)
        picked = [hours[key]] if key in hours else []
    else:
        picked = [h for h in hours.values() if is_closed(h, now, grace)]
        if since is not None:
            picked = [h for h in picked if layout.hour_end(h.date, h.hour) > since]
    return sorted((h for h in picked if not lakestate.is_clean(h, compacted)), key=lambda h: h.key)


def compact(
    data_dir: Path,
    *,
    target_file_size: int,
    grace: float,
    since: datetime | None = None,
    hour: str | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    slice_bytes: int = SLICE_BYTES,
) -> CompactReport:
    """Compact every dirty hour `plan` picks. Hours that lose to a concurrent write are retried
    a couple of times, then left for the next run. One compaction per data dir at a time."""
    started = time.monotonic()
    stop = should_stop or (lambda: False)
    results: dict[str, HourResult] = {}
    conflicts = 0
    # Serialise compactions of one data dir across processes (CLI and scheduler): delta-rs does
    # not detect two rewrites of the same files, so the second would only waste the work.
    with procs.state_lock(data_dir, "compact"):
        todo = [h.key for h in plan(data_dir, grace=grace, since=since, hour=hour, now=now)]
        if todo:
            from ingest.lake.writer import open_table

            table = open_table(layout.table_path(data_dir), create=False)
            spill = spill_root(data_dir) / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
            total = len(todo)
            try:
                for attempt in range(1 + CONFLICT_RETRIES):
                    if attempt:
                        time.sleep(0.2 * attempt)
                    for key in todo:
                        if stop():
                            break
                        results[key] = compact_hour(
                            table, data_dir, key, target_file_size, spill, slice_bytes
                        )
                        conflicts += results[key].outcome == "conflict"
                        if progress is not None:
                            progress(sum(r.outcome != "conflict" for r in results.values()), total)
                    todo = [k for k in todo if k in results and results[k].outcome == "conflict"]
                    if not todo or stop():
                        break
            finally:
                shutil.rmtree(spill, ignore_errors=True)
    return CompactReport(
        [results[k] for k in sorted(results)], time.monotonic() - started, conflicts
    )


def compact_hour(
    table: DeltaTable,
    data_dir: Path,
    key: str,
    target_file_size: int,
    spill: Path,
    slice_bytes: int = SLICE_BYTES,
) -> HourResult:
    """Rewrite one hour of the table's latest snapshot in one commit, and record its new files."""
    from deltalake import CommitProperties
    from deltalake.exceptions import CommitFailedError, DeltaError
    from deltalake.transaction import RemoveAction
    from polars.exceptions import PolarsError

    started = time.monotonic()
    table.update_incremental()
    hour = lakestate.hours_of(table).get(key)
    if hour is None:
        return HourResult(key, "vanished")
    if lakestate.is_clean(hour, lakestate.load_compacted(data_dir)):
        return HourResult(key, "clean", len(hour.files), len(hour.files), hour.rows, hour.rows)
    root = Path(table.table_uri.removeprefix("file://"))
    work = spill / key.replace("/", "T")
    written: list[Written] = []
    committing = False
    try:
        slices = _sorted_slices([str(root / f) for f in hour.files], work, slice_bytes)
        written = _write_files(slices, root, hour, work, target_file_size)
        # delta-rs checks no conflicts for a transaction built from file actions, so we do:
        # an append to the hour since our snapshot means "busy, retry later". One landing in
        # the instant between this check and the commit is not lost either (we remove exactly
        # the files we read), it only leaves the hour dirty.
        if lakestate.hours_of(_latest(root)).get(key) != hour:
            _discard(root, written)
            log.debug("compact %s: the hour changed while we rewrote it; retrying later", key)
            return HourResult(key, "conflict", len(hour.files), rows_before=hour.rows)
        now_ms = int(time.time() * 1000)
        partition: dict[str, str | None] = {"date": hour.date, "hour": hour.hour}
        removes = [RemoveAction(f, False, now_ms, None, partition) for f in hour.files]
        committing = True
        table.create_write_transaction(
            [*(w.action for w in written), *removes],
            mode="append",
            schema=arrow_schema(),
            partition_by=layout.PARTITION_COLUMNS,
            commit_properties=CommitProperties(custom_metadata={"loglake": f"compact {key}"}),
        )
    except CommitFailedError as exc:
        _discard(root, written)
        log.warning("compact %s: commit failed (%s); retrying later", key, str(exc).splitlines()[0])
        return HourResult(key, "conflict", len(hour.files), rows_before=hour.rows)
    except (OSError, PolarsError, DeltaError) as exc:
        # Polars reports a full disk as a ComputeError. Files of a commit that was never
        # attempted can go; after an unclear commit error they stay for vacuum to judge.
        if not committing:
            _discard(root, written)
        raise DataUnavailable(f"compacting {key}: {str(exc).splitlines()[0]}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lakestate.record_compacted(data_dir, {key: [w.action.path for w in written]})
    result = HourResult(
        key,
        "compacted",
        len(hour.files),
        len(written),
        hour.rows,
        sum(w.rows for w in written),
        time.monotonic() - started,
    )
    log.debug(
        "compact %s: %d files -> %d, %d rows -> %d in %.1f s",
        key,
        result.files_before,
        result.files_after,
        result.rows_before,
        result.rows_after,
        result.seconds,
    )
    return result


def _latest(root: Path) -> DeltaTable:
    from deltalake import DeltaTable

    return DeltaTable(str(root))


# -- the bounded-memory merge ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    """A piece read at once: a whole small file, or one row group of a big (compacted) one."""

    path: str
    offset: int | None
    """First row of the row group in its file; None for a whole file."""
    rows: int
    first: int
    last: int
    """Epoch seconds of its smallest and largest `ts` (from the Parquet footer)."""


def _sorted_slices(files: list[str], spill: Path, slice_bytes: int) -> Iterator[pl.DataFrame]:
    """The hour's rows, each stream_id once, in `ts` order, one time slice at a time.

    Pieces whose `ts` range lies inside one slice are read when that slice is merged (with
    ingest's time-ordered commits and compacted files' sorted row groups that is nearly all);
    pieces spanning several slices are first split into per-slice spill files.
    """
    import polars as pl

    units = _units(files)
    row_bytes = _row_bytes(units)
    slices = max(1, math.ceil(sum(u.rows for u in units) * row_bytes / slice_bytes))
    if slices == 1:
        yield _dedup_sort(_read(units))
        return
    bounds = _slice_bounds(files, slices)
    direct: dict[int, list[_Unit]] = {}
    spanning: list[_Unit] = []
    for unit in units:
        first, last = (bisect.bisect_right(bounds, t) for t in (unit.first, unit.last))
        if first == last:
            direct.setdefault(first, []).append(unit)
        else:
            spanning.append(unit)
    spilled = _spill(spanning, bounds, spill, max(1, int(slice_bytes / row_bytes)))
    for number in range(len(bounds) + 1):
        parts = []
        if direct.get(number):
            parts.append(_read(direct[number]))
        if spilled.get(number):
            parts.extend(pl.read_ipc(path) for path in spilled[number])
            for path in spilled[number]:
                path.unlink()
        if parts:
            yield _dedup_sort(pl.concat(parts, rechunk=False))


def _dedup_sort(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.unique(subset="stream_id", keep="any").sort("ts")


def _file_schema() -> pa.Schema:
    """The table schema without the partition columns (Delta keeps those in the path)."""
    schema = arrow_schema()
    for name in layout.PARTITION_COLUMNS:
        schema = schema.remove(schema.get_field_index(name))
    return schema


def _units(files: list[str]) -> list[_Unit]:
    import pyarrow.parquet as pq

    units = []
    for path in files:
        meta = pq.read_metadata(path)
        column = meta.schema.to_arrow_schema().get_field_index("ts")
        groups = meta.num_row_groups
        offset = 0
        for group in range(groups):
            rows = meta.row_group(group).num_rows
            stats = meta.row_group(group).column(column).statistics
            if stats is not None and stats.has_min_max:
                first, last = stats.min_raw // 1_000_000, stats.max_raw // 1_000_000
            else:  # unknown range: treat it as spanning everything
                first, last = -(2**62), 2**62
            if rows:
                units.append(_Unit(path, None if groups == 1 else offset, rows, first, last))
            offset += rows
    return units


def _read(units: list[_Unit]) -> pl.DataFrame:
    """Whole files through Polars' parallel reader; row groups of big files as row ranges
    (Polars reads only the row groups a slice touches)."""
    import polars as pl

    columns = _file_schema().names
    whole = [u.path for u in units if u.offset is None]
    frames = [pl.read_parquet(whole, columns=columns, hive_partitioning=False)] if whole else []
    ranges: list[tuple[str, int, int]] = []  # contiguous row groups of a file merged
    for unit in sorted(
        (u for u in units if u.offset is not None), key=lambda u: (u.path, u.offset or 0)
    ):
        offset = unit.offset or 0
        if ranges and ranges[-1][0] == unit.path and sum(ranges[-1][1:]) == offset:
            ranges[-1] = (unit.path, ranges[-1][1], ranges[-1][2] + unit.rows)
        else:
            ranges.append((unit.path, offset, unit.rows))
    for path, offset, rows in ranges:
        frames.append(
            pl.scan_parquet(path, hive_partitioning=False)
            .select(columns)
            .slice(offset, rows)
            .collect()
        )
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical_relaxed")


def _row_bytes(units: list[_Unit]) -> float:
    """In-memory bytes per row, measured on the biggest and the median piece (they carry the
    volume; Parquet's own "uncompressed" size is after encoding and far too small)."""
    if not units:
        return 1.0
    by_size = sorted(units, key=lambda u: u.rows)
    sample = [by_size[-1]] + ([by_size[len(by_size) // 2]] if len(by_size) > 2 else [])
    frame = _read(sample)
    return max(1.0, frame.estimated_size() / max(1, frame.height))


def _slice_bounds(files: list[str], slices: int) -> list[int]:
    """Epoch seconds cutting the hour into `slices` parts of about equal row counts.

    A per-second histogram (at most 3600 groups, streamed) is enough; a burst inside one
    second only makes that slice bigger.
    """
    import polars as pl

    histogram = (
        pl.scan_parquet(files, hive_partitioning=False)
        .select(second=pl.col("ts").dt.epoch("us") // 1_000_000)
        .group_by("second")
        .len()
        .sort("second")
        .collect(engine="streaming")
    )
    total = int(histogram["len"].sum())
    bounds: list[int] = []
    running = 0
    for second, n in histogram.iter_rows():
        if running >= total * (len(bounds) + 1) / slices:
            bounds.append(int(second))
        running += n
    return bounds


def _spill(
    units: list[_Unit], bounds: list[int], spill: Path, group_rows: int
) -> dict[int, list[Path]]:
    """Split pieces spanning several slices into per-slice Arrow IPC files, a memory budget of
    pieces at a time; the writes run beside the next read."""
    import polars as pl

    if not units:
        return {}
    spill.mkdir(parents=True, exist_ok=True)
    cuts = pl.Series("bounds", bounds, dtype=pl.Int64)
    parts: dict[int, list[Path]] = {}
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="compact-spill") as pool:
        pending: list[Future[None]] = []
        for number, group in enumerate(_groups(units, group_rows)):
            frame = _read(group)
            index = cuts.search_sorted(frame["ts"].dt.epoch("us") // 1_000_000, side="right")
            pieces = frame.with_columns(_slice=index).partition_by(
                "_slice", as_dict=True, include_key=False
            )
            del frame
            for future in pending:  # at most one group in flight: memory stays bounded
                future.result()
            pending = []
            for (piece,), part in pieces.items():
                path = spill / f"{piece:05d}-{number:05d}.arrow"
                pending.append(pool.submit(part.write_ipc, path, compression="uncompressed"))
                parts.setdefault(int(piece), []).append(path)  # type: ignore[call-overload]
        for future in pending:
            future.result()
    return parts


def _groups(units: list[_Unit], budget: int) -> Iterator[list[_Unit]]:
    group: list[_Unit] = []
    held = 0
    for unit in units:
        if group and held + unit.rows > budget:
            yield group
            group, held = [], 0
        group.append(unit)
        held += unit.rows
    if group:
        yield group


# -- output files and their Delta add actions ------------------------------------------------


@dataclass
class Written:
    action: AddAction
    rows: int


def _write_files(
    slices: Iterator[pl.DataFrame], root: Path, hour: HourFiles, work: Path, target_file_size: int
) -> list[Written]:
    """Stream the sorted slices through Polars' Parquet sink (zstd, compressed in parallel)
    into files of about `target_file_size`, staged outside the lake, fsynced, then moved into
    the hour's directory (not yet committed)."""
    import polars as pl
    from polars.io.plugins import register_io_source

    try:
        first = next(slices)
    except StopIteration:
        return []
    rows_per_file = _rows_per_file(first, target_file_size)
    group_rows = max(1024, min(ROW_GROUP_ROWS, rows_per_file // 4))
    schema = first.schema

    def source(
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        for frame in itertools.chain([first], slices):
            yield frame if with_columns is None else frame.select(with_columns)

    staged = work / "out"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    register_io_source(source, schema=schema).sink_parquet(
        pl.PartitionBy(staged, max_rows_per_file=rows_per_file, approximate_bytes_per_file=None),
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        row_group_size=group_rows,
        maintain_order=True,
        mkdir=True,
    )
    folder = f"date={hour.date}/hour={hour.hour}"
    (root / folder).mkdir(parents=True, exist_ok=True)
    written: list[Written] = []
    try:
        for path in sorted(staged.glob("*.parquet")):
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
            relative = f"{folder}/part-00000-{uuid.uuid4()}-c000.zstd.parquet"
            os.replace(path, root / relative)
            written.append(_add_action(root, relative, hour))
    except BaseException:
        _discard(root, written)
        raise
    return written


def _rows_per_file(sample: pl.DataFrame, target_file_size: int) -> int:
    """Rows that make a file of about `target_file_size`: compress a sample to find out."""
    import io

    probe = sample.head(50_000)
    buffer = io.BytesIO()
    probe.write_parquet(buffer, compression="zstd", compression_level=ZSTD_LEVEL)
    per_row = max(1.0, buffer.tell() / max(1, probe.height))
    return max(1, int(target_file_size / per_row))


BOUNDED = ("ts", "ingested_at", "level", "service", "host", "stream_id")
"""Columns whose min/max go into the Delta statistics (the long text ones would be truncated)."""


def _add_action(root: Path, relative: str, hour: HourFiles) -> Written:
    """The Delta add action of a written file, statistics from its Parquet footer."""
    import pyarrow.parquet as pq
    from deltalake.transaction import AddAction

    path = root / relative
    meta = pq.read_metadata(path)
    names = meta.schema.to_arrow_schema().names
    low: dict[str, object] = {}
    high: dict[str, object] = {}
    nulls = dict.fromkeys(names, 0)
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for i, name in enumerate(names):
            stats = group.column(i).statistics
            if stats is None:
                continue
            nulls[name] += stats.null_count or 0
            if name not in BOUNDED or not stats.has_min_max:
                continue
            a, b = (
                (stats.min_raw, stats.max_raw)
                if name in ("ts", "ingested_at")
                else (stats.min, stats.max)
            )
            low[name] = a if name not in low else min(low[name], a)  # type: ignore[type-var]
            high[name] = b if name not in high else max(high[name], b)  # type: ignore[type-var]
    stats_json = {
        "numRecords": meta.num_rows,
        "minValues": {k: _stat(k, v, up=False) for k, v in low.items()},
        "maxValues": {k: _stat(k, v, up=True) for k, v in high.items()},
        "nullCount": nulls,
    }
    info = path.stat()
    action = AddAction(
        relative,
        info.st_size,
        {"date": hour.date, "hour": hour.hour},
        int(info.st_mtime * 1000),
        False,
        json.dumps(stats_json),
    )
    return Written(action, meta.num_rows)


def _stat(name: str, value: object, up: bool) -> object:
    """Delta writes timestamp statistics in milliseconds: round the max up, the min down."""
    if name in ("ts", "ingested_at") and isinstance(value, int):
        ms = value // 1000 + (1 if up and value % 1000 else 0)
        moment = layout.EPOCH + timedelta(milliseconds=ms)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    return value


def _discard(root: Path, written: list[Written]) -> None:
    """Files of a commit that did not happen: never referenced, safe to delete now."""
    for w in written:
        (root / w.action.path).unlink(missing_ok=True)


def spill_root(data_dir: Path) -> Path:
    """Spill files live under state/, outside the lake (no reader ever globs them), and a
    previous run's leftovers (its process is gone) are removed here."""
    root = layout.state_dir(data_dir) / SPILL_DIR
    if root.is_dir():
        for entry in root.iterdir():
            pid = entry.name.partition("-")[0]
            if pid.isdigit() and not procs.pid_alive(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)
    return root
    return True
