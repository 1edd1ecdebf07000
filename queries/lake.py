"""The Delta snapshot as the read path sees it: which files each view reads, and which hour
partitions need deduplication, turned into the SQL of the views.

An hour needs no dedup when `lakestate` calls it clean (one file, or exactly what compaction
wrote). In the other hours, a file whose `stream_id` range (from the Delta statistics)
overlaps no other file's cannot share an id with them either: one consumer appending in order,
the common case before compaction. Only the overlapping files are deduplicated
(`DISTINCT ON (date, hour, stream_id)`).

A local lake's files are named by absolute path and read with `read_parquet` (fastest); a
remote lake's keep their Delta-relative names and are read through Arrow datasets registered
in the session (`Scanner`), with the same SQL around them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote

from ingest.errors import DataUnavailable
from ingest.lake import layout
from ingest.lake import state as lakestate
from ingest.lake.location import Lake, lake_of
from ingest.lake.state import HourFiles
from queries import deltalog
from queries.deltalog import AddFile
from queries.timerange import Window

if TYPE_CHECKING:
    import duckdb

HIVE_TYPES = {"date": "varchar", "hour": "varchar"}
# Delta cuts string statistics at 32 characters; shorter full ids are exact. (A pattern, not
# a compiled one: re compiles it on first use, which a lake of clean hours never has.)
_EXACT_ID = r"(\d{13})-(\d{1,17})"


Member = tuple[str, int, int, str | None, str | None]
"""(path, rows, bytes, min stream_id, max stream_id) of one file."""


class Hour(NamedTuple):
    files: HourFiles
    paths: tuple[str, ...]
    """The hour's files: absolute paths (local lake) or Delta-relative ones (remote lake)."""
    dedup_paths: tuple[str, ...]
    """The subset that may share stream_ids, read deduplicated."""

    @property
    def needs_dedup(self) -> bool:
        return bool(self.dedup_paths)


class Snapshot(NamedTuple):
    root: Path | str
    hours: dict[str, Hour]
    """`date/hour` -> files; empty when the table does not exist yet."""
    table: Any = None
    """The DeltaTable it was read from (None without a table): a remote lake's files are read
    through its dataset fragments."""

    def select(self, window: Window) -> list[Hour]:
        """Hours that can hold rows of `window` (partition pruning), oldest first."""
        keys = sorted(self.hours)
        return [
            self.hours[k]
            for k in keys
            if window.overlaps_hour(self.hours[k].files.date, self.hours[k].files.hour)
        ]


def _open(path: Path | str, lake: Lake | None = None):  # type: ignore[no-untyped-def]
    """The DeltaTable at `path`; None when there is no table yet."""
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError, TableNotFoundError

    if lake is not None and not lake.is_local:
        from ingest.lake.tables import open_delta

        return open_delta(lake, str(path).rsplit("/", 1)[-1])
    try:
        return DeltaTable(str(path))
    except TableNotFoundError:
        return None
    except (DeltaError, OSError) as exc:
        raise DataUnavailable(f"cannot read the table at {path}: {_first_line(exc)}") from None


def _root(lake: Lake, table: str) -> Path | str:
    return lake.table_path(table).resolve() if lake.is_local else lake.table_uri(table)


def _name(root: Path | str, relative: str) -> str:
    """How the read path names a file: absolute path locally, Delta-relative remotely."""
    return str(root / unquote(relative)) if isinstance(root, Path) else relative


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _column(actions, name: str, default: object = None) -> list:  # type: ignore[no-untyped-def]
    if name in actions.column_names:
        return list(actions.column(name).to_pylist())
    return [default] * actions.num_rows


def add_files(root: Path, con: duckdb.DuckDBPyConnection | None = None) -> list[AddFile] | None:
    """The add actions of the table at `root` (None: no table yet): its `_delta_log` read
    directly (queries/deltalog.py), or by deltalake when that reader declines."""
    try:
        return deltalog.active_files(root, con)
    except deltalog.Unsupported:
        pass
    return _adds_of(_open(root), root)


