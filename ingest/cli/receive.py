"""`logs receive`: the HTTP front door for shippers (ingest/receive/)."""

from __future__ import annotations

from typing import Annotated

import typer

from ingest.cli.common import DataDirOpt, GroupOpt, RedisUrlOpt, StreamOpt, command, settings


def _port(help_text: str) -> object:
    return typer.Option(min=0, max=65535, show_default=False, help=help_text)


def receive(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            show_default=False,
            help="Address to listen on [env LOGS_RECEIVE_HOST; default 0.0.0.0 with tokens, "
            "else 127.0.0.1]",
        ),
    ] = None,
    otlp_port: Annotated[
        int | None, _port("OTLP/HTTP port, 0 = off [env LOGS_RECEIVE_OTLP_PORT; default 4318]")
    ] = None,
    elastic_port: Annotated[
        int | None,
        _port("Elasticsearch _bulk port [env LOGS_RECEIVE_ELASTIC_PORT; default 9200]"),
    ] = None,
    hec_port: Annotated[
        int | None, _port("Splunk HEC port [env LOGS_RECEIVE_HEC_PORT; default 8088]")
    ] = None,
    loki_port: Annotated[
        int | None,
        _port("Loki push and NDJSON port [env LOGS_RECEIVE_LOKI_PORT; default 3100]"),
    ] = None,
    allow_open: Annotated[
        bool | None,
        typer.Option(
            "--allow-open",
            show_default=False,
            help="Listen beyond loopback without tokens [env LOGS_RECEIVE_ALLOW_OPEN]",
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        _port("Also serve /metrics with the Redis gauges here [env LOGS_METRICS_PORT]"),
    ] = None,
    data_dir: DataDirOpt = None,
    redis_url: RedisUrlOpt = None,
    stream: StreamOpt = None,
    group: GroupOpt = None,
) -> None:
    """Accept logs over HTTP from the shippers you already run — OTLP/HTTP, Elasticsearch
    _bulk, Splunk HEC, Loki push, NDJSON — and XADD them to the stream. Tokens come from
    LOGS_RECEIVE_TOKENS (comma-separated; never a flag, so they stay out of `ps`). Every port
    answers every protocol's paths; /metrics and /healthz on each. SIGTERM finishes requests in
    flight.

    Example:

        LOGS_RECEIVE_TOKENS=s3cret logs receive

    then, from anywhere that can reach it:

        curl -H 'Authorization: Bearer s3cret' --data-binary @app.log HOST:3100/ingest
    """
    from ingest.cli.write import producer_client
    from ingest.receive import server
    from ingest.redis_conn import resolve_url

    s = settings(
        ctx,
        receive_host=host,
        receive_otlp_port=otlp_port,
        receive_elastic_port=elastic_port,
        receive_hec_port=hec_port,
        receive_loki_port=loki_port,
        receive_allow_open=allow_open,
        metrics_port=metrics_port,
        data_dir=data_dir,
        redis_url=redis_url,
        stream=stream,
        group=group,
    )
    server.plan(s)  # bind rules first: a refused address is an error before Redis is touched
    if not s.redis_url:
        producer_client(s).close()  # starts the embedded Redis when no URL is configured
    server.run(s, resolve_url(s))


def register(app: typer.Typer) -> None:
    command(app, receive)
