"""An in-memory DuckDB with the lake's views (`logs`, `rollups_hourly`, `rollups_daily`,
`dead_letters`), optionally locked down so user SQL may read the lake and nothing else.

`logs` shows every stream_id once, is narrowed to a time window by partition pruning plus a
`ts` filter, and with `live` also holds the entries still in Redis. A local lake is read with
`read_parquet` over the snapshot's files; a remote one (s3://, az://, gs://) through Arrow
datasets of the same files registered in the connection, which DuckDB's file sandbox does not
govern: user SQL still reads no file at all.
"""

from __future__ import annotations

from collections.abc import Iterable
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

NOT_LOADED = (
    "dead_letters is not loaded in this connection: connect(dead_letters=True) reads the "
    "dead-letter stream from Redis"
)
_ROLLUP_PARTITIONS = {layout.ROLLUPS_HOURLY: ["date", "hour"], layout.ROLLUPS_DAILY: ["date"]}


class Session:
    """The connection and what its views were built from. (A plain class: a dataclass costs
    ~0.5 ms to define, at every start-up of `logs sql`.)"""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, lake: Path | str, location: Lake | None = None
    ) -> None:
        self.con = con
        self.lake = lake
        """Absolute lake directory (the only place user SQL may read), or a remote lake's URI."""
        self.hours: list[Hour] = []
        """Hour partitions of `logs` inside the window (empty when `logs` was not built)."""
        self.location = location
        """Where the lake is (remote lakes are read through registered datasets)."""
        self.registered = 0
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


def referenced_views(sql: str, con: duckdb.DuckDBPyConnection) -> set[str]:
    """Views a statement reads, as DuckDB's tokenizer and parser see it: a name in a comment or
    a string, or an alias, is no reference. Building only those keeps e.g. a rollups query
    from reading the logs snapshot; when none is named (`show tables`, `select 1`) the lake
    views are built."""
    import duckdb

    named = {v for v in VIEWS if v in _identifiers(sql)}
    if DEAD_LETTERS in named:
        # Reading it costs a Redis round trip (or an exit 3): ask the parser too, which also
        # knows a CTE of that name (2 ms, so only here). It binds against placeholder
        # tables, where USING/NATURAL joins and PIVOT fail: then the tokens decide.
        try:
            tables = {name.lower() for name in con.get_table_names(sql, qualified=False)}
        except duckdb.Error:
            tables = named
        if DEAD_LETTERS not in tables:
            named.discard(DEAD_LETTERS)
    return named or set(LAKE_VIEWS)


def _identifiers(sql: str) -> set[str]:
    """The identifiers of `sql`, lower-cased, but those right after AS (aliases)."""
    import duckdb

    tokens = duckdb.tokenize(sql)
    words = [
        sql[start : tokens[i + 1][0] if i + 1 < len(tokens) else len(sql)].strip()
        for i, (start, _) in enumerate(tokens)
    ]
    out = set()
    for i, (_, kind) in enumerate(tokens):
        if kind != duckdb.token_type.identifier:
            continue
        if i and words[i - 1].lower() == "as":
            continue  # an alias names a column or a table, it reads none
        text = words[i]
        if text.startswith('"') and text.endswith('"'):
            text = text[1:-1].replace('""', '"')
        out.add(text.lower())  # DuckDB matches names case-insensitively, quoted or not
    return out


def open_session(
    settings: Settings,
    *,
    window: Window | None = None,
    views: Iterable[str] | None = None,
    live: bool = False,
    read_dead_letters: bool = True,
    sandbox: bool = True,
    check: str | None = None,
) -> Session:
    """Build the views: `views`, or when None those `check` reads (every view without
    `check`). `read_dead_letters=False` gives a typed `dead_letters` that raises, when queried,
    an error saying how to load it (no Redis). With `sandbox`, DuckDB may afterwards read only
    under the lake directory, load nothing and change no setting (reliability.md §4.3; the
    order of the SETs matters). `check` is user SQL to pass the statement gate first, before
    the lake or Redis is touched."""
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
        if views is None:
            views = referenced_views(check, con) if check is not None else VIEWS
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
            snapshot = lake.table_snapshot(location, name, con)
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
    snapshot = lake.logs_snapshot(session.location or settings.data_dir, session.con)
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
        # Typed (DESCRIBE and information_schema work), but reading it fails: an empty view
        # would answer "0 dead letters" for a stream nobody looked at.
        cols = ", ".join(
            f"CAST(NULL AS {t}) AS {lake.quote_ident(n)}" for n, t, _ in DEAD_LETTER_COLUMNS
        )
        refusal = lake.quote_literal(NOT_LOADED)
        session.con.execute(
            f"CREATE VIEW {DEAD_LETTERS} AS SELECT {cols} FROM range(1) "
            f"WHERE error({refusal}) IS NULL"
        )
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
    reads the dead-letter stream (else querying that view is an error saying so, never a
    silent 0). Not sandboxed: it is your Python.
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
