"""`logs schedule` as real processes against a real Redis: it compacts and rolls up without
manual steps, stops cleanly on SIGTERM, one scheduler holds the lease while another stands by
and takes over when the first is killed, and a failing job is logged and retried."""

from __future__ import annotations

import fcntl
import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from deltalake import DeltaTable

from ingest import keys
from ingest.lake import layout
from ingest.lake import state as lakestate
from ingest.upkeep.lease import state_path
from tests.helpers import RedisProc, closed_hour, fill_hour, key_of, run_logs, spawn_logs

FAST = {"LOGS_COMPACT_INTERVAL": "1", "LOGS_COMPACT_GRACE": "0", "LOGS_LEASE_TTL": "2"}


class Scheduler:
    """A `logs schedule` process whose stderr is collected as it comes."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = spawn_logs(["schedule"], env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.decode(errors="replace"))

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def wait_for(what: str, predicate: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting until {what}")


def state(data_dir: Path) -> dict:  # type: ignore[type-arg]
    try:
        return json.loads(state_path(data_dir).read_text())
    except (OSError, ValueError):
        return {}


def ended_hours_done(data_dir: Path) -> bool:
    """Every ended hour is compacted (clean) and its rollup counts its distinct rows."""
    now = datetime.now(UTC)
    hours = {
        k: h
        for k, h in lakestate.snapshot(data_dir).items()
        if layout.hour_end(h.date, h.hour) <= now
    }
    record = lakestate.load_compacted(data_dir)
    if not hours or not all(lakestate.is_clean(h, record) for h in hours.values()):
        return False
    rollups = layout.table_path(data_dir, layout.ROLLUPS_HOURLY)
    if not (rollups / "_delta_log").is_dir():
        return False
    raw = DeltaTable(str(layout.table_path(data_dir))).file_uris()
    con = duckdb.connect()
    hive = "hive_partitioning=true, hive_types={'date': varchar, 'hour': varchar}"
    distinct = dict(
        con.execute(
            f"select date || '/' || hour, count(distinct stream_id) from read_parquet({raw!r}, "
            f"{hive}) group by 1"
        ).fetchall()
    )
    rollup_files = DeltaTable(str(rollups)).file_uris()
    if not rollup_files:  # the table is created empty a moment before its first commit
        return False
    rolled = dict(
        con.execute(
            f"select date || '/' || hour, sum(count) from read_parquet("
            f"{rollup_files!r}, {hive}) group by 1"
        ).fetchall()
    )
    return all(rolled.get(k) == distinct[k] for k in hours)


def test_schedule_compacts_and_rolls_up_fresh_hours_and_stops_on_sigterm(
    env: dict[str, str], data_dir: Path
) -> None:
    fast = {**env, **FAST}
    # Freshly ingested through the real write path (two commits per hour), plus an hour with
    # redelivered duplicates.
    for seed in ("1", "2"):
        assert (
            run_logs(["gen", "--count", "3000", "--hours", "3", "--seed", seed], fast).returncode
            == 0
        )
        assert run_logs(["ingest", "--drain"], fast).returncode == 0
    fill_hour(data_dir, closed_hour(5), 500_000, 1000)

    sched = Scheduler(fast)
    try:
        wait_for(
            "the scheduler compacted and rolled up every ended hour",
            lambda: ended_hours_done(data_dir),
        )
        wait_for(
            "every job ran once on taking the lease",
            lambda: (
                set(state(data_dir).get("jobs", {}))
                == {"compact", "rollup_hourly", "nightly", "maintain"}
            ),
        )
        assert sched.proc.poll() is None
    finally:
        code = sched.stop()
    assert code == 0, sched.text
    assert "job compact: " in sched.text
    assert "scheduler stopped" in sched.text
    facts = state(data_dir)
    assert facts["jobs"]["compact"]["outcome"] == "ok"
    assert facts["jobs"]["compact"]["runs"] >= 1
    assert all(job["outcome"] == "ok" for job in facts["jobs"].values())
    assert facts["lease"]["holder"] is None  # released on the way out


@pytest.mark.slow
def test_a_second_scheduler_stands_by_and_takes_over_when_the_first_dies(
    env: dict[str, str], data_dir: Path, redis_proc: RedisProc, stream: str
) -> None:
    fast = {**env, **FAST}
    client = redis_proc.client()
    key = keys.scheduler_lease(stream)

    def holder() -> str:
        value = client.get(key)
        return value.decode() if value else ""

    first = Scheduler(fast)
    second = None
    try:
        wait_for("the first scheduler holds the lease", lambda: f"-{first.proc.pid}-" in holder())
        second = Scheduler(fast)
        wait_for("the second scheduler is standing by", lambda: "standing by" in second.text)  # type: ignore[union-attr]
        # Several renewals later the lease is still the first one's.
        time.sleep(3)
        assert f"-{first.proc.pid}-" in holder()
        assert "took the lease" not in second.text

        first.kill()  # SIGKILL: no release, the lease has to expire
        wait_for("the second scheduler took over", lambda: f"-{second.proc.pid}-" in holder())  # type: ignore[union-attr]
        start = closed_hour(7)
        fill_hour(data_dir, start, 0, 600)
        wait_for(
            "the new holder compacted the new hour",
            lambda: lakestate.is_clean(
                lakestate.snapshot(data_dir)[key_of(start)], lakestate.load_compacted(data_dir)
            ),
        )
        assert "took the lease, running jobs" in second.text
        assert second.stop() == 0, second.text
        assert holder() == ""
    finally:
        first.kill()
        if second is not None:
            second.kill()


@pytest.mark.slow
def test_sigterm_during_a_job_that_does_not_finish_still_exits_0(
    env: dict[str, str], data_dir: Path
) -> None:
    start = closed_hour(11)
    fill_hour(data_dir, start, 0, 300)
    # Hold the compaction lock: the scheduler's compaction job blocks inside its run.
    folder = layout.state_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "compact.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        sched = Scheduler({**env, **FAST})
        try:
            wait_for("the scheduler took the lease", lambda: "took the lease" in sched.text)
            time.sleep(1)  # the compaction job is now waiting for the lock
            code = sched.stop()
        finally:
            sched.kill()
    assert code == 0, sched.text
    assert "stopped while job compact was still running" in sched.text
    # Nothing half-done: the hour is as it was, and the next run compacts it.
    assert len(lakestate.snapshot(data_dir)[key_of(start)].files) == 5
    assert run_logs(["compact"], env).returncode == 0
    assert len(lakestate.snapshot(data_dir)[key_of(start)].files) == 1


def test_a_failing_job_is_logged_and_retried_without_killing_the_scheduler(
    env: dict[str, str], data_dir: Path
) -> None:
    start = closed_hour(9)
    fill_hour(data_dir, start, 0, 500)
    # A file where compaction keeps its work files: every compaction fails until it is gone.
    blocker = layout.state_dir(data_dir) / "compact-spill"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("in the way")

    sched = Scheduler({**env, **FAST})
    try:
        wait_for("a failed compaction run was logged", lambda: "job compact: failed" in sched.text)
        wait_for("a second failed run", lambda: sched.text.count("job compact: failed") >= 2)
        assert sched.proc.poll() is None
        facts = state(data_dir)["jobs"]["compact"]
        assert facts["outcome"] == "error" and facts["failures"] >= 1

        blocker.unlink()
        wait_for(
            "the next run succeeded",
            lambda: lakestate.is_clean(
                lakestate.snapshot(data_dir)[key_of(start)], lakestate.load_compacted(data_dir)
            ),
        )
        wait_for(
            "the success was recorded",
            lambda: state(data_dir)["jobs"]["compact"]["outcome"] == "ok",
        )
    finally:
        code = sched.stop()
    assert code == 0, sched.text
