"""`logs tail`: newest entries, filters, formats, colour, and a follow that survives a Redis
restart without taking anything from the consumer group."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import IO

import pytest

from tests.helpers import RedisProc, run_logs, spawn_logs

ENTRIES = [
    {"ts": "2026-11-20T10:00:00.123Z", "level": "info", "service": "api", "message": "GET /a 200"},
    {"ts": "2026-11-20T10:00:01Z", "level": "warning", "service": "api", "message": "slow query"},
    {
        "ts": "2026-11-20T10:00:02Z",
        "level": "err",
        "service": "pay",
        "message": "card declined",
        "trace_id": "t-1",
    },
    {
        "ts": "2026-11-20T10:00:03Z",
        "level": "debug",
        "service": "pay",
        "message": "retrying",
        "user": "Alice",
    },
    {"ts": "2026-11-20T10:00:04Z", "level": "crit", "service": "api", "message": "out of memory"},
]


def fill(client, stream: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [client.xadd(stream, e).decode() for e in ENTRIES]


def lines(res: subprocess.CompletedProcess[bytes]) -> list[str]:
    assert res.returncode == 0, res.stderr
    return res.stdout.decode().splitlines()


def test_newest_entries_oldest_first_decoded_like_ingest(
    env: dict[str, str], redis_proc: RedisProc, stream: str
) -> None:
    fill(redis_proc.client(), stream)
    out = lines(run_logs(["tail", "-n", "3"], env))
    assert out == [
        "2026-11-20T10:00:02.000Z ERROR pay  card declined  trace=t-1",
        "2026-11-20T10:00:03.000Z DEBUG pay  retrying",
        "2026-11-20T10:00:04.000Z FATAL api  out of memory",
    ]
    assert len(lines(run_logs(["tail"], env))) == 5  # fewer than the default 20


@pytest.mark.parametrize(
    ("args", "messages"),
    [
        (["--level", "WARN+"], ["slow query", "card declined", "out of memory"]),
        (["--level", "error"], ["card declined"]),
        (["--level", "debug,fatal"], ["retrying", "out of memory"]),
        (["--service", "pay"], ["card declined", "retrying"]),
        (["--service", "pay", "--level", "ERROR+"], ["card declined"]),
        (["--grep", "ALICE"], ["retrying"]),  # attributes too, any case
        (["--grep", "query"], ["slow query"]),
        (["--level", "WARN+", "-n", "2"], ["card declined", "out of memory"]),
    ],
)
def test_filters(
    args: list[str], messages: list[str], env: dict[str, str], redis_proc: RedisProc, stream: str
) -> None:
    fill(redis_proc.client(), stream)
    rows = [json.loads(line) for line in lines(run_logs(["tail", "-F", "jsonl", *args], env))]
    assert [r["message"] for r in rows] == messages


def test_jsonl_has_the_row_columns(env: dict[str, str], redis_proc: RedisProc, stream: str) -> None:
    ids = fill(redis_proc.client(), stream)
    rows = [json.loads(line) for line in lines(run_logs(["tail", "-F", "jsonl"], env))]
    assert [r["stream_id"] for r in rows] == ids
    assert rows[3] == {
        "stream_id": ids[3],
        "ts": "2026-11-20T10:00:03Z",
        "level": "DEBUG",
        "service": "pay",
        "host": "unknown",
        "message": "retrying",
        "trace_id": None,
        "attrs": {"user": "Alice"},
    }
    assert rows[0]["ts"] == "2026-11-20T10:00:00.123000Z"


def test_undecodable_entries_show_unfiltered_only(
    env: dict[str, str], redis_proc: RedisProc, stream: str
) -> None:
    bad = redis_proc.client().xadd(stream, {"msg": b"\xff\xfe"}).decode()
    out = lines(run_logs(["tail"], env))
    assert len(out) == 1 and bad in out[0] and "invalid UTF-8" in out[0]
    assert json.loads(lines(run_logs(["tail", "-F", "jsonl"], env))[0]) == {
        "stream_id": bad,
        "error": "invalid UTF-8 at byte 0",
    }
    assert lines(run_logs(["tail", "--level", "INFO+"], env)) == []


def test_a_bad_level_is_a_usage_error(env: dict[str, str]) -> None:
    res = run_logs(["tail", "--level", "LOUD+"], env)
    assert res.returncode == 2
    assert res.stderr.startswith(b'logs: error: --level "LOUD+"')


def test_unreachable_redis_is_exit_3(env: dict[str, str]) -> None:
    from ingest.redis_server import free_port

    res = run_logs(["tail", "-f"], {**env, "LOGS_REDIS_URL": f"redis://127.0.0.1:{free_port()}"})
    assert res.returncode == 3
    assert res.stderr.startswith(b"logs: error: cannot reach Redis")


def _reader(stream: IO[bytes], into: queue.Queue[str]) -> None:
    for raw in stream:
        into.put(raw.decode().rstrip("\n"))


def _collect(q: queue.Queue[str], want: int, got: list[str], timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            got.append(q.get(timeout=0.2))
    return got


def test_follow_prints_new_entries_in_order_across_a_redis_restart(
    env: dict[str, str], own_redis: RedisProc, stream: str
) -> None:
    client = own_redis.client()
    client.xadd(stream, {"message": "before tail started"})
    proc = spawn_logs(
        ["tail", "-f", "-n", "0", "-F", "jsonl"], {**env, "LOGS_REDIS_URL": own_redis.url}
    )
    out: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=_reader, args=(proc.stdout, out), daemon=True).start()
    try:
        # tail -f started after the first entry: it must print only what comes next. Wait until
        # it is blocked in XREAD (a client without a consumer group) before adding.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            b"cmd=xread" in line for line in client.execute_command("CLIENT", "LIST").splitlines()
        ):
            time.sleep(0.05)
        added = [client.xadd(stream, {"message": f"first {i}"}).decode() for i in range(5)]
        got = _collect(out, 5, [])
        assert [json.loads(line)["stream_id"] for line in got] == added

        own_redis.restart()  # AOF with fsync always: the entries survive
        client = own_redis.client()
        added += [client.xadd(stream, {"message": f"after {i}"}).decode() for i in range(5)]
        got = _collect(out, 10, got)
        assert [json.loads(line)["stream_id"] for line in got] == added
        assert [json.loads(line)["message"] for line in got][5:] == [f"after {i}" for i in range(5)]
        # Tail reads the stream directly: no group, no consumer, nothing taken from ingest.
        assert client.xinfo_groups(stream) == []
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
    err = proc.stderr.read() if proc.stderr else b""
    assert code == 130
    assert b"redis unreachable" in err and b"reconnected" in err
    assert b"Traceback" not in err
    assert out.empty()  # nothing printed twice


def test_colour_on_a_terminal_unless_no_color(
    env: dict[str, str], redis_proc: RedisProc, stream: str
) -> None:
    fill(redis_proc.client(), stream)

    def environ(extra: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | env | extra

    def on_tty(extra: dict[str, str]) -> str:
        master, slave = pty.openpty()
        full = environ(extra)
        proc = subprocess.Popen(
            [sys.executable, "-m", "ingest", "tail", "-n", "1"],
            env=full,
            stdout=slave,
            stderr=subprocess.PIPE,
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(30) == 0
        os.close(master)
        return b"".join(chunks).decode()

    assert "\x1b[1;31mFATAL" in on_tty({})
    plain = on_tty({"NO_COLOR": "1"})
    assert "\x1b[" not in plain and "FATAL api  out of memory" in plain
    # Piped (not a terminal): never colour, even without NO_COLOR.
    piped = subprocess.run(
        [sys.executable, "-m", "ingest", "tail", "-n", "1"],
        env=environ({"TERM": "xterm"}),
        capture_output=True,
        timeout=60,
    )
    assert piped.returncode == 0 and b"FATAL" in piped.stdout and b"\x1b[" not in piped.stdout
