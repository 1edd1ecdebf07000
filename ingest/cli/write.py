"""Write-path commands: `logs gen`, `logs ingest`, `logs down`."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from ingest.cli.common import (
    DataDirOpt,
    GroupOpt,
    LakeUriOpt,
    RedisUrlOpt,
    StreamOpt,
    command,
    settings,
)
from ingest.cli.plain import note

if TYPE_CHECKING:
    import redis

    from ingest.config import Settings


class Shape(StrEnum):
    fields = "fields"
    json = "json"
    text = "text"


def producer_client(s: Settings) -> redis.Redis:
    """A client for producers: the configured Redis, else the embedded one (started if needed)."""
    from ingest import redis_server
    from ingest.redis_conn import connect, resolve_url

    if not s.redis_url:
        url, started = redis_server.start(s.data_dir)
        if started:
            note(
                f"started the embedded Redis at {url} (data in {s.data_dir}/redis; "
                "`logs down` stops it)"
            )
    return connect(resolve_url(s, start_embedded=True))


def gen(
    ctx: typer.Context,
    count: Annotated[
        int, typer.Option("--count", "-n", min=0, help="Entries to generate.")
    ] = 10_000,
    hours: Annotated[
        float, typer.Option(min=0.0, help="Spread event times over the last H hours.")
    ] = 1.0,
    rate: Annotated[
        float | None,
        typer.Option(
            min=0.0, help="Entries per second (default: as fast as possible).", show_default=False
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    shape: Annotated[
        Shape,
        typer.Option(help="Entry shape: JSON in one field, a field per column, or plain text."),
    ] = Shape.json,
    malformed: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of malformed entries.")
    ] = 0.0,
    data_dir: DataDirOpt = None,
    redis_url: RedisUrlOpt = None,
    stream: StreamOpt = None,
) -> None:
    """Generate realistic synthetic logs into the stream.

    Example:

        logs gen --count 50000 --hours 3
    """
    from ingest.generate import entries
    from ingest.producer import xadd_all

    s = settings(ctx, data_dir=data_dir, redis_url=redis_url, stream=stream)
    r = producer_client(s)
    started = time.monotonic()
    source = entries(count, hours=hours, seed=seed, shape=shape.value, malformed=malformed)
    if rate:
        source = _paced(source, rate)
    sent = xadd_all(r, s.stream, source)
    elapsed = time.monotonic() - started
    note(
        f"generated {sent} entries into {s.stream} in {elapsed:.1f} s "
        f"({sent / max(elapsed, 1e-9):,.0f}/s)"
    )


def _paced(source, rate: float):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    for i, fields in enumerate(source):
        wait = started + i / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        yield fields


def ingest(
    ctx: typer.Context,
    drain: Annotated[
        bool, typer.Option("--drain", help="Exit 0 once nothing is pending or undelivered.")
    ] = False,
    consumer: Annotated[
        str | None,
        typer.Option(
            "--consumer",
            help="Consumer name [env LOGS_CONSUMER; default host-pid]",
            show_default=False,
        ),
    ] = None,
    batch_rows: Annotated[
        int | None,
        typer.Option(
            help="Commit once this many entries are buffered; reads ask for no more, so a commit "
            "holds about this many [env LOGS_BATCH_ROWS; default 75000]",
            show_default=False,
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            show_default=False,
            help="Serve Prometheus /metrics and /healthz on this port [env LOGS_METRICS_PORT]",
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    lake_uri: LakeUriOpt = None,
    redis_url: RedisUrlOpt = None,
    stream: StreamOpt = None,
    group: GroupOpt = None,
) -> None:
    """Consume the stream into the Delta table (at-least-once; queries see each entry once).

    Example:

        logs ingest --drain
    """
    from ingest.consume import process

    s = settings(
        ctx,
        data_dir=data_dir,
        lake_uri=lake_uri,
        redis_url=redis_url,
        stream=stream,
        group=group,
        consumer=consumer,
        batch_rows=batch_rows,
        metrics_port=metrics_port,
    )
    started = time.monotonic()
    stats = process.run(s, drain=drain)
    elapsed = time.monotonic() - started
    note(
        f"ingested {stats.ingested} entries, dead-lettered {stats.dead_lettered}, "
        f"{stats.commits} commits in {elapsed:.2f} s"
    )


def down(ctx: typer.Context, data_dir: DataDirOpt = None) -> None:
    """Stop the embedded Redis (its data stays under data/redis).

    Example:

        logs down
    """
    from ingest import redis_server

    s = settings(ctx, data_dir=data_dir)
    if redis_server.stop(s.data_dir):
        note("stopped the embedded Redis")
    else:
        note("the embedded Redis was not running")


def register(app: typer.Typer) -> None:
    command(app, gen)
    command(app, ingest)
    command(app, down)
