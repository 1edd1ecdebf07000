"""Which hour partitions may hold duplicate `stream_id`s, from the Delta snapshot and a small
record kept by compaction.

An hour is *clean* (no duplicates possible) when it has a single file (one commit never holds
an id twice) or when its files are exactly the ones compaction wrote for it. Every other hour
is *dirty*: readers deduplicate it and compaction rewrites it. A missing or stale record only
makes hours dirty, never wrongly clean.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest import procs
from ingest.lake import layout

RECORD = "compacted.json"


@dataclass(frozen=True)
class HourFiles:
    date: str
    hour: str
    files: tuple[str, ...]
    """Paths relative to the table root, as the Delta log names them."""
    rows: int
    nbytes: int

    @property
    def key(self) -> str:
        return f"{self.date}/{self.hour}"


def snapshot(data_dir: Path, table: str = layout.LOGS_TABLE) -> dict[str, HourFiles]:
    """`date/hour` -> files of the current snapshot. Empty when the table does not exist yet."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        dt = DeltaTable(str(layout.table_path(data_dir, table)))
    except TableNotFoundError:
        return {}
    return hours_of(dt)


def hours_of(dt: object) -> dict[str, HourFiles]:
    """Group a DeltaTable's add actions by partition."""
    # An arro3 table: read the few columns we need without importing pyarrow (start-up time).
    actions = dt.get_add_actions(flatten=True)  # type: ignore[attr-defined]
    names = set(actions.column_names)

    def column(name: str, default: object) -> list[Any]:
        if name in names:
            return list(actions.column(name).to_pylist())
        return [default] * actions.num_rows

    grouped: dict[str, tuple[str, str, list[str], int, int]] = {}
    paths = column("path", None)
    dates = column("partition.date", None)
    hours = column("partition.hour", "")  # rollups_daily is partitioned by date only
    rows = column("num_records", None)
    sizes = column("size_bytes", 0)
    for path, date, hour, n, size in zip(paths, dates, hours, rows, sizes, strict=True):
        key = f"{date}/{hour}"
        entry = grouped.setdefault(key, (date, hour, [], 0, 0))
        entry[2].append(path)
        grouped[key] = (date, hour, entry[2], entry[3] + int(n or 0), entry[4] + int(size or 0))
    return {
        key: HourFiles(d, h, tuple(sorted(files)), n, size)
        for key, (d, h, files, n, size) in grouped.items()
    }


def _record_path(data_dir: Path) -> Path:
    return layout.state_dir(data_dir) / RECORD


def load_compacted(data_dir: Path) -> dict[str, list[str]]:
    """`date/hour` -> files compaction last wrote for it."""
    try:
        return dict(json.loads(_record_path(data_dir).read_text()))
    except (OSError, ValueError):
        return {}


def record_compacted(data_dir: Path, written: dict[str, list[str]]) -> None:
    """Remember the files compaction wrote per hour (atomic replace, serialised by a lock)."""
    with procs.state_lock(layout.state_dir(data_dir), RECORD):
        current = load_compacted(data_dir)
        current.update({k: sorted(v) for k, v in written.items()})
        path = _record_path(data_dir)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(current, sort_keys=True))
        os.replace(tmp, path)


def forget_compacted(data_dir: Path, keys: list[str]) -> None:
    """Drop hours (deleted by retention) from the record."""
    with procs.state_lock(layout.state_dir(data_dir), RECORD):
        current = load_compacted(data_dir)
        for key in keys:
            current.pop(key, None)
        path = _record_path(data_dir)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(current, sort_keys=True))
        os.replace(tmp, path)


def is_clean(hour: HourFiles, compacted: dict[str, list[str]]) -> bool:
    return len(hour.files) <= 1 or sorted(compacted.get(hour.key, ())) == list(hour.files)


def dirty_hours(data_dir: Path) -> list[HourFiles]:
    """Hours that may hold duplicates or were changed since compaction last rewrote them."""
    compacted = load_compacted(data_dir)
    return [h for h in snapshot(data_dir).values() if not is_clean(h, compacted)]
