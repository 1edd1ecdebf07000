"""Opening the lake's Delta tables, local or remote: with the lake's storage options, None for
a table that does not exist yet, and a one-line DataUnavailable for a lake that cannot be
reached (missing bucket, refused credentials, unreachable endpoint)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ingest.lake import layout
from ingest.lake.errors import storage_error
from ingest.lake.location import Lake

if TYPE_CHECKING:
    from deltalake import CommitProperties, DeltaTable

MAX_COMMIT_RETRIES = 100
"""Commit attempts when other writers keep landing first: deltalake's default (15) let a few
of 200 appends by 4 processes fail, even on local disk; 100 lost none (object-storage.md)."""


def open_delta(lake: Lake, table: str = layout.LOGS_TABLE) -> DeltaTable | None:
    """The table's latest snapshot; None when there is no table yet."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    uri = lake.table_uri(table)
    try:
        return DeltaTable(uri, storage_options=lake.storage_options)
    except TableNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - OSError for a missing bucket, DeltaError, ...
        raise storage_error(exc, lake, f"opening {table}") from None


def table_exists(lake: Lake, table: str) -> bool:
    if lake.is_local:
        return (lake.table_path(table) / "_delta_log").is_dir()
    return open_delta(lake, table) is not None


def commit_properties(tag: str | None = None) -> CommitProperties:
    """CommitProperties with our retry budget (and a `loglake` tag in the commit info)."""
    from deltalake import CommitProperties

    return CommitProperties(
        custom_metadata={"loglake": tag} if tag else None, max_commit_retries=MAX_COMMIT_RETRIES
    )
