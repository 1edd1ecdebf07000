"""An in-memory DuckDB with the lake's views (`logs`, `rollups_hourly`, `rollups_daily`,
`dead_letters`), optionally locked down so user SQL may read the lake and nothing else.

`logs` shows every stream_id once, is narrowed to a time window by partition pruning plus a
`ts` filter, and with `live` also holds the entries still in Redis. A local lake is read with
`read_parquet` over the snapshot's files; a remote one (s3://, az://, gs://) through Arrow
datasets of the same files registered in the connection, which DuckDB's file sandbox does not
govern: user SQL still reads no file at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.config import Settings
from ingest.errors import DataUnavailable
from ingest.lake import layout
from ingest.lake.location import Lake, lake_of
from ingest.lake.schema import (
    LOG_COLUMN_NAMES,
    LOG_COLUMNS,
)
from queries import lake
from queries.lake import Hour, Scan, Snapshot
from queries.timerange import Window
from queries.views import DEAD_LETTERS, LAKE_VIEWS, VIEWS

if TYPE_CHECKING:
    import duckdb

    from ingest.records import Row

_ROLLUP_PARTITIONS = {layout.ROLLUPS_HOURLY: ["date", "hour"], layout.ROLLUPS_DAILY: ["date"]}


@dataclass
class Session:
    con: duckdb.DuckDBPyConnection
    lake: Path | str
    """Absolute lake directory (the only place user SQL may read), or a remote lake's URI."""
    hours: list[Hour] = field(default_factory=list)
    """Hour partitions of `logs` inside the window (empty when `logs` was not built)."""
    location: Lake | None = None
    """Where the lake is (remote lakes are read through registered datasets)."""
    registered: int = 0
    """Datasets registered so far (their names are numbered)."""

    def reader(self, snapshot: Snapshot) -> Scan:
        """How this session reads files of `snapshot`: `read_parquet` for a local lake, a
        registered Arrow dataset of exactly those files for a remote one."""
        if self.location is None or self.location.is_local or snapshot.table is None:
            return lake.scan
        from ingest.lake.datasets import Fragments

        fragments = Fragments(snapshot.table)

        def read(files: list[str] | tuple[str, ...], partitions: list[str]) -> str:
            self.registered += 1
            name = f"_lake_files_{self.registered}"
            self.con.register(name, fragments.subset(files))
            return lake.quote_ident(name)

        return read


def referenced_views(sql: str) -> set[str]:
    """Views a statement names. Building only those keeps e.g. a rollups query from reading
    the logs snapshot; when none is named (`show tables`, `select 1`) the lake views are built."""
    named = {v for v in VIEWS if re.search(rf"\b{v}\b", sql, re.IGNORECASE)}
    return named or set(LAKE_VIEWS)


def open_session(
    settings: Settings,
    *,
    window: Window | None = None,
    views: Iterable[str] = VIEWS,
    live: bool = False,
    read_dead_letters: bool = True,
    sandbox: bool = True,
    check: str | None = None,
) -> Session:
    """Build the views. `read_dead_letters=False` gives an empty typed `dead_letters` (no Redis).
    With `sandbox`, DuckDB may afterwards read only under the lake directory, load nothing and
    change no setting (reliability.md §4.3; the order of the SETs matters). `check` is user SQL
    to pass the statement gate first, before the lake or Redis is touched."""
    import duckdb

    from queries import guard

    window = window or Window()
    location = lake_of(settings)
    lake_dir: Path | str = location.root.resolve() if location.is_local else location.uri
    con = duckdb.connect(
        ":memory:",
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
        },
    )
    con.execute("SET enable_progress_bar = false")
    con.execute("SET TimeZone = 'UTC'")
    if sandbox:
        # allowed_directories must be set before external access goes off. A remote lake is
        # read through registered datasets: no directory at all is allowed then.
        allowed = lake.quote_literal(str(lake_dir) + "/") if location.is_local else ""
        con.execute(f"SET allowed_directories = [{allowed}]")
        con.execute("SET enable_external_access = false")
    try:
        if check is not None:
            guard.check(check, con)
        try:
            session = _build(
                con, lake_dir, location, settings, window, set(views), live, read_dead_letters
            )
        except duckdb.Error as exc:
            # Our own view SQL failed: a damaged or vanished file, or a table of another shape.
            error = guard.translate(exc, lake_dir)
            if not isinstance(error, DataUnavailable):
                error = DataUnavailable(f"cannot open the lake under {lake_dir}: {error}")
            raise error from None
    except BaseException:
        con.close()
        raise
    if sandbox:
        con.execute("SET lock_configuration = true")
    return session


