"""Metrics endpoint: counters equal what a real consumer ingested and dead-lettered, Redis gauges
are read at scrape time, `/healthz` follows Redis and lake reachability."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ingest import config
from ingest.consume import metrics
from ingest.consume.consumer import Consumer, Stats
from ingest.redis_server import free_port
from tests.helpers import RedisProc, bookmark, lake_ids, run_logs, spawn_logs


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url + "/metrics", timeout=30) as res:
        text = res.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def get_json(url: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(url, timeout=30) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def served(env: dict[str, str]) -> Iterator[tuple[metrics.MetricsServer, dict[str, Consumer]]]:
    """A metrics server on a free port whose stats come from the consumer put in the dict."""
    holder: dict[str, Consumer] = {}

    def stats() -> Stats | None:
        return holder["consumer"].stats if "consumer" in holder else None

    server = metrics.serve(0, config.load().settings, stats, addr="127.0.0.1")
    yield server, holder
    server.close()


def test_counters_equal_what_a_real_consumer_ingested_and_dead_lettered(
    env: dict[str, str],
    redis_proc: RedisProc,
    stream: str,
    data_dir: Path,
    served: tuple[metrics.MetricsServer, dict[str, Consumer]],
) -> None:
    server, holder = served
    before = scrape(server.url)
    assert before[("loglake_entries_ingested_total", ())] == 0
    assert before[("loglake_redis_up", ())] == 1

    gen = run_logs(["gen", "-n", "3000", "--hours", "2", "--malformed", "0.02"], env)
    assert gen.returncode == 0
    settings = dataclasses.replace(config.load().settings, batch_rows=400, read_count=400)
    consumer = holder["consumer"] = Consumer(settings, drain=True, on_commit=server.on_commit)
    stats = consumer.run()

    client = redis_proc.client()
    ingested, dead = len(lake_ids(data_dir)), client.xlen(f"{stream}:dlq")
    assert dead > 0 and ingested + dead == 3000
    m = scrape(server.url)
    assert m[("loglake_entries_ingested_total", ())] == ingested == stats.ingested
    assert m[("loglake_entries_dead_lettered_total", ())] == dead == stats.dead_lettered
    assert m[("loglake_entries_read_total", ())] == 3000
    assert m[("loglake_commits_total", ())] == stats.commits > 1
    assert m[("loglake_commit_duration_seconds_count", ())] == stats.commits
    assert m[("loglake_commit_duration_seconds_sum", ())] == pytest.approx(stats.commit_seconds)
    assert m[("loglake_batch_rows_count", ())] == stats.commits
    assert m[("loglake_batch_rows_sum", ())] == ingested
    assert m[("loglake_redis_reconnects_total", ())] == 0
    assert m[("loglake_dlq_length", ())] == dead
    # Acknowledged, trimmed (but for Redis 6's bookmark).
    assert m[("loglake_stream_length", ())] == client.xlen(stream) == bookmark(client)
    assert m[("loglake_group_pending", ())] == 0 and m[("loglake_group_lag", ())] == 0

    # Lag and pending are read from Redis at scrape time.
    for i in range(30):
        client.xadd(stream, {"message": f"late {i}"})
    client.xreadgroup("lake", "ghost", {stream: ">"}, count=10)
    m = scrape(server.url)
    assert m[("loglake_group_lag", ())] == 20
    assert m[("loglake_group_pending", ())] == 10
    assert m[("loglake_stream_length", ())] == 30 + bookmark(client)
    assert m[("loglake_consumer_pending", (("consumer", "ghost"),))] == 10
    assert (("loglake_consumer_idle_seconds", (("consumer", settings.consumer),))) in m


def test_histograms_catch_up_at_scrape_without_the_commit_hook(
    env: dict[str, str],
    served: tuple[metrics.MetricsServer, dict[str, Consumer]],
) -> None:
    server, holder = served
    assert run_logs(["gen", "-n", "500"], env).returncode == 0
    settings = dataclasses.replace(config.load().settings, batch_rows=100, read_count=100)
    stats = (holder.setdefault("consumer", Consumer(settings, drain=True))).run()
    m = scrape(server.url)
    assert m[("loglake_commit_duration_seconds_count", ())] == stats.commits >= 5
    assert m[("loglake_batch_rows_sum", ())] == stats.ingested == 500


def test_healthz_follows_redis_and_the_lake(
    env: dict[str, str], own_redis: RedisProc, tmp_path: Path
) -> None:
    settings = dataclasses.replace(config.load().settings, redis_url=own_redis.url)
    server = metrics.serve(0, settings, lambda: None, addr="127.0.0.1")
    try:
        code, body = get_json(server.url + "/healthz")
        assert code == 200, body
        assert body["ok"] is True and body["redis"]["ok"] is True and body["lake"]["ok"] is True

        own_redis.kill()
        code, body = get_json(server.url + "/healthz")
        assert code == 503
        assert body["redis"]["ok"] is False and body["redis"]["error"]
        assert body["lake"]["ok"] is True
        assert scrape(server.url)[("loglake_redis_up", ())] == 0  # a scrape never fails

        own_redis.start()
        assert get_json(server.url + "/healthz")[0] == 200
        assert scrape(server.url)[("loglake_redis_up", ())] == 1
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(server.url + "/nope", timeout=30)
        assert missing.value.code == 404
    finally:
        server.close()

    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    lake_down = dataclasses.replace(settings, data_dir=blocked / "data")
    server = metrics.serve(0, lake_down, lambda: None, addr="127.0.0.1")
    try:
        code, body = get_json(server.url + "/healthz")
        assert code == 503
        assert body["redis"]["ok"] is True and body["lake"]["ok"] is False
        assert "not a directory" in body["lake"]["error"]
    finally:
        server.close()


def test_a_busy_port_is_a_usage_error(env: dict[str, str]) -> None:
    from ingest.errors import UsageError

    first = metrics.serve(0, config.load().settings, lambda: None, addr="127.0.0.1")
    try:
        with pytest.raises(UsageError, match="cannot serve metrics"):
            metrics.serve(first.port, config.load().settings, lambda: None, addr="127.0.0.1")
    finally:
        first.close()


def test_logs_ingest_serves_metrics_with_metrics_port(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    if b"--metrics-port" not in run_logs(["ingest", "--help"], env).stdout:
        pytest.skip("`logs ingest --metrics-port` is not wired yet")
    assert run_logs(["gen", "-n", "2000", "--malformed", "0.01"], env).returncode == 0
    port = free_port()
    proc = spawn_logs(["ingest", "--metrics-port", str(port)], env)
    url = f"http://127.0.0.1:{port}"
    dead = 0
    try:
        deadline = time.monotonic() + 60
        m: dict = {}  # type: ignore[type-arg]
        while time.monotonic() < deadline:
            try:
                m = scrape(url)
            except OSError:
                m = {}
            dead = redis_proc.client().xlen(f"{stream}:dlq")
            done = m.get(("loglake_entries_ingested_total", ()), 0) + dead
            if done == 2000 and m.get(("loglake_entries_dead_lettered_total", ())) == dead:
                break
            time.sleep(0.2)
        assert m[("loglake_entries_ingested_total", ())] == len(lake_ids(data_dir)) == 2000 - dead
        assert m[("loglake_entries_dead_lettered_total", ())] == dead > 0
        assert get_json(url + "/healthz")[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0


def test_job_metrics_come_from_the_scheduler_state(
    env: dict[str, str],
    redis_proc: RedisProc,
    data_dir: Path,
    served: tuple[metrics.MetricsServer, dict[str, Consumer]],
) -> None:
    server, _ = served
    assert ("loglake_job_runs_total", (("job", "compact"),)) not in scrape(server.url)
    state = data_dir / "state" / "scheduler.json"
    proc = spawn_logs(["schedule"], env)
    try:
        deadline = time.monotonic() + 60
        recorded: dict = {}  # type: ignore[type-arg]
        while time.monotonic() < deadline and len(recorded) < 4:
            with contextlib.suppress(OSError, ValueError):
                recorded = json.loads(state.read_text()).get("jobs", {})
            time.sleep(0.1)
        assert scrape(server.url)[("loglake_scheduler_lease_held", ())] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    recorded = json.loads(state.read_text())["jobs"]
    m = scrape(server.url)
    assert m[("loglake_scheduler_lease_held", ())] == 0  # released on a clean stop
    for name, job in recorded.items():
        label = (("job", name),)
        assert m[("loglake_job_runs_total", label)] == job["runs"] >= 1
        assert m[("loglake_job_failures_total", label)] == job["failures"] == 0
        assert m[("loglake_job_last_success", label)] == 1
        assert m[("loglake_job_last_duration_seconds", label)] == job["duration_s"]
        assert m[("loglake_job_last_run_timestamp_seconds", label)] == pytest.approx(
            datetime.fromisoformat(job["last_run"].replace("Z", "+00:00")).timestamp()
        )
