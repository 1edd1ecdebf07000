"""Compaction of the `logs` table: each dirty closed hour becomes a few large zstd files, sorted
by `ts`, each `stream_id` once, swapped in by ONE Delta commit. Readers see the old file set or
the new one, never both; the old files stay on disk until vacuum.

Memory stays bounded for any hour size: a big hour is cut into time slices from a per-second row
histogram, spilled slice by slice to Arrow IPC files under state/, then each slice is
deduplicated, sorted and streamed to the Delta writer in `ts` order. Copies of one `stream_id`
are identical rows (decoding is deterministic), so they always fall into the same slice.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ingest import lakestate, layout
from ingest.errors import DataUnavailable, UsageError
from ingest.lakestate import HourFiles
from ingest.schema import arrow_schema

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
        text = (f"{len(done)} hours, {before} files -> {after}, {rows:,} rows "
                f"({dropped:,} duplicates dropped)")
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
    return sorted((h for h in picked if not lakestate.is_clean(h, compacted)),
                  key=lambda h: h.key)


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
    with _one_at_a_time(data_dir):
        todo = [h.key for h in plan(data_dir, grace=grace, since=since, hour=hour, now=now)]
        if todo:
            from ingest.writer import open_table

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
                        results[key] = compact_hour(table, data_dir, key, target_file_size,
                                                    spill, slice_bytes)
                        conflicts += results[key].outcome == "conflict"
                        if progress is not None:
                            progress(sum(r.outcome != "conflict" for r in results.values()),
                                     total)
                    todo = [k for k in todo if k in results and results[k].outcome == "conflict"]
                    if not todo or stop():
                        break
            finally:
                shutil.rmtree(spill, ignore_errors=True)
    return CompactReport([results[k] for k in sorted(results)], time.monotonic() - started,
                         conflicts)


@contextmanager
def _one_at_a_time(data_dir: Path) -> Iterator[None]:
    """Serialise compactions of one data dir across processes (CLI and scheduler): delta-rs does
    not detect two rewrites of the same files, so two at once would only waste work."""
    folder = layout.state_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "compact.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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
    from deltalake.exceptions import CommitFailedError
    from deltalake.transaction import RemoveAction

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
    try:
        # Row groups small enough that a file can end near its target size.
        per_file = target_file_size * max(1, hour.rows) // max(1, hour.nbytes)
        group_rows = max(1024, min(ROW_GROUP_ROWS, per_file // 4))
        batches = _sorted_batches([str(root / f) for f in hour.files], work, slice_bytes,
                                  group_rows)
        written = _write_files(batches, root, hour, work, target_file_size)
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
        table.create_write_transaction(
            [*(w.action for w in written), *removes],
            mode="append",
            schema=arrow_schema(),
            partition_by=layout.PARTITION_COLUMNS,
            commit_properties=CommitProperties(custom_metadata={"loglake": f"compact {key}"}),
        )
    except CommitFailedError as exc:
        _discard(root, written)
        log.warning("compact %s: commit failed (%s); retrying later", key,
                    str(exc).splitlines()[0])
        return HourResult(key, "conflict", len(hour.files), rows_before=hour.rows)
    except OSError as exc:
        raise DataUnavailable(f"compacting {key}: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lakestate.record_compacted(data_dir, {key: [w.action.path for w in written]})
    result = HourResult(key, "compacted", len(hour.files), len(written), hour.rows,
                        sum(w.rows for w in written), time.monotonic() - started)
    log.debug("compact %s: %d files -> %d, %d rows -> %d in %.1f s", key, result.files_before,
             result.files_after, result.rows_before, result.rows_after, result.seconds)
    return result


def _latest(root: Path) -> DeltaTable:
    from deltalake import DeltaTable

    return DeltaTable(str(root))


# -- the bounded-memory merge ---------------------------------------------------------------------

def _sorted_batches(files: list[str], spill: Path, slice_bytes: int,
                    group_rows: int = ROW_GROUP_ROWS) -> Iterator[pa.RecordBatch]:
    """The hour's rows, each stream_id once, in `ts` order, as Arrow batches of the table schema."""
    import polars as pl

    rows = _row_counts(files)
    row_bytes = _row_bytes(files, rows)
    slices = max(1, math.ceil(sum(rows) * row_bytes / slice_bytes))
    if slices == 1:
        yield from _emit(_read(files), group_rows)
        return
    bounds = _slice_bounds(files, slices)
    for paths in _spill(files, rows, bounds, spill, max(1, int(slice_bytes / row_bytes))):
        frame = pl.scan_ipc(paths).collect()
        for path in paths:
            path.unlink()
        yield from _emit(frame, group_rows)
        del frame


