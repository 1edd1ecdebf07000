"""The read path: DuckDB views over the Delta lake, time ranges, rendering, export.

`from queries import connect` gives a notebook the same views as `logs sql`. Importing this
package is free: DuckDB and deltalake load on the first call.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

    from ingest.config import Settings


def connect(
    data_dir: str | Path | None = None,
    *,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    live: bool = False,
    dead_letters: bool = False,
    settings: Settings | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the views of `logs sql` (see queries.session.connect)."""
    from queries.session import connect as _connect

    return _connect(
        data_dir, since=since, until=until, live=live, dead_letters=dead_letters, settings=settings
    )


__all__ = ["connect"]
