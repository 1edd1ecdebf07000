"""Compaction of the `logs` table: each dirty closed hour becomes a few large zstd files, sorted
by `ts`, each `stream_id` once, swapped in by ONE Delta commit (add the new files, remove
exactly the files read). Readers see the old file set or the new one, never both; the old
files stay until vacuum. The new files' names say which run wrote them (lakestate), which is
what makes the hour clean for readers on every host. The merge runs in bounded memory for any
hour size (merge.py) on local files: a remote lake's hour is downloaded to this host's spill
folder first. Its output files and their add actions are compact_files.py's.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ingest import procs
from ingest.errors import DataUnavailable, UsageError
from ingest.lake import layout
from ingest.lake import state as lakestate
from ingest.lake.location import Lake, lake_of
from ingest.lake.schema import arrow_schema
from ingest.lake.state import HourFiles
from ingest.lake.store import LakeStore
from ingest.upkeep.compact_files import Written, discard, write_files
from ingest.upkeep.locks import lake_lock
from ingest.upkeep.merge import sorted_slices

if TYPE_CHECKING:
    from deltalake import DeltaTable

log = logging.getLogger("logs.compact")

SLICE_BYTES = 48 * 1024 * 1024
"""In-memory bytes of one time slice (peak RSS is a few times this: sort, Arrow copies)."""
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
    where: Lake | Path,
    *,
    grace: float,
    since: datetime | None = None,
    hour: str | None = None,
    now: datetime | None = None,
) -> list[HourFiles]:
    """Dirty hours to compact, oldest first: closed ones, or exactly `hour` (closed or not)."""
    now = now or datetime.now(UTC)
    hours = lakestate.snapshot(where)
    compacted = lakestate.compacted_of(hours)
    if hour is not None:
        key = check_hour_key(hour)
        picked = [hours[key]] if key in hours else []
    else:
        picked = [h for h in hours.values() if is_closed(h, now, grace)]
        if since is not None:
            picked = [h for h in picked if layout.hour_end(h.date, h.hour) > since]
    return sorted((h for h in picked if not lakestate.is_clean(h, compacted)), key=lambda h: h.key)


def compact(
    where: Lake | Path,
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
    a couple of times, then left for the next run. One compaction per lake at a time."""
    lake = lake_of(where)
    started = time.monotonic()
    stop = should_stop or (lambda: False)
    results: dict[str, HourResult] = {}
    conflicts = 0
    # Serialise compactions of one lake across processes and hosts (CLI and scheduler):
    # delta-rs does not detect two rewrites of the same files, so the second would only waste
    # the work (readers would deduplicate the two runs' files until the next run).
    with lake_lock(lake, "compact"):
        todo = [h.key for h in plan(lake, grace=grace, since=since, hour=hour, now=now)]
        if todo:
            from ingest.lake.writer import open_table

            table = open_table(
                lake.table_path() if lake.is_local else lake.table_uri(), create=False, lake=lake
            )
            spill = spill_root(lake.scratch) / f"{_host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            total = len(todo)
            try:
                for attempt in range(1 + CONFLICT_RETRIES):
                    if attempt:
                        time.sleep(0.2 * attempt)
                    for key in todo:
                        if stop():
                            break
                        results[key] = compact_hour(
                            table, lake, key, target_file_size, spill, slice_bytes
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
    lake: Lake,
    key: str,
    target_file_size: int,
    spill: Path,
    slice_bytes: int = SLICE_BYTES,
) -> HourResult:
    """Rewrite one hour of the table's latest snapshot in one commit, under the run's names."""
    from deltalake.exceptions import CommitFailedError, DeltaError
    from deltalake.transaction import RemoveAction
    from polars.exceptions import PolarsError

    from ingest.lake.tables import commit_properties

    started = time.monotonic()
    table.update_incremental()
    hours = lakestate.hours_of(table)
    hour = hours.get(key)
    if hour is None:
        return HourResult(key, "vanished")
    if lakestate.is_clean(hour, lakestate.compacted_of({key: hour})):
        return HourResult(key, "clean", len(hour.files), len(hour.files), hour.rows, hour.rows)
    store = LakeStore(lake)
    name = layout.LOGS_TABLE
    work = spill / key.replace("/", "T")
    written: list[Written] = []
    committing = False
    try:
        sources = _local_copies(lake, store, hour, work)
        slices = sorted_slices(sources, work, slice_bytes)
        written = write_files(slices, store, name, hour, work, target_file_size, uuid.uuid4().hex)
        # delta-rs checks no conflicts for a transaction built from file actions, so we do:
        # an append to the hour since our snapshot means "busy, retry later". One landing in
        # the instant between this check and the commit is not lost either (we remove exactly
        # the files we read), it only leaves the hour dirty.
        if lakestate.hours_of(_latest(lake)).get(key) != hour:
            discard(store, name, written)
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
            commit_properties=commit_properties(f"compact {key}"),
        )
    except CommitFailedError as exc:
        discard(store, name, written)
        log.warning("compact %s: commit failed (%s); retrying later", key, str(exc).splitlines()[0])
        return HourResult(key, "conflict", len(hour.files), rows_before=hour.rows)
    except (OSError, PolarsError, DeltaError) as exc:
        # Polars reports a full disk as a ComputeError. Files of a commit that was never
        # attempted can go; after an unclear commit error they stay for vacuum to judge.
        if not committing:
            discard(store, name, written)
        raise DataUnavailable(f"compacting {key}: {str(exc).splitlines()[0]}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table.update_incremental()  # create_write_transaction does not move version() forward
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


def _latest(lake: Lake) -> DeltaTable:
    from deltalake import DeltaTable

    uri = str(lake.table_path()) if lake.is_local else lake.table_uri()
    return DeltaTable(uri, storage_options=lake.storage_options)


def _local_copies(lake: Lake, store: LakeStore, hour: HourFiles, work: Path) -> list[str]:
    """The hour's files as local paths: in place for a local lake, downloaded for a remote one
    (the merge reads footers and row groups many times; local reads keep that cheap)."""
    from urllib.parse import unquote

    if lake.is_local:
        root = lake.table_path()
        return [str(root / f) for f in hour.files]
    copies = []
    for number, relative in enumerate(hour.files):
        target = work / "in" / f"{number:05d}.parquet"
        store.download(f"{layout.LOGS_TABLE}/{unquote(relative)}", target)
        copies.append(str(target))
    return copies


def _host() -> str:
    import socket

    return socket.gethostname().replace("-", "_")


def spill_root(data_dir: Path) -> Path:
    """Spill files live under state/, outside the lake (no reader ever globs them), and a
    previous run's leftovers (its process on this host is gone) are removed here. Folders are
    named host-pid-run: data dirs shared by containers on one host (compose) must not take
    another container's live process for a dead one of theirs."""
    root = layout.state_dir(data_dir) / SPILL_DIR
    if root.is_dir():
        for entry in root.iterdir():
            host, _, rest = entry.name.partition("-")
            pid = rest.partition("-")[0]
            if host == _host() and pid.isdigit() and not procs.pid_alive(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)
    return root
    return True