def _emit(frame: pl.DataFrame, group_rows: int) -> Iterator[pa.RecordBatch]:
    import polars as pl

    frame = frame.unique(subset="stream_id", keep="any").sort(["ts", "stream_id"])
    table = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
    del frame
    yield from table.cast(_file_schema()).to_batches(max_chunksize=group_rows)


def _file_schema() -> pa.Schema:
    """The table schema without the partition columns (Delta keeps those in the path)."""
    schema = arrow_schema()
    for name in layout.PARTITION_COLUMNS:
        schema = schema.remove(schema.get_field_index(name))
    return schema


def _read(files: list[str]) -> pl.DataFrame:
    import polars as pl

    return pl.read_parquet(files, columns=_file_schema().names, hive_partitioning=False)


def _row_counts(files: list[str]) -> list[int]:
    import pyarrow.parquet as pq

    return [pq.read_metadata(path).num_rows for path in files]


def _row_bytes(files: list[str], rows: list[int]) -> float:
    """In-memory bytes per row, measured on the smallest non-empty file (Parquet's own
    "uncompressed" size is after dictionary encoding and underestimates it several times)."""
    candidates = [(n, path) for n, path in zip(rows, files, strict=True) if n > 0]
    if not candidates:
        return 1.0
    _, path = min(candidates)
    frame = _read([path])
    return max(1.0, frame.estimated_size() / max(1, frame.height))