def _build(
    con: duckdb.DuckDBPyConnection,
    lake_dir: Path | str,
    location: Lake,
    settings: Settings,
    window: Window,
    wanted: set[str],
    live: bool,
    read_dead_letters: bool,
) -> Session:
    session = Session(con, lake_dir, location=location)
    if layout.LOGS_TABLE in wanted:
        _create_logs(session, settings, window, live)
    for name in (layout.ROLLUPS_HOURLY, layout.ROLLUPS_DAILY):
        if name in wanted:
            snapshot = lake.table_snapshot(location, name)
            files = list(snapshot.hours["*"].paths) if snapshot.hours else []
            cols = ", ".join(lake.quote_ident(n) for n, _, _ in LAKE_VIEWS[name])
            read = session.reader(snapshot)
            body = (
                f"SELECT {cols} FROM {read(files, _ROLLUP_PARTITIONS[name])}"
                if files
                else lake.empty_view(LAKE_VIEWS[name])
            )
            con.execute(f"CREATE VIEW {name} AS {body}")
    if DEAD_LETTERS in wanted:
        _create_dead_letters(session, settings, read_dead_letters)
    return session


def _create_logs(session: Session, settings: Settings, window: Window, live: bool) -> None:
    # Redis before the lake: an entry acknowledged after our Redis read was committed before
    # it, so the later snapshot holds it; read the other way round it could be in neither.
    in_flight = None
    if live:
        from queries import live as live_mod

        in_flight = live_mod.live_rows(settings)
    snapshot = lake.logs_snapshot(session.location or settings.data_dir)
    session.hours = snapshot.select(window)
    body = lake.logs_sql(session.hours, window, LOG_COLUMN_NAMES, session.reader(snapshot))
    if in_flight is not None:
        live_body = _create_live(session, in_flight, snapshot, window)
        body = live_body if body is None else f"{body}\nUNION ALL\n{live_body}"
    session.con.execute(f"CREATE VIEW logs AS {body or lake.empty_view(LOG_COLUMNS)}")


def _create_live(session: Session, rows: list[Row], snapshot: lake.Snapshot, window: Window) -> str:
    """The entries still in Redis, minus those already committed (same stream_id)."""
    from queries import live

    session.con.register("_live_entries", live.rows_table(rows))
    epoch = layout.EPOCH
    # A committed copy has the same ts, hence sits in the same hour: only those files matter.
    keys = {"/".join(layout.partition_of(epoch + timedelta(microseconds=r.ts))) for r in rows}
    committed = [p for k in sorted(keys) if k in snapshot.hours for p in snapshot.hours[k].paths]
    file_cols = [c for c in LOG_COLUMN_NAMES if c not in layout.PARTITION_COLUMNS]
    cols = ", ".join(lake.quote_ident(c) for c in file_cols)
    conditions = [lake.window_predicate(window)]
    if committed:
        read = session.reader(snapshot)
        conditions.append(f"stream_id NOT IN (SELECT stream_id FROM {read(committed, [])})")
    where = " AND ".join(c for c in conditions if c)
    return (
        f"SELECT {cols}, strftime(ts, '%Y-%m-%d') AS date, strftime(ts, '%H') AS hour "
        f"FROM _live_entries{' WHERE ' + where if where else ''}"
    )


def _create_dead_letters(session: Session, settings: Settings, read: bool) -> None:
    from queries.live import DEAD_LETTER_COLUMNS

    if not read:
        session.con.execute(f"CREATE VIEW {DEAD_LETTERS} AS {lake.empty_view(DEAD_LETTER_COLUMNS)}")
        return
    from queries import live

    session.con.register("_dead_letter_entries", live.dead_letters(settings))
    cols = ", ".join(lake.quote_ident(n) for n, _, _ in DEAD_LETTER_COLUMNS)
    session.con.execute(f"CREATE VIEW {DEAD_LETTERS} AS SELECT {cols} FROM _dead_letter_entries")


def connect(
    data_dir: str | Path | None = None,
    *,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    live: bool = False,
    dead_letters: bool = False,
    settings: Settings | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the same views as `logs sql` (the notebook API).

    `data_dir` and the rest default to the `LOGS_*` environment / `logs.toml`; `since`/`until`
    take the `--since` forms or datetimes; `live` adds entries still in Redis; `dead_letters`
    reads the dead-letter stream (else the view is empty). Not sandboxed: it is your Python.
    The views pin the current snapshot: reconnect to see newer commits.

        from queries import connect
        con = connect(since="1h")
        con.sql("select level, count(*) from logs group by level").pl()
    """
    from ingest import config
    from queries.timerange import window as make_window

    if settings is None:
        flags = {"data_dir": str(data_dir)} if data_dir is not None else {}
        settings = config.load(flags).settings
    elif data_dir is not None:
        from dataclasses import replace

        settings = replace(settings, data_dir=Path(data_dir))
    window = make_window(since, until, datetime.now(UTC))
    return open_session(
        settings, window=window, live=live, read_dead_letters=dead_letters, sandbox=False
    ).con
