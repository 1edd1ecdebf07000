"""`logs config`: every setting, its value and its source (flag, env, file, default), passwords
masked in every format."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from deltalake import DeltaTable

from ingest.config import Settings
from ingest.lake import layout
from tests.helpers import RedisProc, run_logs

SECRET = "hunter2"


def test_json_shows_every_setting_with_its_source(tmp_path: Path) -> None:
    cfg = tmp_path / "conf.toml"
    cfg.write_text('[redis]\nstream = "from-file"\n[ingest]\nbatch_rows = 7\nread_count = 9\n')
    env = {"LOGS_REDIS_URL": f"redis://app:{SECRET}@db:6379/0", "LOGS_READ_COUNT": "11"}
    res = run_logs(["--config", str(cfg), "config", "-F", "json", "--group", "g1"], env)
    assert res.returncode == 0, res.stderr
    shown = json.loads(res.stdout)
    assert list(shown) == [f.name for f in dataclasses.fields(Settings)]
    assert shown["redis_url"] == {
        "value": "redis://app:***@db:6379/0",
        "source": "env LOGS_REDIS_URL",
    }
    assert shown["stream"] == {"value": "from-file", "source": f"file {cfg}"}
    assert shown["batch_rows"] == {"value": 7, "source": f"file {cfg}"}
    # A read never asks for more than a batch (see test_batch_rows_is_the_size_of_a_commit).
    assert shown["read_count"] == {
        "value": 7,
        "source": "env LOGS_READ_COUNT: 11 capped at batch_rows",
    }
    assert shown["group"] == {"value": "g1", "source": "flag"}
    assert shown["data_dir"] == {"value": "data", "source": "default"}
    assert shown["metrics_port"] == {"value": None, "source": "default"}
    assert SECRET.encode() not in res.stdout + res.stderr


def test_table_finds_logs_toml_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "logs.toml").write_text('group = "from-toml"\n')  # the test runs in tmp_path
    env = {"LOGS_REDIS_URL": f"redis://:{SECRET}@db/1", "LOGS_DATA_DIR": "/srv/logs"}
    res = run_logs(["config", "--stream", "s1"], env)
    assert res.returncode == 0, res.stderr
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in res.stdout.decode().splitlines()}
    assert rows["SETTING"] == ["VALUE", "SOURCE"]
    assert rows["redis_url"] == ["redis://:***@db/1", "env LOGS_REDIS_URL"]
    assert rows["data_dir"] == ["/srv/logs", "env LOGS_DATA_DIR"]
    assert rows["stream"] == ["s1", "flag"]
    assert rows["group"] == ["from-toml", "file logs.toml"]
    assert rows["batch_age"] == ["2.0", "default"]
    assert SECRET.encode() not in res.stdout + res.stderr
    assert res.stderr == b""


def test_embedded_redis_and_a_bad_setting(tmp_path: Path) -> None:
    res = run_logs(["config"], {})
    assert res.returncode == 0
    assert res.stdout.decode().splitlines()[1].split() == ["redis_url", "(embedded)", "default"]
    bad = run_logs(["config"], {"LOGS_BATCH_AGE": "soon"})
    assert bad.returncode == 2
    assert bad.stderr.startswith(b"logs: error: LOGS_BATCH_AGE: batch_age must be float")


def test_batch_rows_is_the_size_of_a_commit(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    client = redis_proc.client()
    pipe = client.pipeline(transaction=False)
    for i in range(10_000):
        pipe.xadd(stream, {"message": f"m{i}"})
    pipe.execute()
    # The default read_count (10,000) used to make this one commit of 10,000 rows.
    res = run_logs(["ingest", "--drain", "--batch-rows", "1000"], {**env, "LOGS_BATCH_AGE": "60"})
    assert res.returncode == 0, res.stderr
    assert b"ingested 10000 entries, dead-lettered 0, 10 commits" in res.stderr, res.stderr
    history = DeltaTable(str(layout.table_path(data_dir))).history()
    writes = [c for c in history if c["operation"] == "WRITE"]
    assert [int(c["operationMetrics"]["num_added_rows"]) for c in writes] == [1000] * 10
