"""Fixtures: a real redis-server on loopback (started and killed by PID here), a fresh stream
per test, a temporary data dir, and no `LOGS_*` environment or config file leaking in."""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import azurite, s3server
from tests.helpers import RedisProc, start_redis


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


@pytest.fixture(autouse=True)
def _heap_unfrozen() -> Iterator[None]:
    """A consumer run in this process freezes the heap (consume/consumer.py `_pause_gc`: the
    start-up heap is left out of collections) and gives the collector back without
    unfreezing, which is harmless in `logs ingest` but not here: every object alive at that
    moment, DuckDB's type objects among them, would never be collected again, and at exit the
    DuckDB extension reports them ("nanobind: leaked 27 instances!")."""
    yield
    if gc.get_freeze_count():
        gc.unfreeze()


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


@pytest.fixture(scope="session")
def s3_server() -> Iterator[s3server.S3Server]:
    """A moto S3 server (its own process, a free loopback port) for the whole session."""
    server = s3server.start()
    yield server
    server.kill()


@pytest.fixture
def s3_env(s3_server: s3server.S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh bucket: LOGS_LAKE_URI=s3://<bucket>/lake and the AWS_* variables, set in this
    process and returned for subprocesses."""
    bucket = s3_server.new_bucket()
    values = {**s3_server.env(), "LOGS_LAKE_URI": f"s3://{bucket}/lake"}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture(scope="session")
def azurite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[azurite.Azurite]:
    """An Azurite blob server (its own process, a loopback port) for the whole session; the
    tests that use it are skipped when Azurite can be neither found nor installed
    (tests/azurite.py), and fail then under TEST_AZURITE=required."""
    try:
        azurite.binary()
    except azurite.Unavailable as exc:
        if os.environ.get("TEST_AZURITE") == "required":
            pytest.fail(f"TEST_AZURITE=required: {exc}")
        pytest.skip(str(exc))
    server = azurite.start(tmp_path_factory.mktemp("azurite"))
    yield server
    server.kill()


@pytest.fixture
def az_env(azurite_server: azurite.Azurite, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh container: LOGS_LAKE_URI=az://<container>/lake and the AZURE_* variables, set
    in this process and returned for subprocesses."""
    container = azurite_server.new_container()
    values = {**azurite_server.env(), "LOGS_LAKE_URI": f"az://{container}/lake"}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture(params=["dir", "s3"])
def lake_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Run a test against a lake in a directory and against one in a bucket: {} or s3_env."""
    if request.param == "dir":
        return {}
    return request.getfixturevalue("s3_env")  # type: ignore[no-any-return]
