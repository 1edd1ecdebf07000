"""`logs up` and `logs demo`: run the whole pipeline from one command."""

from __future__ import annotations

import os
import signal
import socket
import sys
from typing import Annotated

import typer

from ingest.cli_common import DataDirOpt, GroupOpt, RedisUrlOpt, StreamOpt, edge, note, settings
from ingest.cli_write import producer_client
from ingest.redis_conn import resolve_url


@edge
def up(
    ctx: typer.Context,
    consumers: Annotated[int, typer.Option("--consumers", "-c", min=1, max=64,
                                           help="Ingest processes to run.")] = 1,
    scheduler: Annotated[bool, typer.Option(help="Also run the scheduler (compaction, "
                                            "rollups, retention).")] = True,
    data_dir: DataDirOpt = None,
    redis_url: RedisUrlOpt = None,
    stream: StreamOpt = None,
    group: GroupOpt = None,
) -> None:
    """Run everything: the embedded Redis (when no URL is set), N ingest processes and the
    scheduler, restarting any that crash. Ctrl-C stops all of them cleanly.

    Example:

        logs up --consumers 2
    """
    s = settings(ctx, data_dir=data_dir, redis_url=redis_url, stream=stream, group=group)
    producer_client(s).close()  # starts the embedded Redis when no URL is configured
    url = resolve_url(s)
    env = {
        **os.environ,
        "LOGS_REDIS_URL": url,
        "LOGS_DATA_DIR": str(s.data_dir.resolve()),
        "LOGS_STREAM": s.stream,
        "LOGS_GROUP": s.group,
    }
    root = ctx.find_root().obj or {}
    if root.get("config"):
        env["LOGS_CONFIG"] = str(root["config"])
    python = [sys.executable, "-m", "ingest"]
    host = socket.gethostname()
    children = {
        # Stable consumer names: a restarted child re-reads its own pending entries at once.
        f"ingest-{i}": [*python, "ingest", "--consumer", f"{host}-up-{i}"]
        for i in range(1, consumers + 1)
    }
    if scheduler:
        children["scheduler"] = [*python, "schedule"]

    from ingest.supervisor import Supervisor

    sup = Supervisor(children, env)
    signal.signal(signal.SIGINT, sup.request_stop)
    signal.signal(signal.SIGTERM, sup.request_stop)
    note(f"logs up: {consumers} ingest process(es){' + scheduler' if scheduler else ''} on "
         f"stream {s.stream}; Ctrl-C stops")
    sup.run()
    note("logs up: stopped")


def register(app: typer.Typer) -> None:
    app.command()(up)