def _slice_bounds(files: list[str], slices: int) -> list[int]:
    """Epoch seconds cutting the hour into `slices` parts of about equal row counts.

    A per-second histogram (at most 3600 groups) is enough and costs no memory; a burst inside
    one second only makes that slice bigger.
    """
    import polars as pl

    histogram = (
        pl.scan_parquet(files, hive_partitioning=False)
        .select(second=pl.col("ts").dt.epoch("us") // 1_000_000)
        .group_by("second").len()
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


def _spill(files: list[str], rows: list[int], bounds: list[int], spill: Path,
           group_rows: int) -> list[list[Path]]:
    """Pass 1: read the files a few at a time and append each group's rows of every time slice
    to that slice's spill files. Returns the files of each slice, in time order."""
    import polars as pl

    spill.mkdir(parents=True, exist_ok=True)
    cuts = pl.Series("bounds", bounds, dtype=pl.Int64)
    parts: dict[int, list[Path]] = {}
    for number, group in enumerate(_groups(files, rows, group_rows)):
        frame = _read(group)
        index = cuts.search_sorted(frame["ts"].dt.epoch("us") // 1_000_000, side="right")
        frame = frame.with_columns(_slice=index)
        for (piece,), part in frame.partition_by("_slice", as_dict=True).items():
            path = spill / f"{piece:05d}-{number:05d}.arrow"
            part.drop("_slice").write_ipc(path, compression="lz4")
            parts.setdefault(int(piece), []).append(path)  # type: ignore[call-overload]
        del frame
    return [parts[n] for n in sorted(parts)]


def _groups(files: list[str], rows: list[int], budget: int) -> Iterator[list[str]]:
    group: list[str] = []
    held = 0
    for path, size in zip(files, rows, strict=True):
        if group and held + size > budget:
            yield group
            group, held = [], 0
        group.append(path)
        held += size
    if group:
        yield group


# -- output files and their Delta add actions ------------------------------------------------

@dataclass
class Written:
    action: AddAction
    rows: int


def _write_files(batches: Iterator[pa.RecordBatch], root: Path, hour: HourFiles, work: Path,
                 target_file_size: int) -> list[Written]:
    """Stream sorted batches into zstd Parquet files of about `target_file_size` bytes, staged
    outside the lake, fsynced, then moved into the hour's directory (not yet committed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    work.mkdir(parents=True, exist_ok=True)
    folder = f"date={hour.date}/hour={hour.hour}"
    (root / folder).mkdir(parents=True, exist_ok=True)
    written: list[Written] = []
    stats: _Stats | None = None
    sink: pa.NativeFile | None = None
    writer: pq.ParquetWriter | None = None
    staged = work / "out.parquet"

    def finish() -> None:
        assert writer is not None and sink is not None and stats is not None
        writer.close()
        sink.close()
        with open(staged, "rb") as handle:
            os.fsync(handle.fileno())
        relative = f"{folder}/part-00000-{uuid.uuid4()}-c000.zstd.parquet"
        os.replace(staged, root / relative)
        written.append(Written(stats.action(relative, root, hour), stats.rows))

    try:
        for batch in batches:
            if writer is None:
                sink = pa.OSFile(str(staged), "wb")
                writer = pq.ParquetWriter(sink, batch.schema, compression="zstd",
                                          compression_level=ZSTD_LEVEL)
                stats = _Stats()
            assert sink is not None and stats is not None
            writer.write_batch(batch, row_group_size=batch.num_rows)
            stats.add(batch)
            if sink.tell() >= target_file_size:
                finish()
                writer = None
        if writer is not None:
            finish()
    except BaseException:
        _discard(root, written)
        raise
    return written


class _Stats:
    """Delta file statistics (numRecords, min/max, nullCount) gathered while writing."""

    BOUNDED = ("ts", "ingested_at", "level", "service", "host", "stream_id")

    def __init__(self) -> None:
        self.rows = 0
        self.low: dict[str, object] = {}
        self.high: dict[str, object] = {}
        self.nulls: dict[str, int] = {}

    def add(self, batch: pa.RecordBatch) -> None:
        import pyarrow.compute as pc

        self.rows += batch.num_rows
        for name in batch.schema.names:
            column = batch.column(name)
            self.nulls[name] = self.nulls.get(name, 0) + column.null_count
            if name not in self.BOUNDED or column.null_count == len(column):
                continue
            bounds = pc.min_max(column)
            low, high = bounds["min"].as_py(), bounds["max"].as_py()
            if name not in self.low or low < self.low[name]:  # type: ignore[operator]
                self.low[name] = low
            if name not in self.high or high > self.high[name]:  # type: ignore[operator]
                self.high[name] = high

    def action(self, relative: str, root: Path, hour: HourFiles) -> AddAction:
        from deltalake.transaction import AddAction

        path = root / relative
        stats = {
            "numRecords": self.rows,
            "minValues": {k: _stat(v, up=False) for k, v in self.low.items()},
            "maxValues": {k: _stat(v, up=True) for k, v in self.high.items()},
            "nullCount": self.nulls,
        }
        return AddAction(relative, path.stat().st_size, {"date": hour.date, "hour": hour.hour},
                         int(path.stat().st_mtime * 1000), False, json.dumps(stats))


def _stat(value: object, up: bool) -> object:
    """Delta writes timestamp statistics in milliseconds: round the max up, the min down."""
    if isinstance(value, datetime):
        ms = value.replace(microsecond=value.microsecond // 1000 * 1000)
        if up and ms != value:
            ms += timedelta(milliseconds=1)
        return ms.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
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
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)
    return root


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
