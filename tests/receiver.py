"""A real `logs receive` for tests: a subprocess on free loopback ports, writing to the test's
stream in the session Redis, stopped by PID with SIGTERM (and checked to exit 0, no traceback).
Entries are read back from the stream and decoded with the ingest's own decoder."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
import redis

from ingest.records import Row, decode
from ingest.redis_server import free_port
from tests.helpers import RedisProc, spawn_logs

TOKEN = "t0ken-for-tests"


@dataclass
class Receiver:
    proc: subprocess.Popen[bytes]
    ports: dict[str, int]
    stream: str
    stderr: bytes = b""
    stopped: bool = field(default=False)

    def url(self, protocol: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[protocol]}{path}"

    def stop(self) -> int:
        """SIGTERM, then the exit code; stderr kept for assertions."""
        if not self.stopped:
            self.proc.send_signal(signal.SIGTERM)
            _, self.stderr = self.proc.communicate(timeout=60)
            self.stopped = True
        return self.proc.returncode


@contextmanager
def running(env: dict[str, str], **settings: str) -> Iterator[Receiver]:
    ports = {name: free_port() for name in ("otlp", "elastic", "hec", "loki")}
    full = {
        **env,
        "LOGS_RECEIVE_TOKENS": TOKEN,
        "LOGS_RECEIVE_HOST": "127.0.0.1",
        **{f"LOGS_RECEIVE_{name.upper()}_PORT": str(port) for name, port in ports.items()},
        **settings,
    }
    proc = spawn_logs(["receive"], full)
    receiver = Receiver(proc, ports, env["LOGS_STREAM"])
    try:
        wait_ready(receiver)
        yield receiver
    finally:
        code = receiver.stop()
        text = receiver.stderr.decode(errors="replace")
        assert "Traceback" not in text, text
        assert TOKEN not in text, "a token was logged"
        assert code == 0, text


def wait_ready(receiver: Receiver, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if receiver.proc.poll() is not None:
            _, err = receiver.proc.communicate()
            raise RuntimeError(f"logs receive exited: {err.decode(errors='replace')}")
        try:
            with urllib.request.urlopen(receiver.url("otlp", "/metrics"), timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.05)
    raise RuntimeError("logs receive did not start")


def post(
    url: str,
    body: bytes,
    headers: dict[str, str] | None = None,
    method: str = "POST",
    token: str | None = TOKEN,
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request, errors included."""
    all_headers = dict(headers or {})
    if token is not None:
        all_headers.setdefault("Authorization", f"Bearer {token}")
    request = urllib.request.Request(url, data=body, headers=all_headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as res:
            return res.status, {k.lower(): v for k, v in res.headers.items()}, res.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def entries(client: redis.Redis, stream: str) -> list[tuple[str, list[bytes]]]:
    """Raw entries as XREADGROUP returns them: (id, [k1, v1, ...])."""
    out = []
    for stream_id, fields in client.xrange(stream):
        flat: list[bytes] = []
        for key, value in fields.items():
            flat += [key, value]
        out.append((stream_id.decode(), flat))
    return out


def rows(client: redis.Redis, stream: str) -> list[Row]:
    """Every entry of the stream, decoded by the ingest's per-entry decoder."""
    return [decode(stream_id, fields) for stream_id, fields in entries(client, stream)]


def attrs(row: Row) -> dict[str, Any]:
    return orjson.loads(row.attrs)  # type: ignore[no-any-return]


def module_env(redis_proc: RedisProc, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """LOGS_* for a receiver shared by one test module (a stream of its own)."""
    return {
        "LOGS_REDIS_URL": redis_proc.url,
        "LOGS_STREAM": f"r-{uuid.uuid4().hex[:10]}",
        "LOGS_DATA_DIR": str(tmp_path_factory.mktemp("receive-data")),
    }
