"""Fixtures: a real redis-server on loopback (started and killed by PID here), a fresh stream
per test, a temporary data dir, and no `LOGS_*` environment or config file leaking in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from ingest import redis_server

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class RedisProc:
    """A redis-server we started; `restart()` keeps its port and files (AOF)."""

    port: int
    folder: Path
    appendonly: bool = True
    fsync: str = "always"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                redis_server.find_binary(),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--appendfsync",
                self.fsync,
                "--logfile",
                str(self.folder / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except (redis.ConnectionError, redis.BusyLoadingError):
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


def start_redis(folder: Path, appendonly: bool = True, fsync: str = "always") -> RedisProc:
    rp = RedisProc(redis_server.free_port(), folder, appendonly, fsync)
    rp.start()
    return rp


@pytest.fixture(scope="session")
def redis_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProc]:
    rp = start_redis(tmp_path_factory.mktemp("redis"))
    yield rp
    rp.kill()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProc]:
    """A private server a test may kill and restart."""
    rp = start_redis(tmp_path / "own-redis")
    yield rp
    rp.kill()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No LOGS_* from the developer's shell, no ./logs.toml discovery."""
    for key in list(os.environ):
        if key.startswith("LOGS_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def stream() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def env(
    redis_proc: RedisProc, stream: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """LOGS_* settings pointing at the session Redis, a fresh stream and a temp data dir; set
    in this process (for CliRunner) and returned for subprocesses."""
    values = {
        "LOGS_REDIS_URL": redis_proc.url,
        "LOGS_STREAM": stream,
        "LOGS_DATA_DIR": str(data_dir),
        "LOGS_BATCH_AGE": "0.5",
        "LOGS_CLAIM_IDLE": "2",
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


def run_logs(
    args: list[str], env: dict[str, str], timeout: float = 120, input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """`logs ARGS` in a real subprocess, as a user runs it."""
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("LOGS_")}, **env}
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args],
        env=full,
        capture_output=True,
        timeout=timeout,
        input=input,
    )


def spawn_logs(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("LOGS_")}, **env}
    return subprocess.Popen(
        [sys.executable, "-m", "ingest", *args],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def lake_rows(data_dir: Path, sql: str = "select * from t") -> list[tuple[object, ...]]:
    """Run `sql` over the committed files of the logs table (as table `t`), with raw DuckDB."""
    import duckdb
    from deltalake import DeltaTable

    files = DeltaTable(str(data_dir / "lake" / "logs")).file_uris()
    con = duckdb.connect()
    if not files:
        return []
    con.execute(
        f"create view t as select * from read_parquet({files!r}, hive_partitioning=true, "
        "hive_types={'date': varchar, 'hour': varchar})"
    )
    return con.execute(sql).fetchall()


def lake_ids(data_dir: Path) -> list[str]:
    return [r[0] for r in lake_rows(data_dir, "select stream_id from t")]


def dlq_entries(client: redis.Redis, stream: str) -> list[dict[bytes, bytes]]:
    return [fields for _, fields in client.xrange(f"{stream}:dlq")]


@pytest.fixture(scope="module")
def receiver(redis_proc: RedisProc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real `logs receive` shared by one test module (tests/receiver.py); its stream is
    emptied before each test that uses it."""
    from tests import receiver as receiver_lib

    with receiver_lib.running(receiver_lib.module_env(redis_proc, tmp_path_factory)) as r:
        yield r


@pytest.fixture(autouse=True)
def _fresh_receiver_stream(request: pytest.FixtureRequest, redis_proc: RedisProc) -> None:
    if "receiver" in request.fixturenames:
        redis_proc.client().delete(request.getfixturevalue("receiver").stream)
