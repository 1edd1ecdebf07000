"""`logs up` and `logs demo`: run the whole pipeline from one command."""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Annotated, Any

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
from ingest.cli.write import producer_client


def up(
    ctx: typer.Context,
    consumers: Annotated[
        int, typer.Option("--consumers", "-c", min=1, max=64, help="Ingest processes to run.")
    ] = 1,
    scheduler: Annotated[
        bool, typer.Option(help="Also run the scheduler (compaction, rollups, retention).")
    ] = True,
    data_dir: DataDirOpt = None,
    lake_uri: LakeUriOpt = None,
    redis_url: RedisUrlOpt = None,
    stream: StreamOpt = None,
    group: GroupOpt = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=1,
            max=65535,
            show_default=False,
            help="Ingest process i serves Prometheus metrics on PORT+i-1 [env LOGS_METRICS_PORT]",
        ),
    ] = None,
    receive: Annotated[
        bool,
        typer.Option(
            "--receive",
            help="Also run `logs receive` (OTLP, _bulk, HEC, Loki, NDJSON over HTTP); "
            "metrics on PORT+consumers with --metrics-port.",
        ),
    ] = False,
) -> None:
    """Run everything: the embedded Redis (when no URL is set), N ingest processes and the
    scheduler, restarting any that crash. Ctrl-C stops all of them cleanly.

    Example:

        logs up --consumers 2
    """
    s = settings(
        ctx,
        data_dir=data_dir,
        lake_uri=lake_uri,
        redis_url=redis_url,
        stream=stream,
        group=group,
        metrics_port=metrics_port,
    )
    from ingest.redis_conn import resolve_url

    producer_client(s).close()  # starts the embedded Redis when no URL is configured
    url = resolve_url(s)
    env = {
        **os.environ,
        "LOGS_REDIS_URL": url,
        "LOGS_DATA_DIR": str(s.data_dir.resolve()),
        **({"LOGS_LAKE_URI": s.lake_uri} if s.lake_uri else {}),
        "LOGS_STREAM": s.stream,
        "LOGS_GROUP": s.group,
    }
    env.pop("LOGS_METRICS_PORT", None)  # each child gets its own port below
    root = ctx.find_root().obj or {}
    if root.get("config"):
        env["LOGS_CONFIG"] = str(root["config"])
    python = [sys.executable, "-m", "ingest"]
    host = socket.gethostname()
    children = {
        # Stable consumer names: a restarted child re-reads its own pending entries at once.
        f"ingest-{i}": [
            *python,
            "ingest",
            "--consumer",
            f"{host}-up-{i}",
            *(["--metrics-port", str(s.metrics_port + i - 1)] if s.metrics_port else []),
        ]
        for i in range(1, consumers + 1)
    }
    if scheduler:
        children["scheduler"] = [*python, "schedule"]
    if receive:
        from ingest.receive.server import plan

        plan(s)  # a refused address fails `logs up` itself, not a child in a restart loop
        children["receive"] = [
            *python,
            "receive",
            *(["--metrics-port", str(s.metrics_port + consumers)] if s.metrics_port else []),
        ]

    from ingest.supervisor import Supervisor

    sup = Supervisor(children, env)
    sup.stop.install()
    note(
        f"logs up: {consumers} ingest process(es){' + scheduler' if scheduler else ''}"
        f"{' + receive' if receive else ''} on "
        f"stream {s.stream}; Ctrl-C stops"
    )
    sup.run()
    note("logs up: stopped")


DEMO_QUERIES = [
    (
        "Errors per service over the last 6 hours (raw rows, deduplicated)",
        "select service, count(*) filter (where level in ('ERROR', 'FATAL')) as errors,\n"
        "       count(*) as entries,\n"
        "       round(100.0 * errors / entries, 2) as error_pct\n"
        "from logs where ts >= now() - interval 6 hour\n"
        "group by service order by errors desc limit 5",
    ),
    (
        "Hourly volume and p95 latency of the api service (from rollups_hourly)",
        "select date, hour, sum(count)::bigint as entries, sum(error_count)::bigint as errors,\n"
        "       round(max(latency_ms_p95) filter (where level = 'INFO'), 1) as info_p95_ms\n"
        "from rollups_hourly where service = 'api'\n"
        "group by date, hour order by date, hour",
    ),
    (
        "The slowest traces",
        "select strftime(ts, '%H:%M:%S') as time, service, trace_id,\n"
        "       (attrs->>'latency_ms')::double as latency_ms, message\n"
        "from logs order by latency_ms desc nulls last limit 5",
    ),
]

NEXT_STEPS = """\
Next, try:
  uv run logs sql "select level, count(*) from logs group by 1 order by 2 desc"
  uv run logs sql --since 1h -F jsonl "select * from logs where level = 'ERROR' limit 3"
  uv run logs schema logs
  uv run logs tail -f --level WARN+          (then, in another terminal: uv run logs gen -n 100)
  uv run logs export --since 2h -o last2h.parquet
  uv run logs status
  uv run logs up                             (ingest + scheduler, Ctrl-C to stop)
  uv run logs down                           (stop the embedded Redis)"""