def _adds_of(table: Any, root: Path | str) -> list[AddFile] | None:
    """The add actions of `table` (a DeltaTable; None: no table yet), as deltalake lists them."""
    if table is None:
        return None
    try:
        # arro3 lists, not pyarrow: keeps `logs sql` from paying for a pyarrow import.
        actions = table.get_add_actions(flatten=True)
    except Exception as exc:  # noqa: BLE001 - deltalake raises several kinds for a bad log
        raise DataUnavailable(f"cannot read the table at {root}: {_first_line(exc)}") from None
    columns = {
        name: _column(actions, name)
        for name in ("path", "num_records", "size_bytes", "min.stream_id", "max.stream_id")
    }
    values = {
        name: _column(actions, name)
        for name in actions.column_names
        if name.startswith("partition.")
    }
    return [
        AddFile(
            columns["path"][i],
            {name.removeprefix("partition."): col[i] for name, col in values.items()},
            int(columns["size_bytes"][i] or 0),
            columns["num_records"][i],
            columns["min.stream_id"][i],
            columns["max.stream_id"][i],
        )
        for i in range(actions.num_rows)
    ]


def _snapshot_adds(
    lake: Lake, table_name: str, con: duckdb.DuckDBPyConnection | None
) -> tuple[Path | str, Any, list[AddFile] | None]:
    """(root, DeltaTable or None, add actions) of a table: a local lake's `_delta_log` read
    directly (no DeltaTable), a remote lake's through deltalake (its DeltaTable is kept: the
    session reads the files through its dataset fragments)."""
    root = _root(lake, table_name)
    if isinstance(root, Path):
        return root, None, add_files(root, con)
    table = _open(root, lake)
    return root, table, _adds_of(table, root)


def logs_snapshot(where: Lake | Path, con: duckdb.DuckDBPyConnection | None = None) -> Snapshot:
    """Files of the `logs` table per hour, each hour marked for dedup or not. `con` (the
    session's) reads a local Delta checkpoint, if there is one."""
    root, table, adds = _snapshot_adds(lake_of(where), layout.LOGS_TABLE, con)
    if adds is None:
        return Snapshot(root, {})
    grouped: dict[str, list[Member]] = {}
    for add in adds:
        key = f"{add.partition.get('date')}/{add.partition.get('hour')}"
        grouped.setdefault(key, []).append(
            (add.path, int(add.records or 0), add.size, add.min_id, add.max_id)
        )
    hours: dict[str, Hour] = {}
    for key, members in grouped.items():
        members.sort()
        date, hour = key.split("/")
        files = HourFiles(
            date,
            hour,
            tuple(m[0] for m in members),
            sum(m[1] for m in members),
            sum(m[2] for m in members),
        )
        absolute = {m[0]: _name(root, m[0]) for m in members}
        compacted = lakestate.compacted_of({key: files})
        units = [frozenset(u) for u in lakestate.units_of(files.files) if len(u) > 1]
        overlapping = (
            set() if lakestate.is_clean(files, compacted) else _overlapping(members, units)
        )
        hours[key] = Hour(
            files,
            tuple(absolute[f] for f in files.files),
            tuple(absolute[f] for f in files.files if f in overlapping),
        )
    return Snapshot(root, hours, table)


def _id_bound(stat: str | None) -> tuple[int, int] | None:
    if not stat or len(stat) >= 32:
        return None
    match = re.fullmatch(_EXACT_ID, stat)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _overlapping(
    members: list[Member], unique_together: frozenset[str] | list[frozenset[str]] = frozenset()
) -> set[str]:
    """Files whose stream-id range touches another file's (all of them when one is unknown).

    Parquet min/max are lexicographic: with 13-digit milliseconds they order the millisecond
    part exactly but not the sequence, so each file is taken to cover whole milliseconds
    [ms(min), ms(max)]; files sharing even a boundary millisecond count as overlapping.
    `unique_together` are files known to share no id (what one compaction run wrote for the
    hour; one set, or a list of them): each set counts as one unit, so a late append with
    newer ids leaves the hour unduplicated.
    """
    groups = [unique_together] if isinstance(unique_together, frozenset) else unique_together
    grouped = set().union(*groups) if groups else set()
    units: list[list[Member]] = [[m for m in members if m[0] in g] for g in groups]
    units = [u for u in units if u] + [[m] for m in members if m[0] not in grouped]
    spans: list[tuple[int, int, list[str]]] = []
    for unit in units:
        bounds = [(_id_bound(low), _id_bound(high)) for _, _, _, low, high in unit]
        if any(lo is None or hi is None for lo, hi in bounds):
            return {m[0] for m in members}
        start = min(lo[0] for lo, _ in bounds if lo is not None)
        stop = max(hi[0] for _, hi in bounds if hi is not None)
        spans.append((start, stop, [m[0] for m in unit]))
    spans.sort()
    # Merge into clusters of chained overlaps; a cluster of one unit is provably unique.
    out: set[str] = set()
    cluster: list[list[str]] = []
    end = -1
    for start, stop, paths in spans:
        if cluster and start <= end:
            cluster.append(paths)
            end = max(end, stop)
            continue
        if len(cluster) > 1:
            out.update(p for unit in cluster for p in unit)
        cluster, end = [paths], stop
    if len(cluster) > 1:
        out.update(p for unit in cluster for p in unit)
    return out


