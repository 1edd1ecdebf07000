"""Prometheus metrics and `/healthz` for a `logs ingest` process (`--metrics-port`).

Counters come from the consumer's `Stats` (updated in place by the consumer); stream, group and
DLQ gauges are read from Redis at scrape time, best-effort (`loglake_redis_up 0` when it is not
reachable); job gauges come from the scheduler's state file. `/healthz` answers 200 with JSON
when Redis and the lake are reachable, else 503.

Metrics (all prefixed `loglake_`):
  entries_read_total, entries_ingested_total, entries_dead_lettered_total, entries_claimed_total,
  commits_total, redis_reconnects_total, stream_resets_total,
  entries_trimmed_before_delivery_total, stream_gaps_total              this process's counters
  commit_duration_seconds, batch_rows                                   histograms, one per commit
  redis_up, stream_length, dlq_length, group_lag, group_pending         Redis, at scrape time
  consumer_pending{consumer}, consumer_idle_seconds{consumer}, scheduler_lease_held
  job_last_run_timestamp_seconds{job}, job_last_duration_seconds{job},
  job_last_success{job}, job_runs_total{job}, job_failures_total{job}   from the scheduler state
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from ingest import status
from ingest.config import Settings
from ingest.lake import layout
from ingest.lake.location import Lake, lake_of

if TYPE_CHECKING:
    import redis
    from prometheus_client.metrics_core import Metric

    from ingest.consume.stats import Stats

StatsProvider = Callable[[], "Stats | None"]

_COUNTERS = (
    ("read", "entries_read", "Entries read from the stream (including redeliveries)."),
    ("ingested", "entries_ingested", "Entries committed to the lake as rows."),
    ("dead_lettered", "entries_dead_lettered", "Entries written to the dead-letter stream."),
    ("claimed", "entries_claimed", "Entries claimed from dead or stalled consumers."),
    ("commits", "commits", "Delta commits."),
    ("reconnects", "redis_reconnects", "Redis connection losses survived."),
    ("stream_resets", "stream_resets", "Times the consumer group had vanished and was recreated."),
    (
        "trimmed_before_delivery",
        "entries_trimmed_before_delivery",
        "Entries removed from the stream by someone else before the group read them (Redis 7: "
        "counted; 6.2: a lower bound).",
    ),
    ("gaps", "stream_gaps", "Gaps told: times entries were found removed before delivery."),
)
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_ROWS = (1, 10, 100, 1_000, 10_000, 50_000, 100_000, 500_000, 1_000_000)


class IngestMetrics:
    """A private registry with this process's metrics; `on_commit` feeds the histograms."""

    def __init__(self, settings: Settings, stats_provider: StatsProvider) -> None:
        from prometheus_client import CollectorRegistry, Histogram

        self.settings = settings
        self.stats_provider = stats_provider
        # No auto-describe: it would run a scrape (and touch Redis) at registration.
        self.registry = CollectorRegistry(auto_describe=False)
        self.commit_duration = Histogram(
            "loglake_commit_duration_seconds",
            "Time a Delta commit took.",
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "loglake_batch_rows", "Rows per Delta commit.", buckets=_ROWS, registry=self.registry
        )
        self._lock = threading.Lock()
        self._seen = (0, 0.0, 0)  # commits, commit seconds, rows already observed
        self._redis: redis.Redis | None = None
        self.registry.register(_Collector(self))

    def on_commit(self, stats: Stats) -> None:
        """Observe the commits made since the last call (pass as `Consumer(on_commit=...)`;
        scrapes also catch up, so an unwired hook only coarsens the histograms)."""
        with self._lock:
            commits, seconds, rows = self._seen
            n = stats.commits - commits
            if n <= 0:
                return
            for _ in range(n):
                self.commit_duration.observe((stats.commit_seconds - seconds) / n)
                self.batch_rows.observe((stats.ingested - rows) / n)
            self._seen = (stats.commits, stats.commit_seconds, stats.ingested)

    def catch_up(self) -> None:
        stats = self.stats_provider()
        if stats is not None:
            self.on_commit(stats)

    def redis_client(self) -> redis.Redis:
        from ingest.redis_conn import connect, resolve_url

        if self._redis is None:
            self._redis = connect(resolve_url(self.settings), block_ms=0, check=False)
        return self._redis

    def drop_redis(self) -> None:
        if self._redis is not None:
            self._redis.close()
            self._redis = None


