"""`logs sql` as a library call: gate the statement, build only the views it names, run it with
bound parameters, stream the result to a writer. Raises ingest.errors; never prints.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ingest.config import Settings
from ingest.errors import DataUnavailable, UsageError
from queries import guard, render
from queries.interrupt import interruptible
from queries.session import open_session
from queries.timerange import Window


def run_sql(
    settings: Settings,
    sql: str,
    out: IO[Any],
    *,
    fmt: render.Format = render.Format.table,
    params: dict[str, str] | None = None,
    window: Window | None = None,
    live: bool = False,
    **writer_options: Any,
) -> int:
    """Run one read-only statement and write its rows to `out`; returns the row count."""
    try:
        return _run_once(settings, sql, out, fmt, params, window, live, writer_options)
    except guard.SnapshotChanged:
        # Vacuum may delete a file between our snapshot and DuckDB opening it: retry once on
        # a fresh snapshot (only raised before any row was written).
        return _run_once(settings, sql, out, fmt, params, window, live, writer_options)


def _run_once(
    settings: Settings,
    sql: str,
    out: IO[Any],
    fmt: render.Format,
    params: dict[str, str] | None,
    window: Window | None,
    live: bool,
    writer_options: dict[str, Any],
) -> int:
    import duckdb

    # The views the statement reads (DuckDB's parser says which), dead_letters from Redis.
    session = open_session(settings, window=window, live=live, check=sql)
    con = session.con
    try:
        with interruptible(con):
            try:
                cursor = con.execute(sql, params) if params else con.execute(sql)
            except duckdb.Error as exc:
                raise guard.translate(exc, session.lake) from None
            try:
                return render.WRITERS[fmt](render.Result.of(cursor), out, **writer_options)
            except duckdb.Error as exc:
                error = guard.translate(exc, session.lake)
                if isinstance(error, guard.SnapshotChanged):  # rows may be out: no retry
                    error = DataUnavailable(str(error), hint=error.hint)
                raise error from None
    finally:
        con.close()


@contextmanager
def output_file(path: Path, binary: bool) -> Iterator[IO[Any]]:
    """Write `path` through a temporary sibling, renamed into place only on success. The file
    gets the mode any new file gets (0666 less the umask), as `logs export`'s do: mkstemp's
    0600 would make a shared result unreadable to the group."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"cannot write {path}: no directory {folder}")
    fd, tmp = _new_sibling(folder, path.name)
    try:
        stream: IO[Any] = (
            os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")
        )
        with stream:
            yield stream
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _new_sibling(folder: Path, name: str) -> tuple[int, str]:
    """A fresh temporary file next to the target, created with O_EXCL (as mkstemp) but 0666."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".{name}.{os.urandom(4).hex()}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise UsageError(f"cannot write {folder / name}: {exc.strerror or exc}") from None
    raise UsageError(f"cannot write {folder / name}: no free temporary name")