def table_snapshot(
    where: Lake | Path, table: str, con: duckdb.DuckDBPyConnection | None = None
) -> Snapshot:
    """Every file of a table's current snapshot, as one pseudo-hour `*` (rollups: no dedup)."""
    root, dt, adds = _snapshot_adds(lake_of(where), table, con)
    if adds is None:
        return Snapshot(root, {})
    paths = tuple(sorted(_name(root, add.path) for add in adds))
    return Snapshot(root, {"*": Hour(HourFiles("", "", paths, 0, 0), paths, ())}, dt)


def table_files(
    where: Lake | Path, table: str, con: duckdb.DuckDBPyConnection | None = None
) -> list[str]:
    """Every file in a table's current snapshot (rollups: no dedup needed): absolute paths
    (local lake) or Delta-relative ones (remote)."""
    snap = table_snapshot(where, table, con)
    return list(snap.hours["*"].paths) if snap.hours else []


# -- SQL of the views ---------------------------------------------------------------------------


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def timestamp_literal(ts: object) -> str:
    from datetime import datetime

    assert isinstance(ts, datetime)
    return f"TIMESTAMPTZ {quote_literal(ts.isoformat())}"


def scan(files: list[str] | tuple[str, ...], partitions: list[str]) -> str:
    """`read_parquet([...])` over an explicit file list; partition columns typed as strings."""
    listed = ", ".join(quote_literal(f) for f in files)
    if not partitions:
        return f"read_parquet([{listed}])"
    types = ", ".join(f"{quote_literal(p)}: {HIVE_TYPES.get(p, 'varchar')}" for p in partitions)
    return f"read_parquet([{listed}], hive_partitioning = true, hive_types = {{{types}}})"


def window_predicate(window: Window, column: str = "ts") -> str:
    parts = []
    if window.since is not None:
        parts.append(f"{column} >= {timestamp_literal(window.since)}")
    if window.until is not None:
        parts.append(f"{column} < {timestamp_literal(window.until)}")
    return " AND ".join(parts)


def empty_view(columns: list[tuple[str, str, bool]]) -> str:
    """A typed view with no rows: an empty lake answers 0 rows, not `No files found`."""
    cols = ", ".join(f"CAST(NULL AS {t}) AS {quote_ident(n)}" for n, t, _ in columns)
    return f"SELECT {cols} WHERE false"


Scan = Callable[[list[str] | tuple[str, ...], list[str]], str]
"""Files (as a Snapshot names them) and partition columns -> a SQL relation reading them."""


def logs_sql(
    hours: list[Hour], window: Window, columns: list[str], reader: Scan | None = None
) -> str | None:
    """Clean hours read as-is, the others deduplicated; None when there is nothing to read."""
    read = reader or scan
    cols = ", ".join(quote_ident(c) for c in columns)
    where = window_predicate(window)
    where = f" WHERE {where}" if where else ""
    dirty = [p for h in hours for p in h.dedup_paths]
    skip = set(dirty)
    clean = [p for h in hours for p in h.paths if p not in skip]
    branches = []
    if clean:
        branches.append(f"SELECT {cols} FROM {read(clean, layout.PARTITION_COLUMNS)}{where}")
    if dirty:
        # A redelivered entry decodes to the same row, so its copies share date and hour:
        # keying on them too lets date/hour predicates prune files. DISTINCT ON runs as a hash
        # aggregate, ~3x faster here than QUALIFY row_number() OVER (PARTITION BY ...) = 1.
        branches.append(
            f"SELECT DISTINCT ON (date, hour, stream_id) {cols} "
            f"FROM {read(dirty, layout.PARTITION_COLUMNS)}{where}"
        )
    if not branches:
        return None
    return "\nUNION ALL\n".join(branches)
