"""Run the receiver: bind rules, one socket per configured port, uvicorn, a graceful stop.

Without tokens the receiver listens on 127.0.0.1 only, and says so; an address beyond loopback
without tokens is refused unless `receive_allow_open` says the operator means it. Ports are
bound here, before the server starts, so a port in use is one clear error. SIGTERM/SIGINT stop
accepting connections and finish the requests in flight (up to GRACE seconds).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass

from ingest.config import Settings
from ingest.errors import ConfigError, UsageError
from ingest.receive import auth

log = logging.getLogger("logs.receive")

GRACE = 20.0
"""Seconds in-flight requests get to finish after SIGTERM."""

_SIGNALS = (signal.SIGINT, signal.SIGTERM)

PORTS = (
    ("receive_otlp_port", "OTLP/HTTP"),
    ("receive_elastic_port", "Elasticsearch _bulk"),
    ("receive_hec_port", "Splunk HEC"),
    ("receive_loki_port", "Loki push, NDJSON"),
)


@dataclass(frozen=True)
class Plan:
    host: str
    ports: dict[int, list[str]]
    """Port -> what it is there for (every port answers every protocol's paths)."""
    open_without_tokens: bool


def _loopback(host: str) -> bool:
    if host in ("localhost", "::1"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plan(settings: Settings) -> Plan:
    tokens = auth.parse_tokens(settings.receive_tokens)
    host = settings.receive_host or ("0.0.0.0" if tokens else "127.0.0.1")
    if not tokens and not _loopback(host) and not settings.receive_allow_open:
        raise ConfigError(
            f"refusing to listen on {host} without receive_tokens: anyone who can reach it "
            "could write to the stream",
            "set LOGS_RECEIVE_TOKENS (or receive_tokens in logs.toml), or "
            "LOGS_RECEIVE_ALLOW_OPEN=true if that is what you want",
        )
    ports: dict[int, list[str]] = {}
    for name, what in PORTS:
        port = getattr(settings, name)
        if port:
            ports.setdefault(port, []).append(what)
    if not ports:
        raise ConfigError("every receive_*_port is 0: nothing to serve")
    return Plan(host, ports, not tokens and not _loopback(host))


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run(settings: Settings, redis_url: str) -> None:
    """Serve until SIGTERM/SIGINT."""
    import uvicorn

    from ingest.receive.app import ReceiverApp

    layout = plan(settings)
    sockets = [bind(layout.host, port) for port in layout.ports]
    app = ReceiverApp(settings, redis_url)
    metrics_server = None
    if settings.metrics_port is not None:
        from ingest.consume import metrics

        metrics_server = metrics.serve(settings.metrics_port, settings, lambda: None)
        # The same endpoint as ingest's: its Redis gauges and our counters, one scrape.
        metrics_server.metrics.registry.register(app.metrics.registry)  # type: ignore[arg-type]
    _quiet_uvicorn()
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=int(GRACE),
        timeout_keep_alive=75,  # above the 60-90 s idle timeouts shippers keep connections for
    )
    server = _server_class()(config)
    where = ", ".join(
        f"{layout.host}:{port} ({' + '.join(what)})" for port, what in layout.ports.items()
    )
    if not auth.parse_tokens(settings.receive_tokens):
        log.warning(
            "receive: no receive_tokens set: listening on %s only, without authentication%s",
            layout.host,
            " (receive_allow_open)" if layout.open_without_tokens else "",
        )
    log.info("receive: listening on %s; writing to stream %s", where, settings.stream)
    try:
        server.run(sockets=sockets)
    finally:
        for sock in sockets:
            sock.close()
        if metrics_server is not None:
            metrics_server.close()
    log.info("receive: stopped")


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises SIGTERM after its graceful stop, so the process would die by the
        signal; a stop that finished every request in flight exits 0 here, like ingest."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server


def _quiet_uvicorn() -> None:
    """uvicorn's own lines (start-up chatter, bad requests) through our handler, warnings up."""
    ours = logging.getLogger("logs")
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = list(ours.handlers)
        logger.setLevel(logging.WARNING)
        logger.propagate = False
