"""The views `logs sql` and `connect()` offer, by name, with the columns of each. Pure: the
guard that checks a statement, the session that builds the views and the CLI all read it."""

from __future__ import annotations

from ingest.lake import layout
from ingest.lake.schema import LOG_COLUMNS, ROLLUP_DAILY_COLUMNS, ROLLUP_HOURLY_COLUMNS

DEAD_LETTERS = "dead_letters"
LAKE_VIEWS: dict[str, list[tuple[str, str, bool]]] = {
    layout.LOGS_TABLE: LOG_COLUMNS,
    layout.ROLLUPS_HOURLY: ROLLUP_HOURLY_COLUMNS,
    layout.ROLLUPS_DAILY: ROLLUP_DAILY_COLUMNS,
}
VIEWS = (*LAKE_VIEWS, DEAD_LETTERS)
VIEWS_HINT = (
    "views are logs, rollups_hourly, rollups_daily and dead_letters; "
    "`logs schema VIEW` lists their columns"
)
