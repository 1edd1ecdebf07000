"""The lake in an Azure Blob container: `az://` against a real Azurite server (its own process,
tests/azurite.py), reached as a user reaches Azure (AZURE_STORAGE_ACCOUNT_NAME/_KEY and
AZURE_STORAGE_ENDPOINT, or the same in logs.toml `[storage]`): ingest, compaction, rollups,
maintenance, concurrent writers, and the errors of a lake that cannot be used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deltalake import DeltaTable

from ingest import config
from ingest.lake.location import lake_of
from tests import azurite
from tests.helpers import RedisProc, closed_hour, fill_hour, ids_in_stream, run_logs
from tests.shared_lake import assert_every_entry_once, ingest_from_hosts, raw_ids, sql


def container_of(az_env: dict[str, str]) -> str:
    return az_env["LOGS_LAKE_URI"].split("/")[2]


def test_gen_ingest_and_sql_on_a_container(
    env: dict[str, str],
    az_env: dict[str, str],
    azurite_server: azurite.Azurite,
    redis_proc: RedisProc,
    stream: str,
) -> None:
    both = {**env, **az_env}
    gen = run_logs(["gen", "--count", "3000", "--hours", "3", "--seed", "11"], both)
    assert gen.returncode == 0, gen.stderr
    sent = set(ids_in_stream(redis_proc.client(), stream))
    ingest = run_logs(["ingest", "--drain"], {**both, "LOGS_BATCH_ROWS": "700"})
    assert ingest.returncode == 0, ingest.stderr
    assert b"ingested 3000 entries" in ingest.stderr, ingest.stderr
    assert sql(both, "select count(*), count(distinct stream_id) from logs") == [["3000", "3000"]]
    assert set(raw_ids(both)) == sent
    # The table is in the container, and nothing of the lake is on the host.
    blobs = azurite_server.blobs(container_of(az_env), "lake/logs/")
    assert "lake/logs/_delta_log/00000000000000000000.json" in blobs
    assert any(b.endswith(".parquet") for b in blobs)
    assert not (Path(env["LOGS_DATA_DIR"]) / "lake").exists()
    facts = json.loads(run_logs(["status", "-F", "json"], both).stdout)
    assert facts["lake"]["rows"] == 3000


def test_compact_rollup_and_maintain_on_a_container(
    env: dict[str, str], az_env: dict[str, str], azurite_server: azurite.Azurite, tmp_path: Path
) -> None:
    """Redelivered copies in closed hours, compacted away; rollups (--all) that match the
    table's counts; retention and vacuum deleting blobs; answers read from a second host."""
    both = {**env, **az_env, "LOGS_BATCH_ROWS": "500"}
    assert run_logs(["gen", "--count", "2000", "--hours", "4", "--seed", "3"], both).returncode == 0
    assert run_logs(["ingest", "--drain"], both).returncode == 0
    lake = lake_of(config.load(env=both).settings)
    fill_hour(lake, closed_hour(30), 0, 500, commits=5, redeliver=40)  # type: ignore[arg-type]
    fill_hour(lake, closed_hour(24 * 40), 10_000, 100, commits=2, redeliver=10)  # type: ignore[arg-type]
    assert len(raw_ids(both)) == 2600 + 4 * 40 + 10

    compact = run_logs(["compact", "--grace", "0"], both)
    assert compact.returncode == 0 and b"compacted" in compact.stderr, compact.stderr
    ids = raw_ids(both)
    assert len(ids) == len(set(ids)) == 2600  # the copies are gone physically
    rollup = run_logs(["rollup", "--all"], {**both, "LOGS_RETENTION_DAYS": "1000"})
    assert rollup.returncode == 0, rollup.stderr
    other = {**both, "LOGS_DATA_DIR": str(tmp_path / "other-host")}  # nothing on its disk
    assert sql(other, "select count(*), count(distinct stream_id) from logs") == [["2600", "2600"]]
    assert sql(other, "select sum(count) from rollups_hourly") == [["2600"]]
    assert sql(other, "select sum(count) from rollups_daily") == [["2600"]]
    by_hour = "select date, hour, service, level, {} from {} group by all order by all"
    assert sql(other, by_hour.format("count(*)", "logs")) == sql(
        other, by_hour.format("sum(count)", "rollups_hourly")
    )
    levels = sql(other, "select level, count(*) from logs group by all order by all")
    rolled = sql(other, "select level, sum(count) from rollups_hourly group by all order by all")
    assert levels == rolled

    maintain = run_logs(["maintain"], {**both, "LOGS_VACUUM_RETENTION_HOURS": "0"})
    assert maintain.returncode == 0, maintain.stderr
    assert b"retention deleted 1 raw hours" in maintain.stderr, maintain.stderr
    assert sql(other, "select count(*) from logs") == [["2500"]]
    # Vacuum deleted compaction's inputs and the expired hour: the container holds exactly the
    # data files the log references.
    table = DeltaTable(az_env["LOGS_LAKE_URI"] + "/logs")
    referenced = {
        f"lake/logs/{p}" for p in table.get_add_actions(flatten=True).column("path").to_pylist()
    }
    stored = {
        b
        for b in azurite_server.blobs(container_of(az_env), "lake/logs/")
        if b.endswith(".parquet") and "/_delta_log/" not in b
    }
    assert referenced and stored == referenced
    again = run_logs(["rollup"], {**both, "LOGS_RETENTION_DAYS": "1000"})
    assert b"rolled up 0 hours, 0 days" in again.stderr, again.stderr  # the record is in the lake