class _Collector:
    """Values read at scrape time: the Stats counters, Redis gauges, scheduler job gauges."""

    def __init__(self, owner: IngestMetrics) -> None:
        self.owner = owner

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily

        stats = self.owner.stats_provider()
        for attr, name, doc in _COUNTERS:
            family = CounterMetricFamily(f"loglake_{name}", doc)
            family.add_metric([], float(getattr(stats, attr, 0) if stats is not None else 0))
            yield family
        yield from self._redis_gauges()
        yield from _job_metrics(self.owner.settings.data_dir)

    def _redis_gauges(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        facts: dict[str, Any] | None = None
        try:
            facts = status.stream_facts(self.owner.redis_client(), self.owner.settings)
        except Exception:  # noqa: BLE001 - best-effort: a scrape never fails on Redis
            self.owner.drop_redis()
        up = GaugeMetricFamily("loglake_redis_up", "1 when Redis answered this scrape.")
        up.add_metric([], 1.0 if facts else 0.0)
        yield up
        if not facts:
            return
        group = facts["group"]
        for name, doc, value in (
            (
                "stream_length",
                "Entries in the stream (not yet trimmed).",
                facts["stream"]["length"],
            ),
            ("dlq_length", "Entries in the dead-letter stream.", facts["dlq"]["length"]),
            ("group_lag", "Entries in the stream not yet delivered to the group.", group["lag"]),
            (
                "group_pending",
                "Entries delivered to the group, not yet acknowledged.",
                group["pending"],
            ),
        ):
            gauge = GaugeMetricFamily(f"loglake_{name}", doc)
            gauge.add_metric([], float(value))
            yield gauge
        pending = GaugeMetricFamily(
            "loglake_consumer_pending", "Entries pending per consumer.", labels=["consumer"]
        )
        idle = GaugeMetricFamily(
            "loglake_consumer_idle_seconds",
            "Seconds since each consumer last read.",
            labels=["consumer"],
        )
        for c in group["consumers"]:
            pending.add_metric([c["name"]], float(c["pending"]))
            idle.add_metric([c["name"]], c["idle_ms"] / 1000)
        yield pending
        yield idle
        held = GaugeMetricFamily(
            "loglake_scheduler_lease_held", "1 when a scheduler holds the lease (runs jobs)."
        )
        held.add_metric([], 1.0 if facts["lease"]["holder"] else 0.0)
        yield held


def _job_metrics(data_dir: Path) -> Iterator[Metric]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    jobs = status.scheduler_facts(data_dir)["jobs"]
    last_run = GaugeMetricFamily(
        "loglake_job_last_run_timestamp_seconds",
        "When each scheduled job last ran (unix time).",
        labels=["job"],
    )
    took = GaugeMetricFamily(
        "loglake_job_last_duration_seconds", "How long each job's last run took.", labels=["job"]
    )
    ok = GaugeMetricFamily(
        "loglake_job_last_success", "1 when the job's last run succeeded.", labels=["job"]
    )
    runs = CounterMetricFamily("loglake_job_runs", "Runs of each scheduled job.", labels=["job"])
    failures = CounterMetricFamily(
        "loglake_job_failures", "Failed runs of each scheduled job.", labels=["job"]
    )
    for job in jobs:
        name = str(job["name"])
        when = _unix(job["last_run"])
        if when is not None:
            last_run.add_metric([name], when)
        if job["duration_s"] is not None:
            took.add_metric([name], float(job["duration_s"]))
        if job["outcome"] is not None:
            ok.add_metric([name], 1.0 if job["outcome"] == "ok" else 0.0)
        if job["runs"] is not None:
            runs.add_metric([name], float(job["runs"]))
        if job["failures"] is not None:
            failures.add_metric([name], float(job["failures"]))
    yield from (last_run, took, ok, runs, failures)


def _unix(value: Any) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


# -- health -----------------------------------------------------------------------------------


def health(metrics: IngestMetrics) -> dict[str, Any]:
    """`{"ok", "redis": {"ok", "error"}, "lake": {"ok", "error", "path"}}`."""
    redis_ok, redis_error = True, None
    try:
        metrics.redis_client().ping()
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        metrics.drop_redis()
        redis_ok, redis_error = False, f"{type(exc).__name__}: {exc}"
    lake = lake_of(metrics.settings)
    lake_error = lake_problem(metrics.settings.data_dir) if lake.is_local else remote_problem(lake)
    return {
        "ok": redis_ok and lake_error is None,
        "redis": {"ok": redis_ok, "error": redis_error},
        "lake": {
            "ok": lake_error is None,
            "error": lake_error,
            "path": str(lake.table_path()) if lake.is_local else lake.table_uri(),
        },
    }


def remote_problem(lake: Lake) -> str | None:
    """None when a remote lake answers (its logs table's log, or the bucket, can be read)."""
    from ingest.errors import LogsError
    from ingest.lake.store import LakeStore

    try:
        LakeStore(lake).exists(f"{layout.LOGS_TABLE}/_delta_log/_last_checkpoint")
        return None
    except LogsError as exc:
        return str(exc)


def lake_problem(data_dir: Path) -> str | None:
    """None when ingest can write the table: its log is listable and its folder writable, or
    (before the first commit) the nearest existing parent is a writable directory."""
    table = layout.table_path(data_dir)
    log_dir = table / "_delta_log"
    try:
        if log_dir.is_dir():
            os.listdir(log_dir)
            return None if os.access(table, os.W_OK | os.X_OK) else f"{table} is not writable"
        parent = table
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            return f"{parent} is not a directory"
        return None if os.access(parent, os.W_OK | os.X_OK) else f"{parent} is not writable"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


# -- the server -------------------------------------------------------------------------------


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Scrapes every few seconds would flood our log."""


class MetricsServer:
    """A running endpoint: `/metrics` (Prometheus text) and `/healthz` (JSON, 200 or 503)."""

    def __init__(self, metrics: IngestMetrics, port: int, addr: str) -> None:
        from prometheus_client import make_wsgi_app

        self.metrics = metrics
        self._prometheus = make_wsgi_app(metrics.registry)
        self._httpd = make_server(addr, port, self._app, _Server, handler_class=_QuietHandler)
        self.port = int(self._httpd.server_port)
        self.url = f"http://{'127.0.0.1' if addr in ('', '0.0.0.0') else addr}:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="metrics", daemon=True
        )
        self._thread.start()

    @property
    def on_commit(self) -> Callable[[Stats], None]:
        return self.metrics.on_commit

    def _app(self, environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/healthz":
            report = health(self.metrics)
            body = json.dumps(report).encode()
            code = "200 OK" if report["ok"] else "503 Service Unavailable"
            start(code, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if path in ("/", "/metrics"):
            self.metrics.catch_up()
            return self._prometheus(environ, start)  # type: ignore[no-any-return]
        start("404 Not Found", [("Content-Type", "text/plain")])
        return [b"try /metrics or /healthz\n"]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self.metrics.drop_redis()


def serve(
    port: int, settings: Settings, stats_provider: StatsProvider, addr: str = "0.0.0.0"
) -> MetricsServer:
    """Serve `/metrics` and `/healthz` on `addr:port` (0 = any free port) from a daemon thread.

    `stats_provider()` returns the consumer's live `Stats` (or None before it exists); pass the
    returned server's `on_commit` to `Consumer(on_commit=...)` for one histogram sample per
    commit. Call `close()` when the consumer stops.
    """
    from ingest.errors import UsageError

    try:
        return MetricsServer(IngestMetrics(settings, stats_provider), port, addr)
    except OSError as exc:
        raise UsageError(f"cannot serve metrics on {addr}:{port}: {exc.strerror or exc}") from None
