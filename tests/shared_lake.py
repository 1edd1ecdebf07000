"""What the bucket (test_s3.py) and the container (test_azure.py) tests share: `logs sql`'s
answers, the rows physically in the table, and several hosts ingesting into one lake."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from deltalake import DeltaTable

from ingest import config
from ingest.lake.location import lake_of
from tests.helpers import run_logs, spawn_logs


def sql(env: dict[str, str], query: str, *args: str) -> list[list[str]]:
    res = run_logs(["sql", "-F", "csv", *args, query], env)
    assert res.returncode == 0, res.stderr
    return list(csv.reader(io.StringIO(res.stdout.decode())))[1:]


def raw_ids(env: dict[str, str]) -> list[str]:
    """Every stream_id physically in the logs table (no dedup), read with deltalake alone."""
    lake = lake_of(config.load(env=env).settings)
    table = DeltaTable(lake.table_uri(), storage_options=lake.storage_options)
    return [str(i) for i in table.to_pyarrow_table(columns=["stream_id"]).column(0).to_pylist()]


def ingest_from_hosts(env: dict[str, str], folder: Path, hosts: int, rows: int) -> list[bytes]:
    """`hosts` concurrent `logs ingest --drain`, each with its own data dir under `folder` and
    `rows` per commit, into the lake `env` names; each one's stderr, once all exited 0 and no
    commit failed, not even once."""
    procs = [
        spawn_logs(
            ["ingest", "--drain", "--consumer", f"host{i}"],
            {
                **env,
                "LOGS_DATA_DIR": str(folder / f"host{i}"),
                "LOGS_BATCH_ROWS": str(rows),
                "LOGS_READ_COUNT": str(rows),
                # Only a dead consumer's entries are claimed (the default 60 s): with 2 s, a
                # commit slowed by the other writers could be claimed and committed twice,
                # which readers would deduplicate, but these tests count physical rows.
                "LOGS_CLAIM_IDLE": "60",
            },
        )
        for i in range(hosts)
    ]
    errors = []
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err
            assert b"commit of" not in err, err
            errors.append(err)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return errors


def assert_every_entry_once(env: dict[str, str], expected: set[str]) -> None:
    """The lake holds each of `expected` once, physically and as `logs sql` counts, in one Delta
    log without gaps."""
    ids = raw_ids(env)
    assert len(ids) == len(expected)
    assert set(ids) == expected  # nothing lost, nothing twice
    table = DeltaTable(env["LOGS_LAKE_URI"] + "/logs")
    versions = [h["version"] for h in table.history()]
    assert sorted(versions) == list(range(max(versions) + 1))  # one log, no gaps
    assert sql(env, "select count(distinct stream_id) from logs") == [[str(len(expected))]]
