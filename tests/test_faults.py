"""Nothing lost: crashes at named points, random kill -9, Redis restarts, poison entries.

A checker in the Jepsen spirit: every id added to the stream must be in the lake or the DLQ
after a final drain; none may appear that was never added. Physical duplicates are allowed
before compaction (at-least-once), so distinct ids are compared exactly.
"""

from __future__ import annotations

import random
import re
import signal
import time
from pathlib import Path

import pytest
import redis

from tests.helpers import (
    RedisProc,
    bookmark,
    dlq_entries,
    ids_in_stream,
    lake_ids,
    run_logs,
    spawn_logs,
    wait_until,
)

pytestmark = pytest.mark.slow  # fault loops: `-m "not slow"` skips them for a quick run


def check(data_dir: Path, expected: list[str], client: redis.Redis, stream: str) -> list[str]:
    """Lost and unexpected ids must be empty; returns the raw lake ids (may hold duplicates)."""
    ids = lake_ids(data_dir)
    dead = {e[b"stream_id"].decode() for e in dlq_entries(client, stream)}
    seen = set(ids) | dead
    lost = set(expected) - seen
    unexpected = seen - set(expected)
    assert not lost, f"{len(lost)} lost, e.g. {sorted(lost)[:5]}"
    assert not unexpected, f"{len(unexpected)} unexpected"
    assert client.xpending(stream, "lake")["pending"] == 0
    return ids


def in_flight(client: redis.Redis, stream: str) -> bool:
    try:
        return bool(client.xpending(stream, "lake")["pending"])
    except redis.ResponseError:  # the group does not exist yet
        return False


