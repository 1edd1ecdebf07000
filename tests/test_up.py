"""`logs up`: supervised ingest processes; a killed child is restarted and nothing is lost."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.conftest import RedisProc, lake_ids, spawn_logs
from tests.test_ingest import wait_until


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
