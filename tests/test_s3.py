"""The lake in a bucket: every command against a local S3 server (moto in server mode, its own
process), compared with the same run against a directory; many ingest processes on separate
data dirs writing one table; the shared state (compaction's names, the rollup record, the
locks) seen from any data dir; and the errors of a lake that cannot be reached."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from deltalake import DeltaTable

from ingest import config
from ingest.lake import layout
from ingest.lake.location import lake_of
from tests import s3server
from tests.helpers import RedisProc, closed_hour, fill_hour, ids_in_stream, run_logs, spawn_logs
from tests.shared_lake import assert_every_entry_once, ingest_from_hosts, raw_ids, sql


def test_a_directory_and_a_bucket_give_the_same_answers(
    env: dict[str, str], s3_env: dict[str, str], redis_proc: RedisProc, stream: str, tmp_path: Path
) -> None:
    """gen -> ingest -> compact -> rollup -> sql, once into a directory and once into a bucket
    (two consumer groups read the same entries): every answer is the same."""
    gen = run_logs(["gen", "--count", "4000", "--hours", "4", "--seed", "7"], env)
    assert gen.returncode == 0, gen.stderr
    directory = {
        **{k: v for k, v in env.items()},
        "LOGS_GROUP": "dir",
        "LOGS_DATA_DIR": str(tmp_path / "d"),
        "LOGS_BATCH_ROWS": "700",
    }
    bucket = {**directory, **s3_env, "LOGS_GROUP": "s3", "LOGS_DATA_DIR": str(tmp_path / "b")}
    old = closed_hour(24 * 40)
    since = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for group in ("dir", "s3"):  # both groups see every entry (trimming waits for both)
        redis_proc.client().xgroup_create(stream, group, id="0")
    for lake_env in (directory, bucket):
        ingest = run_logs(["ingest", "--drain"], lake_env)
        assert ingest.returncode == 0, ingest.stderr
        assert b"ingested 4000 entries" in ingest.stderr, ingest.stderr
        settings = config.load(env=lake_env).settings
        # Redelivered copies (a crash between commit and XACK), in an hour long closed, and
        # an hour older than retention.
        fill_hour(lake_of(settings), closed_hour(30), 0, 500, commits=5, redeliver=40)  # type: ignore[arg-type]
        fill_hour(lake_of(settings), old, 10_000, 100, commits=2, redeliver=10)  # type: ignore[arg-type]
    answers = {}
    for name, lake_env in (("dir", directory), ("s3", bucket)):
        seen: dict[str, object] = {}
        seen["raw"] = len(raw_ids(lake_env))
        seen["before"] = sql(lake_env, "select count(*), count(distinct stream_id) from logs")
        seen["since"] = sql(lake_env, "select count(*) from logs", "--since", since)
        open_hours = {datetime.now(UTC).strftime("%Y-%m-%dT%H")}  # never compacted by --all
        compact = run_logs(["compact", "--grace", "0"], lake_env)
        open_hours.add(datetime.now(UTC).strftime("%Y-%m-%dT%H"))
        assert compact.returncode == 0, compact.stderr
        ids = raw_ids(lake_env)
        assert len(ids) == len(set(ids)) == 4600  # duplicates gone physically
        rollup = run_logs(["rollup"], {**lake_env, "LOGS_RETENTION_DAYS": "1000"})
        assert rollup.returncode == 0, rollup.stderr
        again = run_logs(["rollup"], {**lake_env, "LOGS_RETENTION_DAYS": "1000"})
        assert b"rolled up 0 hours, 0 days" in again.stderr  # the record is in the lake
        seen["hourly"] = sql(lake_env, "select * exclude (first_ts, last_ts) from rollups_hourly")
        seen["daily"] = sql(lake_env, "select * exclude (first_ts, last_ts) from rollups_daily")
        seen["levels"] = sql(
            lake_env, "select level, service, count(*) from logs group by all order by all"
        )
        keep = {**lake_env, "LOGS_VACUUM_RETENTION_HOURS": "0"}
        maintain = run_logs(["maintain"], keep)
        assert maintain.returncode == 0, maintain.stderr
        assert b"retention deleted 1 raw hours" in maintain.stderr
        seen["after"] = sql(lake_env, "select count(*) from logs")
        out = tmp_path / f"{name}.parquet"
        export = run_logs(["export", "--all", "-o", str(out)], lake_env)
        assert export.returncode == 0, export.stderr
        assert b"exported 4,500 rows" in export.stderr
        seen["schema"] = run_logs(["schema", "logs", "-F", "csv"], lake_env).stdout
        answers[name] = seen
    assert answers["dir"] == answers["s3"]
    assert answers["s3"]["before"] == [["4600", "4600"]]
    assert answers["s3"]["raw"] == 4600 + 4 * 40 + 10
    assert answers["s3"]["after"] == [["4500"]]
    # Vacuum deleted compaction's inputs from the bucket: what is left is what the log holds.
    bucket_name = s3_env["LOGS_LAKE_URI"].split("/")[2]
    server_keys = run_logs(["status", "-F", "json"], bucket)
    facts = json.loads(server_keys.stdout)
    assert facts["lake"]["rows"] == 4500 and set(facts["dirty"]["compaction"]) <= open_hours
    table = DeltaTable(s3_env["LOGS_LAKE_URI"] + "/logs")
    referenced = {
        f"lake/logs/{p}" for p in table.get_add_actions(flatten=True).column("path").to_pylist()
    }
    assert bucket_name and referenced
    assert not (tmp_path / "b" / "lake").exists()  # nothing of the lake on the host


def test_four_ingest_processes_with_their_own_data_dirs_land_every_entry_once(
    env: dict[str, str], s3_env: dict[str, str], redis_proc: RedisProc, stream: str, tmp_path: Path
) -> None:
    gen = run_logs(["gen", "--count", "20000", "--hours", "2"], env)
    assert gen.returncode == 0, gen.stderr
    expected = set(ids_in_stream(redis_proc.client(), stream))
    both = {**env, **s3_env}
    ingest_from_hosts(both, tmp_path, hosts=4, rows=500)
    assert len(expected) == 20000
    assert_every_entry_once(both, expected)


def test_three_hosts_then_compact_and_rollup_answer_like_a_directory(
    env: dict[str, str], s3_env: dict[str, str], redis_proc: RedisProc, stream: str, tmp_path: Path
) -> None:
    """gen -> 3 concurrent `logs ingest --drain` on separate data dirs -> compact (a 4th host)
    -> rollup --all (a 5th) -> sql, into a fresh bucket and into a directory shared the same
    way (two consumer groups read the same entries): counts and rollups are the same."""
    assert run_logs(["gen", "--count", "6000", "--hours", "3", "--seed", "5"], env).returncode == 0
    lakes = {
        "dir": {**env, "LOGS_GROUP": "dir", "LOGS_LAKE_URI": str(tmp_path / "shared-lake")},
        "s3": {**env, **s3_env, "LOGS_GROUP": "s3"},
    }
    for group in lakes:
        redis_proc.client().xgroup_create(stream, group, id="0")
    answers = {}
    for name, lake_env in lakes.items():
        hosts = [{**lake_env, "LOGS_DATA_DIR": str(tmp_path / f"{name}-{i}")} for i in range(5)]
        procs = [
            spawn_logs(["ingest", "--drain"], {**h, "LOGS_BATCH_ROWS": "500"}) for h in hosts[:3]
        ]
        try:
            for proc in procs:
                _, err = proc.communicate(timeout=240)
                assert proc.returncode == 0, err
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
        compact = run_logs(["compact"], hosts[3])
        assert compact.returncode == 0 and b"compacted" in compact.stderr, compact.stderr
        rollup = run_logs(["rollup", "--all"], hosts[4])
        assert rollup.returncode == 0, rollup.stderr
        answers[name] = [
            sql(hosts[0], "select count(*), count(distinct stream_id) from logs"),
            sql(hosts[1], "select sum(count), sum(error_count) from rollups_hourly"),
            sql(hosts[2], "select * from rollups_hourly order by all"),
            sql(hosts[3], "select * from rollups_daily order by all"),
            sql(hosts[4], "select level, service, count(*) from logs group by all order by all"),
        ]
    assert answers["s3"][0] == [["6000", "6000"]] and answers["s3"][1][0][0] == "6000"
    assert answers["s3"] == answers["dir"]


def test_compaction_and_rollups_on_different_hosts_share_their_record(
    env: dict[str, str], s3_env: dict[str, str], tmp_path: Path
) -> None:
    """What compaction wrote and what rollups computed is in the bucket (file names, the rollup
    record) and the locks in Redis: a host with an empty data dir sees all of it."""
    host_a = {**env, **s3_env, "LOGS_DATA_DIR": str(tmp_path / "a")}
    host_b = {**env, **s3_env, "LOGS_DATA_DIR": str(tmp_path / "b")}
    host_c = {**env, **s3_env, "LOGS_DATA_DIR": str(tmp_path / "c")}
    start = closed_hour(5)
    fill_hour(lake_of(config.load(env=host_a).settings), start, 0, 600, redeliver=30)  # type: ignore[arg-type]
    key = start.strftime("%Y-%m-%dT%H")
    before = json.loads(run_logs(["status", "-F", "json"], host_c).stdout)
    assert key in before["dirty"]["compaction"] and key in before["dirty"]["rollup"]

    assert run_logs(["compact"], host_a).returncode == 0
    assert run_logs(["rollup"], host_b).returncode == 0
    after = json.loads(run_logs(["status", "-F", "json"], host_c).stdout)
    assert after["dirty"] == {"compaction": [], "rollup": []}
    # Host C finds nothing to do either: the record travelled with the lake.
    assert b"compacted 0 hours" in run_logs(["compact"], host_c).stderr
    assert b"rolled up 0 hours, 0 days" in run_logs(["rollup"], host_c).stderr
    assert sql(host_c, "select sum(count) from rollups_hourly") == [["600"]]
    for host in ("a", "b", "c"):  # no lake state on any host's disk
        state = tmp_path / host / "state"
        assert not any(p.suffix == ".json" for p in state.rglob("*")) if state.exists() else True


def test_upkeep_of_a_bucket_needs_only_its_readme_redis_user(
    env: dict[str, str], s3_env: dict[str, str], redis_proc: RedisProc, tmp_path: Path
) -> None:
    """compact, rollup and maintain of a lake in a bucket take their locks in Redis under a
    user holding only what README's permissions table gives them."""
    from tests.test_acl import PASSWORD, readme_rules, user

    rules = readme_rules()
    assert rules["compact"] == rules["rollup"] == rules["maintain"]
    name = f"upkeep-{tmp_path.name[-8:]}"
    url = user(redis_proc, name, rules["compact"])
    host = {**env, **s3_env, "LOGS_DATA_DIR": str(tmp_path / "h"), "LOGS_REDIS_URL": url}
    try:
        fill_hour(lake_of(config.load(env=host).settings), closed_hour(3), 0, 400, redeliver=20)  # type: ignore[arg-type]
        for args in (["compact"], ["rollup"], ["maintain"]):
            res = run_logs(args, host)
            assert res.returncode == 0, res.stderr
            assert b"NOPERM" not in res.stderr and PASSWORD.encode() not in res.stderr
        assert sql(host, "select sum(count) from rollups_hourly") == [["400"]]
        assert redis_proc.client().keys("loglake:lake:*") == []  # released
    finally:
        redis_proc.client().execute_command("ACL", "DELUSER", name)


