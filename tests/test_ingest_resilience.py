"""Ingest under trouble it cannot prevent: a lake that refuses commits, a quiet stream after a
burst, Redis absent at start-up. What it says must be true after the fact, and nothing is lost."""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path

from ingest.redis_server import free_port
from tests.helpers import RedisProc, bookmark, lake_ids, run_logs, wait_until


def spawn_with_log(
    args: list[str], env: dict[str, str], log: Path, fsize: int | None = None
) -> subprocess.Popen[bytes]:
    """`logs ARGS` with stderr into `log` (read while it runs); `fsize` caps the size of any
    file it writes (RLIMIT_FSIZE: writes beyond it fail with EFBIG, as on a full disk)."""

    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, resource.RLIM_INFINITY))

    full = {**{k: v for k, v in os.environ.items() if not k.startswith("LOGS_")}, **env}
    return subprocess.Popen(
        [sys.executable, "-m", "ingest", *args],
        env=full,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        preexec_fn=limit,
    )


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(60)


def test_commit_failures_are_told_after_the_fact_with_the_batch_rows(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path, tmp_path: Path
) -> None:
    assert run_logs(["gen", "-n", "1"], env).returncode == 0
    assert run_logs(["ingest", "--drain"], env).returncode == 0  # the table exists
    first = lake_ids(data_dir)
    assert run_logs(["gen", "-n", "3000", "--hours", "1"], env).returncode == 0
    expected = [i.decode() for i, _ in redis_proc.client().xrange(stream)]
    expected = [i for i in expected if i not in first]  # Redis 6 keeps a bookmark
    assert len(expected) == 3000
    log = tmp_path / "ingest.log"
    # Files over 2 KB cannot be written: every commit fails like on a full disk, for real.
    proc = spawn_with_log(["ingest"], env, log, fsize=2048)
    try:
        failed = re.compile(r"commit of (\d+) rows failed \((.*)\); .* retrying in [\d.]+ s")
        assert wait_until(lambda: len(failed.findall(log.read_text())) >= 2, 60), log.read_text()
        assert lake_ids(data_dir) == first
        assert redis_proc.client().xpending(stream, "lake")["pending"] == 3000
        # Room again: the retry lands and says so once it has.
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (-1, -1))
        assert wait_until(lambda: "commit succeeded after" in log.read_text(), 60)
        assert wait_until(lambda: redis_proc.client().xpending(stream, "lake")["pending"] == 0)
    finally:
        code = stop(proc)
    text = log.read_text()
    assert code == 0, text
    rows = {int(n) for n, _ in failed.findall(text)}
    assert rows == {3000}, text  # the batch's real rows, not counted twice
    assert "File too large" in failed.findall(text)[0][1]
    lines = text.splitlines()
    done = next(i for i, line in enumerate(lines) if "commit succeeded after" in line)
    assert all("failed" not in line for line in lines[done + 1 :]), text
    assert re.search(r"commit succeeded after \d+ failed attempts .*: 3000 rows committed", text)
    assert "succeed again" not in text
    assert sorted(lake_ids(data_dir)) == sorted(first + expected)


def test_a_quiet_stream_is_trimmed_after_its_last_acknowledgement(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path, tmp_path: Path
) -> None:
    client = redis_proc.client()
    proc = spawn_with_log(["ingest"], env, tmp_path / "ingest.log")
    try:
        # One burst, then nothing: no later flush will come along to trim it.
        assert run_logs(["gen", "-n", "20000", "--hours", "1"], env).returncode == 0
        assert wait_until(lambda: len(set(lake_ids(data_dir))) == 20000, 60)
        assert wait_until(lambda: client.xpending(stream, "lake")["pending"] == 0)
        assert wait_until(lambda: client.xlen(stream) == bookmark(client), 10), client.xlen(stream)
    finally:
        assert stop(proc) == 0


def test_ingest_started_before_redis_waits_for_it_and_drain_does_not(
    env: dict[str, str], stream: str, data_dir: Path, tmp_path: Path
) -> None:
    later = RedisProc(free_port(), tmp_path / "later-redis")
    env = {**env, "LOGS_REDIS_URL": later.url}
    drained = run_logs(["ingest", "--drain"], env)
    assert drained.returncode == 3
    assert drained.stderr.decode().startswith(f"logs: error: cannot reach Redis at {later.url}")
    log = tmp_path / "ingest.log"
    proc = spawn_with_log(["ingest"], env, log)
    try:
        assert wait_until(lambda: "waiting for it" in log.read_text(), 30), log.read_text()
        assert proc.poll() is None  # still there, waiting
        later.start()
        try:
            assert run_logs(["gen", "-n", "500"], env).returncode == 0
            assert wait_until(lambda: len(set(lake_ids(data_dir))) == 500, 60), log.read_text()
        finally:
            code = stop(proc)
            later.kill()
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert code == 0, text
    assert "redis reachable again" in text
    assert "Traceback" not in text


def test_huge_entries_become_whole_dead_letters_and_the_rest_lands(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    client = redis_proc.client()
    huge = [bytes([65 + i]) * (8 * 1024 * 1024 + i) for i in range(3)]  # over max_entry_bytes
    ids = []
    for i, payload in enumerate(huge):
        assert run_logs(["gen", "-n", "1000"], env).returncode == 0
        ids.append(client.xadd(stream, {"message": payload, "n": str(i)}))
    assert run_logs(["gen", "-n", "1000"], env).returncode == 0
    res = run_logs(["ingest", "--drain"], env)
    assert res.returncode == 0, res.stderr
    assert len(set(lake_ids(data_dir))) == 4000
    letters = client.xrange(f"{stream}:dlq")
    assert [fields[b"stream_id"] for _, fields in letters] == ids
    for (_, fields), payload in zip(letters, huge, strict=True):
        assert fields[b"message"] == payload  # whole, not cut
        assert fields[b"reason"].startswith(b"entry too large")
    assert client.xpending(stream, "lake")["pending"] == 0