def demo(
    ctx: typer.Context,
    count: Annotated[
        int, typer.Option("--count", "-n", min=1000, help="Entries to generate.")
    ] = 200_000,
    hours: Annotated[
        int, typer.Option(min=1, max=48, help="Spread them over the last H hours.")
    ] = 6,
    data_dir: DataDirOpt = None,
    lake_uri: LakeUriOpt = None,
    redis_url: RedisUrlOpt = None,
    stream: StreamOpt = None,
) -> None:
    """A tour in under 30 seconds: start the embedded Redis, generate realistic logs (with late
    and malformed entries), ingest, compact, roll up, and answer three questions with SQL.
    Safe to run again: each run adds new entries.

    Example:

        logs demo
    """
    import random
    import time

    from ingest.consume.consumer import Consumer
    from ingest.generate import entries
    from ingest.lake.location import lake_of
    from ingest.producer import xadd_all
    from ingest.redis_conn import resolve_url
    from ingest.upkeep import compact, rollup

    s = settings(
        ctx,
        data_dir=data_dir,
        lake_uri=lake_uri,
        redis_url=redis_url,
        stream=stream,
        consumer=f"{socket.gethostname()}-demo",
    )
    logger = logging.getLogger("logs")
    if logger.level != logging.DEBUG:
        # The steps below say what happened; per-commit lines would drown them (-v shows them).
        logger.setLevel(logging.ERROR)
    started = time.monotonic()
    seed = random.randrange(1 << 30)
    late = max(100, count // 100)
    with _Steps() as steps:
        steps.start("Starting Redis")
        r = producer_client(s)
        steps.done(f"Redis at {s.masked_redis_url() if s.redis_url else resolve_url(s)}")

        steps.start(f"Generating {count - late:,} entries over {hours} h", count - late)
        sent = xadd_all(
            r,
            s.stream,
            entries(count - late, hours=hours, seed=seed, malformed=0.0002),
            progress=steps.advance,
        )
        steps.done(f"generated {sent:,} entries (a few malformed)")

        steps.start("Ingesting", sent)
        stats = Consumer(s, drain=True, on_commit=lambda st: steps.advance(st.ingested)).run()
        steps.done(
            f"ingested {stats.ingested:,} rows in {stats.commits} commits, "
            f"dead-lettered {stats.dead_lettered}"
        )

        steps.start("Compacting closed hours")
        report = compact.compact(lake_of(s), target_file_size=s.target_file_size, grace=0)
        steps.done(f"compacted {report.summary()}")

        steps.start(f"Adding {late:,} late entries to hours already compacted")
        now = time.time()
        sent_late = xadd_all(
            r, s.stream, entries(late, hours=hours - 1, seed=seed + 1, now=now - 3600)
        )
        more = Consumer(s, drain=True).run()
        report = compact.compact(lake_of(s), target_file_size=s.target_file_size, grace=0)
        steps.done(
            f"{sent_late:,} late entries ingested ({more.ingested:,} rows); "
            f"recompacted {report.summary()}"
        )

        steps.start("Rolling up hours and days")
        rolled = rollup.rollup(lake_of(s))
        steps.done(f"rolled up {rolled.summary()}")
    r.close()
    _show_queries(s)
    note(f"demo finished in {time.monotonic() - started:.1f} s; data in {s.data_dir}/\n")
    note(NEXT_STEPS)


def _show_queries(s: object) -> None:
    from queries import connect, render

    con = connect(settings=s)  # type: ignore[arg-type]
    width = render.terminal_width() if sys.stdout.isatty() else None

    def footer(line: str) -> None:  # the tour is read, not piped: its counts stay with it
        sys.stdout.write(f"  {line}\n")

    try:
        for title, sql in DEMO_QUERIES:
            sys.stdout.write(f"\n-- {title}\n{sql};\n")
            result = render.Result.of(con.execute(sql))
            render.write_table(result, sys.stdout, width=width, footer=footer)
    finally:
        con.close()
    sys.stdout.flush()


class _Steps:
    """One line per step on stderr; a rich progress bar while it runs when stderr is a terminal."""

    def __enter__(self) -> _Steps:
        self.progress: Any = None
        self.task: Any = None
        if sys.stderr.isatty() and not os.environ.get("CI"):
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.progress.start()
        return self

    def start(self, what: str, total: int | None = None) -> None:
        if self.progress is not None:
            self.task = self.progress.add_task(what, total=total)

    def advance(self, completed: int) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=completed)

    def done(self, line: str) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.remove_task(self.task)
            self.progress.console.print(f"[green]✓[/green] {line}", highlight=False)
        else:
            note(f"- {line}")

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def register(app: typer.Typer) -> None:
    command(app, demo)
    command(app, up)
