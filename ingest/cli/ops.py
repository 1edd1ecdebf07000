"""Operations commands: `logs status` and `logs config`."""

from __future__ import annotations

import inspect
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from ingest import status as status_lib
from ingest.cli.common import (
    DataDirOpt,
    GroupOpt,
    LakeUriOpt,
    RedisUrlOpt,
    StreamOpt,
    command,
    format_option,
    out,
    out_table,
    resolve,
    settings,
)
from ingest.config import mask_url
from ingest.errors import DataUnavailable, RedisUnavailable


class TableOrJson(StrEnum):
    table = "table"
    json = "json"


# -- status -----------------------------------------------------------------------------------


def status(
    ctx: typer.Context,
    fmt: Annotated[TableOrJson, format_option("table")] = TableOrJson.table,
    hours: Annotated[
        int, typer.Option("--hours", min=0, help="Recent hour partitions to list.")
    ] = status_lib.RECENT_HOURS,
    data_dir: DataDirOpt = None,
    lake_uri: LakeUriOpt = None,
    redis_url: RedisUrlOpt = None,
    stream: StreamOpt = None,
    group: GroupOpt = None,
) -> None:
    """Show the pipeline at a glance: stream, group lag and pending, consumers, DLQ, lake hours,
    dirty hours, scheduled jobs and the scheduler lease.

    When Redis (or the lake) cannot be reached the rest is still shown, and the exit code is 3.

    Example:

        logs status -F json | jq '.group.lag, .dlq.length'
    """
    s = settings(
        ctx, data_dir=data_dir, lake_uri=lake_uri, redis_url=redis_url, stream=stream, group=group
    )
    facts = status_lib.collect(s, hours)
    if fmt is TableOrJson.json:
        out(json.dumps(facts, indent=2))
    else:
        from ingest.status_table import render_table

        render_table(facts, sys.stdout)
    if not facts["redis"]["reachable"]:
        raise RedisUnavailable(facts["redis"]["error"] or "Redis unreachable")
    if not facts["lake"]["reachable"]:
        raise DataUnavailable(f"cannot read the lake: {facts['lake']['error']}")


def _status_help() -> str:
    """The command's docstring plus the JSON keys documented in ingest/status.py."""
    head, _, example = inspect.cleandoc(status.__doc__ or "").partition("Example:")
    module = status_lib.__doc__ or ""
    keys = module[module.index("- `generated_at`") :].strip()
    return f"{head.rstrip()}\n\n\b\nJSON keys (stable):\n{keys}\n\nExample:{example}"


# -- config -----------------------------------------------------------------------------------


def config(
    ctx: typer.Context,
    fmt: Annotated[TableOrJson, format_option("table")] = TableOrJson.table,
    data_dir: DataDirOpt = None,
    lake_uri: LakeUriOpt = None,
    redis_url: RedisUrlOpt = None,
    stream: StreamOpt = None,
    group: GroupOpt = None,
) -> None:
    """Show every setting, its value and where it came from: flag, env LOGS_X, file PATH or
    default. Passwords in URLs are masked.

    Example:

        LOGS_STREAM=app logs config -F json | jq .stream
    """
    resolved = resolve(
        ctx, data_dir=data_dir, lake_uri=lake_uri, redis_url=redis_url, stream=stream, group=group
    )
    values: dict[str, dict[str, Any]] = {}
    for name, source in resolved.sources.items():
        value = getattr(resolved.settings, name)
        if isinstance(value, Path):
            value = str(value)
        elif name == "redis_url" and value:
            value = mask_url(value)
        elif name == "receive_tokens" and value:
            value = "***"  # secrets are never printed
        elif name == "storage":
            value, source = storage_value(resolved)
        elif name == "lake_uri":
            value = resolved.settings.lake_location  # the default spelled out
        values[name] = {"value": value, "source": source}
    if fmt is TableOrJson.json:
        out(json.dumps(values, indent=2))
        return
    rows = [
        (name, "" if v["value"] is None else str(v["value"]), v["source"])
        for name, v in values.items()
        if name != "storage"
    ]
    rows += [(f"storage.{k}", v, src) for k, (v, src) in storage_rows(resolved).items()]
    if resolved.settings.redis_url is None:
        rows = [(n, "(embedded)" if n == "redis_url" else v, src) for n, v, src in rows]
    out_table(("SETTING", "VALUE", "SOURCE"), rows)


def storage_rows(resolved: Any) -> dict[str, tuple[str, str]]:
    """NAME -> (value, source): the object-store options in effect, from logs.toml
    `[storage]` or the environment (AWS_*, AZURE_*, GOOGLE_*: they win); secrets as ***."""
    from ingest.lake.location import environment_options, masked

    rows: dict[str, tuple[str, str]] = {}
    source = resolved.sources.get("storage", "default")
    for name, value in resolved.settings.storage:
        rows[name] = (masked(name, value), source)
    for name, value in environment_options().items():
        rows[name] = (masked(name, value), f"env {name}")
    return rows


def storage_value(resolved: Any) -> tuple[dict[str, str], str]:
    """`storage` in `logs config -F json`: {NAME: value} and where the values came from."""
    rows = storage_rows(resolved)
    sources = sorted({src if not src.startswith("env ") else "env" for _, src in rows.values()})
    return {k: v for k, (v, _) in rows.items()}, ", ".join(sources) or "default"


def register(app: typer.Typer) -> None:
    command(app, status, help=_status_help())
    command(app, config)