def test_two_ingest_processes_with_their_own_data_dirs_land_every_entry_once(
    env: dict[str, str], az_env: dict[str, str], redis_proc: RedisProc, stream: str, tmp_path: Path
) -> None:
    """Both commit to one Delta log by conditional puts (`If-None-Match: *`, which Azurite
    enforces): every entry lands once, the log has no gap, no commit failed."""
    gen = run_logs(["gen", "--count", "12000", "--hours", "2"], env)
    assert gen.returncode == 0, gen.stderr
    expected = set(ids_in_stream(redis_proc.client(), stream))
    both = {**env, **az_env}
    for err in ingest_from_hosts(both, tmp_path, hosts=2, rows=400):
        assert b"committed" in err, err  # both wrote: the commits did interleave
    assert len(expected) == 12000
    assert_every_entry_once(both, expected)
    # What makes that safe: a second create of an existing blob is refused (409
    # BlobAlreadyExists, as Azure answers `If-None-Match: *` on an existing blob).
    import obstore
    from obstore.exceptions import AlreadyExistsError

    from ingest.lake.store import open_store

    store = open_store(lake_of(config.load(env=both).settings))
    obstore.put(store, "_race/00.json", b"first", mode="create")
    with pytest.raises(AlreadyExistsError):
        obstore.put(store, "_race/00.json", b"second", mode="create")
    assert bytes(obstore.get(store, "_race/00.json").bytes()) == b"first"


def test_storage_options_from_logs_toml(
    env: dict[str, str],
    azurite_server: azurite.Azurite,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No AZURE_* in the environment: the account, key and endpoint come from `[storage]`."""
    import os

    for key in list(os.environ):
        if key.startswith("AZURE_"):
            monkeypatch.delenv(key)
    container = azurite_server.new_container()
    cfg = tmp_path / "logs.toml"
    cfg.write_text(
        f'lake_uri = "az://{container}/lake"\n[storage]\n'
        + "".join(f'{k} = "{v}"\n' for k, v in azurite_server.env().items())
    )
    with_cfg = {**env, "LOGS_CONFIG": str(cfg)}
    assert run_logs(["gen", "--count", "800", "--hours", "2"], with_cfg).returncode == 0
    ingest = run_logs(["ingest", "--drain"], with_cfg)
    assert ingest.returncode == 0, ingest.stderr
    fill_hour(lake_of(config.load(env=with_cfg).settings), closed_hour(5), 0, 200, redeliver=20)  # type: ignore[arg-type]
    for args in (["compact"], ["rollup", "--all"], ["maintain"]):
        res = run_logs(args, with_cfg)
        assert res.returncode == 0, (args, res.stderr)
    assert sql(with_cfg, "select count(*), count(distinct stream_id) from logs") == [
        ["1000", "1000"]
    ]
    assert sql(with_cfg, "select sum(count) from rollups_hourly") == [["1000"]]
    shown = json.loads(run_logs(["config", "-F", "json"], with_cfg).stdout)
    assert shown["storage"]["value"]["AZURE_STORAGE_ACCOUNT_KEY"] == "***"
    assert azurite.KEY not in json.dumps(shown)
    assert azurite_server.blobs(container, "lake/rollups_hourly/_delta_log/")


WRONG_KEY = "d3Jvbmcta2V5LWZvci1sb2dsYWtlLXRlc3RzLTAxMjM0NTY3ODk="  # valid base64, not the key
NOT_BASE64 = "not-a-base64-key-0123!"
PROBLEMS = {
    "missing container": (
        {"LOGS_LAKE_URI": "az://no-such-container/lake"},
        b"the bucket or container 'no-such-container' of the lake az://no-such-container/lake",
        b"create it first",
    ),
    "wrong key": (
        {"AZURE_STORAGE_ACCOUNT_KEY": WRONG_KEY},
        b"the object store refused our credentials for the lake az://",
        b"AZURE_STORAGE_ACCOUNT_KEY",
    ),
    "key not base64": (
        {"AZURE_STORAGE_ACCOUNT_KEY": NOT_BASE64},
        b"the storage account key for the lake az://",
        b"AZURE_STORAGE_ACCOUNT_KEY",
    ),
    "unreachable endpoint": (
        {},  # a closed port, set in the test
        b"cannot reach the object store at http://127.0.0.1:",
        b"AZURE_STORAGE_ENDPOINT",
    ),
}


@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_a_container_that_cannot_be_used_is_one_line_and_exit_3(
    env: dict[str, str], az_env: dict[str, str], problem: str
) -> None:
    from ingest.redis_server import free_port

    changes, expected, hint = PROBLEMS[problem]
    broken = {**env, **az_env, **changes}
    if problem == "unreachable endpoint":
        broken["AZURE_STORAGE_ENDPOINT"] = f"http://127.0.0.1:{free_port()}/{azurite.ACCOUNT}"
    assert run_logs(["gen", "--count", "10"], broken).returncode == 0
    for args in (
        ["sql", "select count(*) from logs"],
        ["ingest", "--drain"],
        ["compact"],
        ["rollup", "--all"],
        ["maintain"],
        ["export", "--all", "-o", "x.parquet"],
    ):
        res = run_logs(args, broken, timeout=120)
        assert res.returncode == 3, (args, res.stderr)
        assert expected in res.stderr, (args, res.stderr)
        assert b"hint: " in res.stderr and hint in res.stderr.split(b"hint: ")[1], res.stderr
        assert b"Traceback" not in res.stderr, (args, res.stderr)
        assert res.stderr.count(b"logs: error:") == 1, (args, res.stderr)
        for secret in (azurite.KEY, WRONG_KEY, NOT_BASE64):
            assert secret.encode() not in res.stderr + res.stdout, (args, res.stderr)