def test_live_and_since_read_a_bucket_like_a_directory(
    env: dict[str, str], s3_env: dict[str, str], redis_proc: RedisProc, stream: str
) -> None:
    both = {**env, **s3_env}
    assert run_logs(["gen", "--count", "1000", "--hours", "3"], both).returncode == 0
    assert run_logs(["ingest", "--drain"], both).returncode == 0
    assert run_logs(["gen", "--count", "50", "--hours", "0", "--seed", "3"], both).returncode == 0
    assert sql(both, "select count(*) from logs") == [["1000"]]
    assert sql(both, "select count(*) from logs", "--live") == [["1050"]]
    (since,) = sql(both, "select count(*) from logs", "--since", "1h")
    (whole,) = sql(
        both, "select count(*) from logs where ts >= now() - interval 1 hour - interval 5 second"
    )
    assert 0 < int(since[0]) <= int(whole[0])
    # notebooks: the same views through connect()
    from queries import connect

    con = connect(settings=config.load(env=both).settings)
    assert con.sql("select count(*) from logs").fetchall() == [(1000,)]


def test_the_sandbox_refuses_files_next_to_a_bucket_lake(
    env: dict[str, str], s3_env: dict[str, str], tmp_path: Path
) -> None:
    both = {**env, **s3_env}
    fill_hour(lake_of(config.load(env=both).settings), closed_hour(3), 0, 100)  # type: ignore[arg-type]
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    for query in (
        f"select * from read_csv('{secret}')",
        f"select * from read_parquet('{s3_env['LOGS_LAKE_URI']}/logs/*/*/*.parquet')",
        "copy (select 1) to 'out.csv'",
    ):
        res = run_logs(["sql", query], both)
        assert res.returncode == 1, (query, res.stderr)
        assert b"Traceback" not in res.stderr
    assert sql(both, "select count(*) from logs") == [["100"]]