@pytest.mark.parametrize("point", ["after_read", "after_commit", "before_ack"])
def test_crash_at_a_named_point_then_restart_loses_nothing(
    point: str, env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    assert run_logs(["gen", "-n", "3000", "--hours", "2"], env).returncode == 0
    client = redis_proc.client()
    expected = ids_in_stream(client, stream)
    small = {**env, "LOGS_READ_COUNT": "500", "LOGS_BATCH_ROWS": "500"}
    crashed = run_logs(
        ["ingest", "--drain", "--consumer", "c1"], {**small, "LOGS_CRASH_AT": f"{point}:2"}
    )
    assert crashed.returncode == -signal.SIGKILL
    assert client.xpending(stream, "lake")["pending"] > 0
    again = run_logs(["ingest", "--drain", "--consumer", "c1"], small)
    assert again.returncode == 0, again.stderr
    assert b"recovered" in again.stderr  # re-read its own pending list first
    ids = check(data_dir, expected, client, stream)
    assert len(set(ids)) == 3000
    if point in ("after_commit", "before_ack"):
        # Committed but never acknowledged: redelivered, so the table holds whole batches twice
        # (one, or two when the next commit was in flight on the writer thread).
        assert len(ids) > 3000
        assert (len(ids) - 3000) % 500 == 0


def test_recovered_entries_are_committed_before_new_ones_are_read(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    """Every redelivery counts toward max_deliveries: a consumer killed again and again must
    commit what it recovers at once, or healthy entries end up as dead letters."""
    assert run_logs(["gen", "-n", "3000"], env).returncode == 0
    client = redis_proc.client()
    expected = ids_in_stream(client, stream)
    # Only a recovery (or the end of the drain) can trigger a commit here.
    big = {**env, "LOGS_READ_COUNT": "500", "LOGS_BATCH_ROWS": "100000", "LOGS_BATCH_AGE": "600"}
    crashed = run_logs(
        ["ingest", "--drain", "--consumer", "c1"], {**big, "LOGS_CRASH_AT": "after_read:2"}
    )
    assert crashed.returncode == -signal.SIGKILL
    again = run_logs(["ingest", "--drain", "--consumer", "c1"], big)
    assert again.returncode == 0, again.stderr
    log = again.stderr.decode()
    found = re.search(r"recovered (\d+) entries", log)
    assert found, log
    recovered = int(found.group(1))
    during = [int(n) for n in re.findall(r"committed (\d+) rows", log[: found.start()])]
    after = [int(n) for n in re.findall(r"committed (\d+) rows", log[found.end() :])]
    assert 0 < recovered < 3000
    # Page by page (read_count), each committed and acknowledged before the next is read.
    assert during and sum(during) == recovered and max(during) <= 500, log
    assert after == [3000 - recovered], log
    assert len(set(check(data_dir, expected, client, stream))) == 3000


def test_a_dead_consumers_entries_are_claimed_by_a_new_one(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    assert run_logs(["gen", "-n", "2000"], env).returncode == 0
    client = redis_proc.client()
    expected = ids_in_stream(client, stream)
    small = {**env, "LOGS_READ_COUNT": "500", "LOGS_BATCH_ROWS": "500"}
    # Default consumer name is <host>-<pid>: the restarted process has another name.
    crashed = run_logs(["ingest", "--drain"], {**small, "LOGS_CRASH_AT": "after_read:3"})
    assert crashed.returncode == -signal.SIGKILL
    again = run_logs(["ingest", "--drain"], small)
    assert again.returncode == 0, again.stderr
    assert b"claimed" in again.stderr
    check(data_dir, expected, client, stream)
    consumers = client.xinfo_consumers(stream, "lake")
    assert len(consumers) == 1  # the dead one was removed once its entries were taken


def test_random_kill_9_during_a_50000_entry_run(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    assert run_logs(["gen", "-n", "50000", "--hours", "3"], env).returncode == 0
    client = redis_proc.client()
    expected = ids_in_stream(client, stream)
    small = {**env, "LOGS_READ_COUNT": "2000", "LOGS_BATCH_ROWS": "5000"}
    kills = 0
    for _ in range(8):
        proc = spawn_logs(["ingest", "--drain", "--consumer", "k"], small)
        # Strike while entries are in flight (read, not yet acknowledged), at a random moment.
        wait_until(lambda p=proc: p.poll() is not None or in_flight(client, stream), 60, 0.01)
        time.sleep(rng.uniform(0.0, 0.4))
        if proc.poll() is None:
            proc.kill()
            kills += 1
        proc.communicate(timeout=60)
    final = run_logs(["ingest", "--drain", "--consumer", "k"], small)
    assert final.returncode == 0, final.stderr
    ids = check(data_dir, expected, client, stream)
    assert len(set(ids)) == 50000, f"seed {seed}"
    assert kills > 0, f"seed {seed}"


def test_redis_killed_and_restarted_with_aof_during_ingest(
    own_redis: RedisProc, stream: str, data_dir: Path
) -> None:
    env = {
        "LOGS_REDIS_URL": own_redis.url,
        "LOGS_STREAM": stream,
        "LOGS_DATA_DIR": str(data_dir),
        "LOGS_READ_COUNT": "1000",
        "LOGS_BATCH_ROWS": "2000",
        "LOGS_BATCH_AGE": "0.5",
    }
    assert run_logs(["gen", "-n", "30000", "--hours", "2"], env).returncode == 0
    client = own_redis.client()
    expected = ids_in_stream(client, stream)
    proc = spawn_logs(["ingest", "--drain", "--consumer", "r"], env)
    assert wait_until(lambda: (data_dir / "lake/logs/_delta_log").exists(), timeout=60, every=0.02)
    own_redis.kill()
    time.sleep(1.5)
    own_redis.start()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert b"redis unreachable" in err and b"reachable again" in err
    ids = check(data_dir, expected, own_redis.client(), stream)
    assert len(set(ids)) == 30000


def test_redis_restarted_without_persistence_recreates_the_group(
    tmp_path: Path, stream: str, data_dir: Path
) -> None:
    from tests.helpers import start_redis

    rp = start_redis(tmp_path / "volatile", appendonly=False)
    env = {
        "LOGS_REDIS_URL": rp.url,
        "LOGS_STREAM": stream,
        "LOGS_DATA_DIR": str(data_dir),
        "LOGS_BATCH_AGE": "0.3",
    }
    proc = spawn_logs(["ingest", "--consumer", "v"], env)
    try:
        client = rp.client()
        assert wait_until(lambda: client.exists(stream) and client.xinfo_groups(stream))
        before = [client.xadd(stream, {"message": f"a{i}"}).decode() for i in range(5)]
        assert wait_until(
            lambda: (
                (data_dir / "lake/logs/_delta_log").exists()
                and set(lake_ids(data_dir)) == set(before)
            )
        )
        rp.restart()  # comes back empty: no AOF, no RDB
        client = rp.client()
        assert wait_until(lambda: client.exists(stream) and client.xinfo_groups(stream), timeout=30)
        after = [client.xadd(stream, {"message": f"b{i}"}).decode() for i in range(5)]
        assert wait_until(lambda: set(after) <= set(lake_ids(data_dir)), timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        rp.kill()
    assert proc.returncode == 0, err
    assert b"STREAM RESET" in err and b"lost its group" in err


def test_an_entry_delivered_too_often_is_dead_lettered(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    client = redis_proc.client()
    client.xgroup_create(stream, "lake", id="0", mkstream=True)
    poison = client.xadd(stream, {"message": "keeps crashing its consumer"})
    fine = client.xadd(stream, {"message": "fine"})
    # A consumer that read the entry 6 times (re-reading its pending list) and died each time.
    client.xreadgroup("lake", "ghost", {stream: ">"}, count=1)
    for _ in range(5):
        client.xreadgroup("lake", "ghost", {stream: "0"}, count=1)
    time.sleep(2.2)  # LOGS_CLAIM_IDLE=2 in the env fixture
    res = run_logs(["ingest", "--drain"], env)
    assert res.returncode == 0, res.stderr
    assert lake_ids(data_dir) == [fine.decode()]
    (letter,) = dlq_entries(client, stream)
    assert letter[b"stream_id"] == poison
    assert letter[b"reason"].startswith(b"delivered 7 times")
    assert letter[b"message"] == b"keeps crashing its consumer"


def test_trimming_keeps_what_another_group_has_not_acknowledged(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    client = redis_proc.client()
    assert run_logs(["gen", "-n", "1000"], env).returncode == 0
    client.xgroup_create(stream, "other", id="0")
    client.xreadgroup("other", "o1", {stream: ">"}, count=300)  # pending, not acked
    assert run_logs(["ingest", "--drain"], env).returncode == 0
    assert len(lake_ids(data_dir)) == 1000
    assert client.xlen(stream) == 1000  # "other" still holds entry 1 pending
    client.xack(stream, "other", *[i for i, _ in client.xrange(stream, count=300)])
    client.xadd(stream, {"message": "one more"})
    assert run_logs(["ingest", "--drain"], env).returncode == 0
    # Entries 1-300 were acknowledged by both groups; 301-1000 not yet delivered to "other".
    assert client.xlen(stream) == 701 + bookmark(client)
