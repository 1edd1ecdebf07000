"""`logs status`: the numbers it prints are the ones Redis and the lake hold at that moment."""

from __future__ import annotations

import json
import re
import signal
import time
from collections import Counter
from pathlib import Path

import redis
from deltalake import DeltaTable

from ingest import status as status_lib
from ingest.redis_server import free_port
from tests.helpers import RedisProc, bookmark, lake_rows, run_logs, spawn_logs, wait_until


def status_json(env: dict[str, str], *args: str) -> tuple[int, dict, bytes]:  # type: ignore[type-arg]
    res = run_logs(["status", "-F", "json", *args], env)
    return res.returncode, json.loads(res.stdout), res.stderr


def files_per_hour(data_dir: Path) -> Counter[str]:
    uris = DeltaTable(str(data_dir / "lake" / "logs")).file_uris()
    return Counter(
        "{}T{}".format(*re.search(r"date=([^/]+)/hour=([^/]+)/", u).groups())  # type: ignore[union-attr]
        for u in uris
    )


def test_status_json_matches_redis_and_the_lake(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    client = redis_proc.client()
    # Two ingest runs over the same hours: those hours hold two files each (dirty).
    for seed in ("1", "2"):
        assert run_logs(["gen", "-n", "600", "--hours", "2", "--seed", seed], env).returncode == 0
        assert run_logs(["ingest", "--drain"], env).returncode == 0
    client.xadd(stream, {"msg": b"\xff\xfe not utf-8"})
    assert run_logs(["ingest", "--drain"], env).returncode == 0
    # Now 30 entries in Redis: 10 delivered to a consumer that never acknowledges, 20 waiting.
    for i in range(30):
        client.xadd(stream, {"message": f"waiting {i}"})
    client.xreadgroup("lake", "ghost", {stream: ">"}, count=10)

    code, facts, err = status_json(env)
    assert code == 0, err

    assert facts["redis"] == {"url": redis_proc.url, "reachable": True, "error": None}
    assert facts["stream"]["name"] == stream
    assert facts["stream"]["length"] == client.xlen(stream) == 30 + bookmark(client)
    assert facts["stream"]["first_id"] == client.xrange(stream, count=1)[0][0].decode()
    group = facts["group"]
    assert group["exists"] is True and group["name"] == "lake"
    assert group["pending"] == client.xpending(stream, "lake")["pending"] == 10
    assert group["lag"] == 20
    assert group["lag_method"] in ("xinfo", "xlen-minus-delivered")
    last_delivered = client.xinfo_groups(stream)[0]["last-delivered-id"].decode()
    assert group["last_delivered_id"] == last_delivered
    ghost = [c for c in group["consumers"] if c["name"] == "ghost"]
    assert ghost and ghost[0]["pending"] == 10 and ghost[0]["idle_ms"] >= 0
    assert facts["dlq"] == {"name": f"{stream}:dlq", "length": client.xlen(f"{stream}:dlq")}
    assert facts["dlq"]["length"] == 1

    lake = facts["lake"]
    per_hour_rows = Counter(f"{d}T{h}" for d, h in lake_rows(data_dir, "select date, hour from t"))
    per_hour_files = files_per_hour(data_dir)
    assert lake["reachable"] is True
    assert lake["rows"] == sum(per_hour_rows.values()) == 1200
    assert lake["files"] == sum(per_hour_files.values())
    assert lake["hours"] == len(per_hour_rows)
    recent = {h["hour"]: h for h in lake["recent_hours"]}
    assert [h["hour"] for h in lake["recent_hours"]] == sorted(recent)
    for hour, h in recent.items():
        assert h["rows"] == per_hour_rows[hour]
        assert h["files"] == per_hour_files[hour]
        assert h["dirty"] == (per_hour_files[hour] > 1)  # nothing was compacted yet
    dirty = sorted(hour for hour, n in per_hour_files.items() if n > 1)
    assert dirty, "two ingest runs over the same hours must leave dirty hours"
    assert facts["dirty"]["compaction"] == dirty
    assert facts["scheduler"]["state_file"] is None


def test_status_table_names_every_section(
    env: dict[str, str], redis_proc: RedisProc, stream: str
) -> None:
    redis_proc.client().xadd(stream, {"message": "hello"})
    res = run_logs(["status"], env)
    assert res.returncode == 0, res.stderr
    out = res.stdout.decode()
    for label in ("redis ", "stream ", "group ", "dlq ", "lake ", "dirty ", "scheduler "):
        assert any(line.startswith(label) for line in out.splitlines()), (label, out)
    assert "1 entries" in out
    assert "not created yet" in out  # no ingest ran: the group does not exist
    assert "no scheduler runs recorded" in out
    assert res.stderr == b""


def test_without_a_group_the_whole_stream_is_lag(
    env: dict[str, str], redis_proc: RedisProc, stream: str
) -> None:
    client = redis_proc.client()
    for i in range(7):
        client.xadd(stream, {"message": str(i)})
    code, facts, _ = status_json(env)
    assert code == 0
    assert facts["group"]["exists"] is False
    assert facts["group"]["lag"] == 7 and facts["group"]["lag_method"] == "no-group"
    assert facts["lake"]["rows"] == 0 and facts["lake"]["recent_hours"] == []


def test_redis_down_still_prints_lake_facts_and_exits_3(
    env: dict[str, str], data_dir: Path
) -> None:
    assert run_logs(["gen", "-n", "200", "--hours", "1"], env).returncode == 0
    assert run_logs(["ingest", "--drain"], env).returncode == 0
    down = {**env, "LOGS_REDIS_URL": f"redis://:hunter2@127.0.0.1:{free_port()}/0"}

    code, facts, err = status_json(down)
    assert code == 3
    assert facts["redis"]["reachable"] is False
    assert facts["stream"] is None and facts["group"] is None and facts["dlq"] is None
    assert facts["lake"]["rows"] == 200
    assert err.startswith(b"logs: error: cannot reach Redis")
    assert b"hunter2" not in err and b"hunter2" not in json.dumps(facts).encode()

    table = run_logs(["status"], down)
    assert table.returncode == 3
    assert b"UNREACHABLE" in table.stdout and b"200 rows" in table.stdout


def test_an_unreadable_lake_is_reported_and_exit_3(
    env: dict[str, str], redis_proc: RedisProc, data_dir: Path
) -> None:
    log_dir = data_dir / "lake" / "logs" / "_delta_log"
    log_dir.mkdir(parents=True)
    (log_dir / "00000000000000000000.json").write_text("this is not a delta log\n")
    code, facts, err = status_json(env)
    assert code == 3
    assert facts["redis"]["reachable"] is True
    assert facts["lake"]["reachable"] is False and facts["lake"]["error"]
    assert b"cannot read the lake" in err


def test_embedded_redis_not_running_is_exit_3(tmp_path: Path) -> None:
    code, facts, err = status_json({"LOGS_DATA_DIR": str(tmp_path / "data")})
    assert code == 3
    assert facts["redis"]["url"] == "(embedded)"
    assert b"no Redis" in err


def test_lag_counts_only_entries_after_the_last_delivered_id(
    env: dict[str, str], redis_proc: RedisProc, stream: str
) -> None:
    """Redis 6.2 reports no lag: it is computed. Deliver some, acknowledge some, trim nothing."""
    client: redis.Redis = redis_proc.client()
    ids = [client.xadd(stream, {"message": str(i)}) for i in range(2500)]
    client.xgroup_create(stream, "lake", "0")
    got = client.xreadgroup("lake", "c1", {stream: ">"}, count=1200)
    client.xack(stream, "lake", *[i for i, _ in got[0][1][:700]])
    _, facts, _ = status_json(env)
    assert facts["group"]["pending"] == 500
    assert facts["group"]["lag"] == 1300
    assert facts["group"]["last_delivered_id"] == ids[1199].decode()


def test_dirty_hours_follow_compaction_and_rollups(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    client = redis_proc.client()
    hour = "2026-11-20T10"
    for batch in range(2):  # two commits into one closed hour: two files
        for i in range(5):
            client.xadd(stream, {"ts": f"2026-11-20T10:0{i}:00Z", "message": f"{batch}-{i}"})
        assert run_logs(["ingest", "--drain"], env).returncode == 0
    _, facts, _ = status_json(env)
    assert facts["dirty"] == {"compaction": [hour], "rollup": [hour]}
    assert facts["lake"]["recent_hours"][0] | {"bytes": 0} == {
        "hour": hour,
        "rows": 10,
        "files": 2,
        "bytes": 0,
        "dirty": True,
        "rollup_dirty": True,
    }

    assert run_logs(["rollup"], env).returncode == 0
    _, facts, _ = status_json(env)
    assert facts["dirty"] == {"compaction": [hour], "rollup": []}

    compacted = run_logs(["compact", "--hour", "2026-11-20/10"], env)
    assert compacted.returncode == 0, compacted.stderr
    _, facts, _ = status_json(env)
    # Compaction rewrote the hour's files: clean now, and its rollup is due again.
    assert facts["dirty"] == {"compaction": [], "rollup": [hour]}
    assert facts["lake"]["recent_hours"][0]["files"] == 1


def test_scheduler_jobs_and_the_lease_holder(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    assert run_logs(["gen", "-n", "300", "--hours", "1"], env).returncode == 0
    assert run_logs(["ingest", "--drain"], env).returncode == 0
    state = data_dir / "state" / "scheduler.json"
    jobs = {"compact", "rollup_hourly", "nightly", "maintain"}
    proc = spawn_logs(["schedule"], env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if set(json.loads(state.read_text()).get("jobs", {})) == jobs:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        code, facts, err = status_json(env)
        assert code == 0, err
        sched = facts["scheduler"]
        holder = redis_proc.client().get(f"{stream}:scheduler:lease")
        assert holder and sched["lease_holder"] == holder.decode()
        assert sched["lease_source"] == "redis" and 0 < sched["lease_ttl_ms"] <= 30_000
        assert sched["state_file"] == str(state)
        recorded = json.loads(state.read_text())["jobs"]
        assert {j["name"] for j in sched["jobs"]} == jobs
        for job in sched["jobs"]:
            assert {k: v for k, v in job.items() if k != "name"} == {
                k: recorded[job["name"]].get(k) for k in status_lib.JOB_KEYS
            }
            assert job["outcome"] == "ok" and job["runs"] >= 1
        table = run_logs(["status"], env).stdout.decode()
        assert f"lease held by {holder.decode()}" in table
        assert all(f" {name} " in table for name in jobs)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    # Released on a clean stop; the runs stay on record.
    _, facts, _ = status_json(env)
    assert facts["scheduler"]["lease_holder"] is None
    assert len(facts["scheduler"]["jobs"]) == 4
    down = {**env, "LOGS_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    _, facts, _ = status_json(down)
    assert facts["scheduler"]["lease_source"] == "state file"
    assert facts["scheduler"]["lease_holder"] is None


def next_runs(table: str) -> dict[str, str]:
    """JOB -> its NEXT RUN cell in the table of `logs status`."""
    lines = table.splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith("jobs ") and "NEXT RUN" in line)
    header = lines[i]
    job, start, end = header.index("JOB"), header.index("NEXT RUN"), header.index("RESULT")
    return {line[job:].split()[0]: line[start:end].strip() for line in lines[i + 1 :]}


def test_a_stopped_scheduler_has_no_next_runs(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    env = {**env, "LOGS_LEASE_TTL": "2"}
    state = data_dir / "state" / "scheduler.json"
    jobs = {"compact", "rollup_hourly", "nightly", "maintain"}
    lease = f"{stream}:scheduler:lease"

    def recorded() -> dict[str, str | None]:
        try:
            return {n: j.get("next_run") for n, j in json.loads(state.read_text())["jobs"].items()}
        except (OSError, ValueError, KeyError):
            return {}

    def planned() -> bool:
        runs = recorded()
        return set(runs) == jobs and all(runs.values())

    proc = spawn_logs(["schedule"], env)
    try:
        assert wait_until(planned), "the scheduler recorded its next runs"
        running = run_logs(["status"], env).stdout.decode()
        assert "lease held by" in running
        assert all(re.fullmatch(r"\d{4}-.*Z|due", v) for v in next_runs(running).values())
    finally:
        proc.kill()  # a crash: nothing cleans up after it
        proc.wait(30)
    assert wait_until(lambda: not redis_proc.client().exists(lease)), "the lease expired"
    assert all(recorded().values())  # the crashed scheduler's plan is still on record...
    crashed = run_logs(["status"], env)
    assert crashed.returncode == 0, crashed.stderr
    table = crashed.stdout.decode()
    assert "scheduler  not running (nobody holds the lease)" in table
    assert next_runs(table) == dict.fromkeys(jobs, "-")  # ...but no run will come

    proc = spawn_logs(["schedule"], env)
    try:
        mine = f"-{proc.pid}-"
        assert wait_until(lambda: mine in (redis_proc.client().get(lease) or b"").decode())
        assert wait_until(lambda: mine in json.loads(state.read_text())["lease"]["holder"])
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    assert recorded() == dict.fromkeys(jobs)  # a clean stop takes its plan off the record
    code, facts, err = status_json(env)
    assert code == 0, err
    assert [j["next_run"] for j in facts["scheduler"]["jobs"]] == [None] * 4
    assert next_runs(run_logs(["status"], env).stdout.decode()) == dict.fromkeys(jobs, "-")