@pytest.mark.parametrize("problem", ["missing bucket", "unreachable endpoint", "plain http"])
def test_a_lake_that_cannot_be_reached_is_one_line_and_exit_3(
    env: dict[str, str], s3_env: dict[str, str], redis_proc: RedisProc, problem: str
) -> None:
    from ingest.redis_server import free_port

    broken = {**env, **s3_env}
    if problem == "missing bucket":
        broken["LOGS_LAKE_URI"] = "s3://no-such-bucket-here/lake"
        expected = b"bucket or container 'no-such-bucket-here' of the lake"
    elif problem == "unreachable endpoint":
        broken["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"
        expected = b"cannot reach the object store at http://127.0.0.1:"
    else:  # a local server's http:// endpoint without AWS_ALLOW_HTTP ("Generic S3 error" alone)
        broken["AWS_ALLOW_HTTP"] = "false"
        expected = b"is plain http, which the object store client refuses unless allowed"
    assert run_logs(["gen", "--count", "10"], broken).returncode == 0
    for args in (
        ["sql", "select count(*) from logs"],
        ["ingest", "--drain"],
        ["compact"],
        ["rollup"],
        ["maintain"],
        ["export", "--all", "-o", "x.parquet"],
    ):
        res = run_logs(args, broken, timeout=120)
        assert res.returncode == 3, (args, res.stderr)
        assert expected in res.stderr, (args, res.stderr)
        assert b"Traceback" not in res.stderr
        assert s3server.SECRET_KEY.encode() not in res.stderr + res.stdout
        assert res.stderr.count(b"logs: error:") == 1, (args, res.stderr)


def test_refused_credentials_are_one_line_and_exit_3(env: dict[str, str]) -> None:
    """A server that checks credentials (moto with authentication on) refuses unknown keys."""
    strict = s3server.start({"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
    try:
        lake = {
            **env,
            **strict.env(secret_key="wrong-secret-123456"),
            "LOGS_LAKE_URI": "s3://some-bucket/lake",
        }
        for args in (["sql", "select count(*) from logs"], ["compact"]):
            res = run_logs(args, lake, timeout=120)
            assert res.returncode == 3, (args, res.stderr)
            assert b"refused our credentials" in res.stderr, res.stderr
            assert b"wrong-secret-123456" not in res.stderr + res.stdout
            assert b"Traceback" not in res.stderr
    finally:
        strict.kill()


def test_config_shows_the_lake_and_masks_storage_secrets(tmp_path: Path) -> None:
    cfg = tmp_path / "logs.toml"
    cfg.write_text(
        'lake_uri = "s3://bkt/lake"\n[storage]\nAWS_REGION = "eu-west-1"\n'
        'AWS_SECRET_ACCESS_KEY = "file-secret-9876"\n'
    )
    res = run_logs(
        ["--config", str(cfg), "config", "-F", "json"],
        {"AZURE_STORAGE_ACCOUNT_KEY": "env-secret-5432"},
    )
    assert res.returncode == 0, res.stderr
    shown = json.loads(res.stdout)
    assert shown["lake_uri"] == {"value": "s3://bkt/lake", "source": f"file {cfg}"}
    assert shown["storage"]["value"]["AWS_REGION"] == "eu-west-1"
    assert shown["storage"]["value"]["AWS_SECRET_ACCESS_KEY"] == "***"
    assert shown["storage"]["value"]["AZURE_STORAGE_ACCOUNT_KEY"] == "***"
    table = run_logs(["--config", str(cfg), "config", "--lake-uri", "gs://other/x"], {})
    assert b"gs://other/x" in table.stdout and b"flag" in table.stdout
    assert b"secret" not in (res.stdout + table.stdout).replace(b"SECRET", b"")
    bad = run_logs(["config", "--lake-uri", "ftp://x/y"], {})
    assert bad.returncode == 2 and bad.stderr.startswith(b"logs: error: lake_uri: unknown scheme")


def test_layout_keeps_local_paths_and_joins_uris_as_strings(tmp_path: Path) -> None:
    local = lake_of(tmp_path)
    assert local.is_local and local.table_path() == tmp_path / "lake" / "logs"
    remote = lake_of(config.load({"lake_uri": "s3://b/x/"}, env={}).settings)
    assert remote.table_uri(layout.ROLLUPS_DAILY) == "s3://b/x/rollups_daily"
    assert not remote.is_local and remote.scheme == "s3"


def test_a_job_error_keeps_no_secret() -> None:
    """A failed job's error is logged and kept in Redis for any host: no storage secret, no
    Redis password."""
    from ingest.upkeep.scheduler import _scrubbed

    settings = config.load(
        {
            "lake_uri": "s3://b/x",
            "redis_url": "redis://app:redis-pw-4321@10.0.0.1:6379/0",
            "storage": {"AWS_SECRET_ACCESS_KEY": "s3-secret-8765"},
        },
        env={},
    ).settings
    text = "OSError: s3-secret-8765 refused at https://h/x?sig=abc; redis://app:redis-pw-4321@h"
    shown = _scrubbed(text, settings)
    assert "s3-secret-8765" not in shown and "redis-pw-4321" not in shown
    assert "sig=abc" not in shown and shown.startswith("OSError: *** refused")


def test_up_runs_ingest_and_the_scheduler_on_a_bucket(
    env: dict[str, str], s3_env: dict[str, str], redis_proc: RedisProc, stream: str, tmp_path: Path
) -> None:
    """`logs up` (2 ingest processes + the scheduler) into a bucket: entries land, closed
    hours are compacted and rolled up, with the lock in Redis and no lake on the host."""
    import signal

    from tests.helpers import wait_until

    both = {
        **env,
        **s3_env,
        "LOGS_COMPACT_INTERVAL": "1",
        "LOGS_COMPACT_GRACE": "0",
        "LOGS_LEASE_TTL": "2",
    }
    assert run_logs(["gen", "--count", "3000", "--hours", "3"], both).returncode == 0
    up = spawn_logs(["up", "--consumers", "2"], both)
    try:

        def settled() -> bool:
            res = run_logs(["status", "-F", "json"], both)
            facts = json.loads(res.stdout) if res.stdout else {}
            lake = facts.get("lake") or {}
            dirty = facts.get("dirty") or {}
            closed = [
                h
                for h in dirty.get("compaction", [])
                if h != datetime.now(UTC).strftime("%Y-%m-%dT%H")
            ]
            return lake.get("rows") == 3000 and not closed and len(dirty.get("rollup", [])) <= 1

        assert wait_until(settled, timeout=150, every=1.0)
    finally:
        up.send_signal(signal.SIGINT)
        up.communicate(timeout=60)
    assert up.returncode == 0
    assert sql(both, "select count(*), count(distinct stream_id) from logs") == [["3000", "3000"]]
    # Another host (an empty data dir) sees the same lake and the scheduler's last runs.
    other = {**both, "LOGS_DATA_DIR": str(tmp_path / "other-host")}
    facts = json.loads(run_logs(["status", "-F", "json"], other).stdout)
    assert facts["lake"]["rows"] == 3000 and facts["scheduler"]["state_file"] is None
    assert {"compact", "maintain"} <= {job["name"] for job in facts["scheduler"]["jobs"]}
    # A host where a scheduler ran long ago shows the newer runs, from Redis.
    stale = tmp_path / "other-host" / "state" / "scheduler.json"
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"jobs": {"old": {}}, "updated_at": "2000-01-01T00:00:00.000Z"}))
    facts = json.loads(run_logs(["status", "-F", "json"], other).stdout)
    assert {"compact", "maintain"} <= {job["name"] for job in facts["scheduler"]["jobs"]}
    assert "old" not in {job["name"] for job in facts["scheduler"]["jobs"]}
    assert not (Path(env["LOGS_DATA_DIR"]) / "lake").exists()
