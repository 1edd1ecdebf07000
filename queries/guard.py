"""The statement gate in front of user SQL, and DuckDB errors turned into what users read.

DuckDB's settings are defence in depth, not a sandbox: `allowed_directories` also allows
*writes* there (reliability.md §0.9), so only read statements get as far as DuckDB.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.errors import DataUnavailable, LogsError, QueryError
from queries.views import VIEWS_HINT

if TYPE_CHECKING:
    import duckdb

# DESCRIBE, SHOW, SUMMARIZE, FROM-first and VALUES report as SELECT.
ALLOWED = {"SELECT", "EXPLAIN"}
READ_ONLY_HINT = (
    "logs sql runs one read-only statement (SELECT, WITH, DESCRIBE, SUMMARIZE, "
    "EXPLAIN); write files with `-o FILE` or `logs export`"
)
_SYSTEM_SUGGESTION = re.compile(
    r'\nDid you mean "(?:pg_|duckdb_|sqlite_|information_schema)'
    r'[^"]*"\?'
)


class SnapshotChanged(DataUnavailable):
    """A file of our snapshot disappeared before DuckDB opened it; a fresh snapshot helps."""


def check(sql: str, con: duckdb.DuckDBPyConnection | None = None) -> None:
    """Refuse anything but a single read statement, before DuckDB runs any of it. Pass the
    session's connection: the module-level parser would first build a default database."""
    import duckdb

    try:
        statements = (con or duckdb).extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(str(exc).rstrip(), hint=VIEWS_HINT) from None
    if not statements:
        raise QueryError("no SQL statement given", hint=READ_ONLY_HINT)
    if len(statements) > 1:
        raise QueryError(
            f"{len(statements)} statements given; logs sql runs one per call", hint=READ_ONLY_HINT
        )
    kind = statements[0].type.name
    if kind not in ALLOWED:
        word = sql.strip().split(None, 1)[0].upper() if sql.strip() else kind
        raise QueryError(
            f"{word} statements are refused: the lake is read-only here", hint=READ_ONLY_HINT
        )


def translate(exc: duckdb.Error, lake: Path | str) -> LogsError:
    """A DuckDB error -> `logs: error: <DuckDB's message, LINE/caret kept>` + one hint."""
    import duckdb

    if isinstance(exc, duckdb.InterruptException):
        raise KeyboardInterrupt from None
    text = str(exc).rstrip()
    if isinstance(exc, duckdb.PermissionException):
        return QueryError(
            text,
            hint=f"logs sql reads only the lake under {lake}; "
            "write files with `-o FILE` or `logs export`",
        )
    if vanished_file(exc, lake):
        return SnapshotChanged(
            text, hint="a file of the snapshot is gone (vacuum ran during the query?); run it again"
        )
    damaged = (duckdb.IOException, duckdb.InvalidInputException)
    if isinstance(exc, damaged) and f"{lake}/" in text:
        return DataUnavailable(text, hint=f"a file under {lake} is damaged or unreadable")
    if isinstance(exc, duckdb.CatalogException):
        # DuckDB suggests system tables (`pg_enum`) for unknown names: noise next to our hint.
        text = _SYSTEM_SUGGESTION.sub("", text)
    return QueryError(text, hint=VIEWS_HINT)


def vanished_file(exc: BaseException, lake: Path | str) -> bool:
    """An IO error on one of our own lake files (deleted between snapshot and read)."""
    import duckdb

    text = str(exc)
    gone = ("No such file", "Cannot open file", "No files found that match")
    return (
        isinstance(exc, duckdb.IOException)
        and str(lake) in text
        and any(phrase in text for phrase in gone)
    )
