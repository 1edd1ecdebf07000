"""Which hour partitions may hold duplicate `stream_id`s, from the Delta snapshot alone.

An hour is *clean* (no duplicates possible) when it has a single file (one commit never holds
an id twice) or when its files are exactly the output of one compaction run. Compaction names
its files `compacted-<run>-<n>.zstd.parquet`: the record of what it wrote travels with the
files in the Delta log, so every host reading the table (and every reader: `logs sql`, the
rollups) agrees on it without any state on one host's disk. Every other hour is *dirty*:
readers deduplicate it and compaction rewrites it. Files of one run share no id, even after a
late append joined them: readers treat them as one unit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.lake import layout
from ingest.lake.location import Lake, lake_of

COMPACTED_PREFIX = "compacted-"
_COMPACTED = re.compile(r"(?:^|/)compacted-([0-9a-f]{32})-\d+\.zstd\.parquet$")


def compacted_name(run: str, number: int) -> str:
    """The file name of compaction run `run`'s `number`th output file."""
    return f"{COMPACTED_PREFIX}{run}-{number:05d}.zstd.parquet"


def run_of(path: str) -> str | None:
    """The compaction run that wrote `path`; None for any other file."""
    match = _COMPACTED.search(path)
    return match.group(1) if match else None


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


def snapshot(where: Lake | Path, table: str = layout.LOGS_TABLE) -> dict[str, HourFiles]:
    """`date/hour` -> files of the current snapshot. Empty when the table does not exist yet."""
    from ingest.lake.tables import open_delta

    dt = open_delta(lake_of(where), table)
    return {} if dt is None else hours_of(dt)


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


def compacted_of(hours: dict[str, HourFiles]) -> dict[str, list[str]]:
    """`date/hour` -> its files, for the hours whose files are all one compaction run's."""
    out = {}
    for key, hour in hours.items():
        runs = {run_of(f) for f in hour.files}
        if len(runs) == 1 and None not in runs:
            out[key] = list(hour.files)
    return out


def load_compacted(where: Lake | Path) -> dict[str, list[str]]:
    """`date/hour` -> files compaction wrote for it, as the latest snapshot says."""
    return compacted_of(snapshot(where))


def units_of(files: tuple[str, ...] | list[str]) -> list[list[str]]:
    """Files grouped into sets known to share no id: each compaction run's files together,
    every other file alone."""
    runs: dict[str, list[str]] = {}
    alone = []
    for f in files:
        run = run_of(f)
        if run is None:
            alone.append([f])
        else:
            runs.setdefault(run, []).append(f)
    return [*runs.values(), *alone]


def is_clean(hour: HourFiles, compacted: dict[str, list[str]]) -> bool:
    return len(hour.files) <= 1 or sorted(compacted.get(hour.key, ())) == list(hour.files)


def dirty_hours(where: Lake | Path) -> list[HourFiles]:
    """Hours that may hold duplicates or were changed since compaction last rewrote them."""
    hours = snapshot(where)
    compacted = compacted_of(hours)
    return [h for h in hours.values() if not is_clean(h, compacted)]
