"""`logs export`: the deduplicated `logs` rows of a window as plain Parquet (zstd, µs UTC),
one file or a hive-partitioned directory, hour partition by hour partition.

It reads through the same sandboxed session as `logs sql`, so `--where` is user SQL with the
same limits. Output appears atomically: a temporary sibling is renamed into place at the end.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.config import Settings
from ingest.errors import UsageError
from ingest.lake.schema import LOG_COLUMN_NAMES
from queries import guard, lake
from queries.interrupt import interruptible
from queries.session import open_session
from queries.timerange import Window

Progress = Callable[[int, int, int], None]
"""progress(hours_done, hours_total, rows_so_far)."""
FILE_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class ExportStats:
    rows: int
    nbytes: int
    seconds: float
    hours: int
    files: int
    path: Path


def parse_columns(text: str | None) -> list[str]:
    if not text:
        return list(LOG_COLUMN_NAMES)
    names = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in names if c not in LOG_COLUMN_NAMES]
    if unknown or not names:
        raise UsageError(
            f"--columns: unknown column {', '.join(map(repr, unknown)) or '(none)'}",
            hint=f"columns are {', '.join(LOG_COLUMN_NAMES)}",
        )
    return names


def is_dataset(out: Path) -> bool:
    """A `.parquet` name is one file; anything else (or an existing directory) a dataset."""
    return out.is_dir() or out.suffix.lower() not in FILE_SUFFIXES


def export(
    settings: Settings,
    out: Path,
    *,
    window: Window,
    where: str | None = None,
    columns: list[str] | None = None,
    progress: Progress | None = None,
) -> ExportStats:
    import duckdb

    started = time.monotonic()
    columns = columns or list(LOG_COLUMN_NAMES)
    dataset = is_dataset(out)
    _check_target(out, dataset)
    # In a dataset the path carries date and hour; the files hold the other columns.
    file_columns = [c for c in columns if not (dataset and c in ("date", "hour"))]
    if not file_columns:
        raise UsageError("--columns: a dataset needs a column besides date and hour")
    select = ", ".join(lake.quote_ident(c) for c in file_columns)
    predicate = f"(\n{where}\n)" if where and where.strip() else "true"
    template = f"SELECT {select} FROM logs WHERE {{hour}} AND {predicate}\nORDER BY ts"
    session = open_session(
        settings, window=window, views={"logs"}, check=template.format(hour="true")
    )
    staging = out.parent / f".{out.name}.tmp-{os.getpid()}"
    rows = files = 0
    try:
        with interruptible(session.con):
            writer: Any = None
            total = len(session.hours)
            if progress:
                progress(0, total, 0)
            if dataset:
                staging.mkdir(parents=True)
            for done, hour in enumerate(session.hours, 1):
                # Our own values (validated partition names), so literals are safe here.
                where_hour = (
                    f"date = {lake.quote_literal(hour.files.date)} AND "
                    f"hour = {lake.quote_literal(hour.files.hour)}"
                )
                reader = _reader(session, template.format(hour=where_hour))
                if dataset:
                    part = staging / f"date={hour.files.date}" / f"hour={hour.files.hour}"
                    written = _write_file(reader, part / "part-00000.parquet", skip_empty=True)
                    files += 1 if written else 0
                    rows += written
                else:
                    if writer is None:
                        writer = _parquet_writer(staging, reader.schema)
                    for batch in reader:
                        writer.write_batch(batch)
                        rows += batch.num_rows
                        if progress:  # rows move within a long hour too
                            progress(done - 1, total, rows)
                if progress:
                    progress(done, total, rows)
            if not dataset:
                if writer is None:  # nothing in the window: still a valid, typed, empty file
                    writer = _parquet_writer(
                        staging, _reader(session, template.format(hour="false")).schema
                    )
                writer.close()
                files = 1
            nbytes = _size(staging)
            _publish(staging, out)
    except duckdb.Error as exc:
        raise guard.translate(exc, session.lake) from None
    finally:
        session.con.close()
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
        elif staging.exists():
            staging.unlink()
    return ExportStats(rows, nbytes, time.monotonic() - started, len(session.hours), files, out)


def _check_target(out: Path, dataset: bool) -> None:
    if not out.parent.is_dir():
        raise UsageError(f"cannot write {out}: no directory {out.parent}")
    if dataset and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(
            f"{out} exists and is not an empty directory",
            hint="give a new directory, or a FILE.parquet for one file",
        )
    if not dataset and out.is_dir():
        raise UsageError(f"{out} is a directory")


def _reader(session: Any, sql: str) -> Any:
    import warnings

    cursor = session.con.execute(sql)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cursor.to_arrow_reader(131_072)


def _parquet_writer(path: Path, schema: Any) -> Any:
    import pyarrow.parquet as pq

    return pq.ParquetWriter(str(path), schema, compression="zstd", coerce_timestamps="us")


def _write_file(reader: Any, path: Path, skip_empty: bool) -> int:
    writer = None
    rows = 0
    for batch in reader:
        if not batch.num_rows:
            continue
        if writer is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = _parquet_writer(path, reader.schema)
        writer.write_batch(batch)
        rows += batch.num_rows
    if writer is not None:
        writer.close()
    elif not skip_empty:
        _parquet_writer(path, reader.schema).close()
    return rows


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _publish(staging: Path, out: Path) -> None:
    if staging.is_dir() and out.is_dir():
        out.rmdir()  # checked empty above
    os.replace(staging, out)
