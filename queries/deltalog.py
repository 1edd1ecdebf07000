"""The files of a local Delta table's current snapshot, read from `_delta_log` directly: the
newest classic checkpoint (Parquet, read by the DuckDB connection the query opens anyway) and
the JSON commits after it.

This is the read path's start-up: deltalake's import and snapshot machinery cost a `logs sql`
more than the query itself on a small lake. Anything this reader does not know for sure
(V2 or UUID checkpoints, a gap in the commits, deletion vectors, reader features, a file it
cannot parse) raises `Unsupported`, and the caller asks deltalake instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import duckdb

# Reader features that change nothing for a reader of whole files and hive partitions.
_HARMLESS_FEATURES = {"timestampNtz", "vacuumProtocolCheck"}


class Unsupported(Exception):
    """A log this reader does not handle; deltalake reads it instead."""


class AddFile(NamedTuple):
    path: str
    """Relative to the table root, URL-encoded, as the log names it."""
    partition: dict[str, str | None]
    size: int
    records: int | None
    min_id: str | None
    """Statistics of `stream_id` (None when the writer kept none)."""
    max_id: str | None


def active_files(root: Path, con: duckdb.DuckDBPyConnection | None = None) -> list[AddFile] | None:
    """The add actions of the current snapshot; None when there is no table at `root` yet.
    `con` reads a checkpoint (a private in-memory DuckDB when not given)."""
    log = root / "_delta_log"
    try:
        names = os.listdir(log)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise Unsupported(str(exc)) from None
    commits, checkpoint, parts = _log_files(names)
    after = sorted(v for v in commits if v > checkpoint)
    if checkpoint < 0 and not after:
        return None  # a log without a first commit: no table yet
    if after and after != list(range(checkpoint + 1, checkpoint + 1 + len(after))):
        raise Unsupported(f"the commits after version {checkpoint} are not contiguous")
    active: dict[str, AddFile] = {}
    if parts:
        for add in _checkpoint_adds([str(log / name) for name in parts], con):
            active[add.path] = add
    for version in after:
        _replay(log / f"{version:020d}.json", active)
    return list(active.values())


def _log_files(names: list[str]) -> tuple[list[int], int, list[str]]:
    """(commit versions, the newest complete classic checkpoint's version or -1, its files)
    among the names in `_delta_log`: `<v:20>.json`, `<v:20>.checkpoint.parquet`,
    `<v:20>.checkpoint.<part:10>.<parts:10>.parquet`."""
    commits: list[int] = []
    parts: dict[int, dict[int, str]] = {}
    totals: dict[int, int] = {}
    for name in names:
        digits, rest = name[:20], name[20:]
        if not (digits.isdigit() and digits.isascii()):
            continue
        if rest == ".json":
            commits.append(int(digits))
            continue
        middle, dot, suffix = rest.removeprefix(".checkpoint").rpartition(".")
        if not (rest.startswith(".checkpoint.") and dot and suffix in ("parquet", "json")):
            continue  # .crc, a writer's temporary file, ...
        if len(middle) == 37 and middle.count("-") == 4:
            raise Unsupported(f"V2 checkpoint {name}")  # <v>.checkpoint.<uuid>.<ext>
        numbers = middle.removeprefix(".").split(".") if middle else []
        if suffix != "parquet" or len(numbers) not in (0, 2):
            continue
        if not all(len(n) == 10 and n.isdigit() for n in numbers):
            continue
        part, total = (int(numbers[0]), int(numbers[1])) if numbers else (1, 1)
        parts.setdefault(int(digits), {})[part] = name
        totals[int(digits)] = total
    complete = [v for v, found in parts.items() if len(found) == totals[v] == max(found)]
    if not complete:
        return commits, -1, []
    newest = max(complete)
    return commits, newest, [parts[newest][p] for p in sorted(parts[newest])]


def _replay(path: Path, active: dict[str, AddFile]) -> None:
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise Unsupported(f"{path.name}: {exc}") from None
    for line in lines:
        if not line.strip():
            continue
        try:
            action = json.loads(line)
        except ValueError:
            raise Unsupported(f"{path.name}: not JSON") from None
        if "add" in action:
            add = _add(action["add"])
            active[add.path] = add
        elif "remove" in action:
            active.pop(action["remove"]["path"], None)
        elif "protocol" in action:
            _check_protocol(action["protocol"])


def _checkpoint_adds(files: list[str], con: duckdb.DuckDBPyConnection | None) -> list[AddFile]:
    import duckdb

    own = con is None
    reader = duckdb.connect() if con is None else con
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    try:
        rows = reader.execute(
            f"SELECT add, protocol FROM read_parquet([{listed}]) "
            "WHERE add IS NOT NULL OR protocol IS NOT NULL"
        ).fetchall()
    except duckdb.Error as exc:
        raise Unsupported(f"checkpoint: {str(exc).splitlines()[0]}") from None
    finally:
        if own:
            reader.close()
    adds = []
    for add, protocol in rows:
        if protocol is not None:
            _check_protocol(protocol)
        if add is not None:
            adds.append(_add(add))
    return adds


def _check_protocol(protocol: dict[str, Any]) -> None:
    version = protocol.get("minReaderVersion") or 1
    features = set(protocol.get("readerFeatures") or ())
    if version > 3 or version == 2 or (version == 3 and not features <= _HARMLESS_FEATURES):
        raise Unsupported(f"reader version {version}, features {sorted(features)}")


def _add(add: dict[str, Any]) -> AddFile:
    if add.get("deletionVector"):
        raise Unsupported("deletion vectors")
    stats: dict[str, Any] = {}
    if add.get("stats"):
        try:
            stats = json.loads(add["stats"])
        except ValueError:
            stats = {}
    low = (stats.get("minValues") or {}).get("stream_id")
    high = (stats.get("maxValues") or {}).get("stream_id")
    records = stats.get("numRecords")
    return AddFile(
        add["path"],
        dict(add.get("partitionValues") or {}),
        int(add.get("size") or 0),
        int(records) if records is not None else None,
        low if isinstance(low, str) else None,
        high if isinstance(high, str) else None,
    )
