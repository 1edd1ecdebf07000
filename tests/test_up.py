"""`logs up`: supervised ingest processes; a killed child is restarted and nothing is lost."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.helpers import RedisProc, lake_ids, spawn_logs, wait_until


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


@pytest.mark.slow
def test_up_restarts_a_killed_consumer_and_stops_cleanly_on_ctrl_c(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    up = spawn_logs(["up", "--consumers", "2", "--no-scheduler"], env)
    client = redis_proc.client()
    try:
        assert wait_until(lambda: len(children_of(up.pid)) == 2, timeout=30)
        assert wait_until(lambda: client.exists(stream) and client.xinfo_groups(stream), timeout=30)
        first = [client.xadd(stream, {"message": f"a{i}"}).decode() for i in range(500)]
        assert wait_until(
            lambda: (
                (data_dir / "lake/logs/_delta_log").exists()
                and set(first) <= set(lake_ids(data_dir))
            )
        )
        victim = children_of(up.pid)[0]
        os.kill(victim, signal.SIGKILL)
        assert wait_until(
            lambda: victim not in children_of(up.pid) and len(children_of(up.pid)) == 2, timeout=30
        )
        second = [client.xadd(stream, {"message": f"b{i}"}).decode() for i in range(500)]
        assert wait_until(lambda: set(second) <= set(lake_ids(data_dir)))
        assert wait_until(lambda: client.xpending(stream, "lake")["pending"] == 0)
    finally:
        up.send_signal(signal.SIGINT)
        _, err = up.communicate(timeout=60)
    assert up.returncode == 0, err
    text = err.decode()
    assert "exited with signal SIGKILL; restarting" in text
    assert "logs up: stopped" in text
    assert set(lake_ids(data_dir)) == set(first) | set(second)
    assert children_of(up.pid) == []


def test_up_with_the_scheduler_ingests_compacts_and_rolls_up_without_manual_steps(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    from datetime import UTC, datetime

    from ingest.lake import layout
    from ingest.lake import state as lakestate
    from tests.helpers import ids_in_stream, run_logs

    # Small batches: many files per hour, so compaction has real work.
    fast = {
        **env,
        "LOGS_COMPACT_INTERVAL": "1",
        "LOGS_COMPACT_GRACE": "0",
        "LOGS_LEASE_TTL": "5",
        "LOGS_READ_COUNT": "200",
        "LOGS_BATCH_ROWS": "200",
    }
    assert run_logs(["gen", "-n", "3000", "--hours", "3"], fast).returncode == 0
    expected = set(ids_in_stream(redis_proc.client(), stream))
    up = spawn_logs(["up", "--consumers", "2"], fast)
    try:
        # Everything ingested, every hour compacted down to the files compaction wrote, and
        # rollups written.
        def done() -> bool:
            if not (data_dir / "lake/rollups_hourly/_delta_log").exists():
                return False
            if set(lake_ids(data_dir)) != expected:
                return False
            now = datetime.now(UTC)
            closed = [
                h
                for h in lakestate.snapshot(data_dir).values()
                if layout.hour_end(h.date, h.hour) <= now
            ]
            compacted = lakestate.load_compacted(data_dir)
            return len(closed) >= 2 and all(
                h.key in compacted and len(h.files) == 1 for h in closed
            )

        assert wait_until(done, timeout=120, every=0.5)
    finally:
        up.send_signal(signal.SIGINT)
        _, err = up.communicate(timeout=60)
    assert up.returncode == 0, err
    assert b"job compact:" in err
    from tests.helpers import lake_rows

    (dupes,) = lake_rows(data_dir, "select count(*) - count(distinct stream_id) from t")
    assert dupes == (0,)
