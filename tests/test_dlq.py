"""`logs dlq`: dead letters listed with their reasons, shown whole, replayed into the stream
(deleted only once re-added; into the table exactly once) and purged by age."""

from __future__ import annotations

import json
import time
from pathlib import Path

import redis

from ingest.redis_server import free_port
from tests.helpers import RedisProc, bookmark, dlq_entries, lake_rows, run_logs


def letters(env: dict[str, str]) -> list[dict]:  # type: ignore[type-arg]
    res = run_logs(["dlq", "list", "-F", "jsonl"], env)
    assert res.returncode == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines()]


def test_a_malformed_entry_is_listed_with_its_reason(
    env: dict[str, str], redis_proc: RedisProc, stream: str
) -> None:
    client = redis_proc.client()
    client.xadd(stream, {"message": "fine"})
    bad = client.xadd(stream, {"msg": b"\xff\xfe broken", "reason": "mine"}).decode()
    assert run_logs(["ingest", "--drain"], env).returncode == 0

    [letter] = letters(env)
    assert letter["stream_id"] == bad
    assert letter["reason"] == "invalid UTF-8 at byte 0"
    # The original `reason` field clashed with the letter's: it comes back under its own name.
    assert letter["fields"] == {"msg": "\\xff\\xfe broken", "reason": "mine"}
    assert letter["failed_at"].endswith("Z")

    table = run_logs(["dlq", "list"], env)
    assert table.returncode == 0
    header, row = table.stdout.decode().splitlines()
    assert header.split() == ["ID", "FAILED", "AT", "ORIGINAL", "ID", "REASON", "FIELDS"]
    assert letter["id"] in row and bad in row and "invalid UTF-8 at byte 0" in row
    assert run_logs(["dlq"], env).stdout == table.stdout  # `logs dlq` alone lists

    shown = run_logs(["dlq", "show", letter["id"], "-F", "json"], env)
    assert shown.returncode == 0
    assert json.loads(shown.stdout) == letter
    text = run_logs(["dlq", "show", letter["id"]], env).stdout.decode()
    assert f"stream_id: {bad}" in text and "  reason: mine" in text


def test_replay_of_an_entry_that_fails_again_returns_it_to_the_dlq(
    env: dict[str, str], redis_proc: RedisProc, stream: str
) -> None:
    client = redis_proc.client()
    client.xadd(stream, {"data": '{"a":' * 80 + "1" + "}" * 80})
    assert run_logs(["ingest", "--drain"], env).returncode == 0
    [first] = letters(env)

    res = run_logs(["dlq", "replay", first["id"]], env)
    assert res.returncode == 0, res.stderr
    letter_id, new_id = res.stdout.decode().split()
    assert letter_id == first["id"]
    assert b"replayed 1 dead letters" in res.stderr
    assert letters(env) == []  # removed once re-added
    assert [i.decode() for i, _ in client.xrange(stream)][-1:] == [new_id]
    assert client.xlen(stream) == 1 + bookmark(client)

    assert run_logs(["ingest", "--drain"], env).returncode == 0
    [again] = letters(env)
    assert again["stream_id"] == new_id
    assert again["reason"] == first["reason"] == "JSON nested deeper than 64 levels"
    assert again["fields"] == first["fields"]


def test_replay_of_a_good_letter_lands_in_the_table_exactly_once(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    client = redis_proc.client()
    # As if ingest had dead-lettered it under a config that is fixed now.
    letter_id = client.xadd(
        f"{stream}:dlq",
        {
            "reason": "test",
            "stream_id": "1700000000000-0",
            "failed_at": "1700000000001",
            "ts": "2026-11-20T10:00:00Z",
            "level": "warn",
            "service": "pay",
            "message": "replay me",
            "orig:stream_id": "kept",
        },
    ).decode()

    res = run_logs(["dlq", "replay", letter_id], env)
    assert res.returncode == 0, res.stderr
    _, new_id = res.stdout.decode().split()
    # A second replay of the same letter finds nothing: no double entry.
    again = run_logs(["dlq", "replay", letter_id], env)
    assert again.returncode == 2
    assert f"not in {stream}:dlq: {letter_id}".encode() in again.stderr
    assert client.xlen(stream) == 1

    assert run_logs(["ingest", "--drain"], env).returncode == 0
    assert run_logs(["ingest", "--drain"], env).returncode == 0
    rows = lake_rows(
        data_dir,
        "select stream_id, level, service, message, attrs from t where message = 'replay me'",
    )
    assert len(rows) == 1
    sid, level, service, _, attrs = rows[0]
    assert (sid, level, service) == (new_id, "WARN", "pay")
    assert json.loads(attrs) == {"stream_id": "kept"}
    assert dlq_entries(client, stream) == []


def test_replay_all_moves_every_letter_back(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    client = redis_proc.client()
    for i in range(1200):  # more than one pipeline chunk
        client.xadd(
            f"{stream}:dlq",
            {"reason": "r", "stream_id": f"{i + 1}-0", "failed_at": "1", "message": f"m{i}"},
        )
    client.xadd(f"{stream}:dlq", {"reason": "payload lost", "stream_id": "9-9", "failed_at": "1"})
    res = run_logs(["dlq", "replay", "--all"], env)
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.splitlines()) == 1200
    assert b"kept 1 letters whose payload was lost" in res.stderr
    assert client.xlen(f"{stream}:dlq") == 1
    assert [f[b"message"] for _, f in client.xrange(stream)] == [
        f"m{i}".encode() for i in range(1200)
    ]
    assert run_logs(["ingest", "--drain"], env).returncode == 0
    assert lake_rows(data_dir, "select count(*), count(distinct message) from t") == [(1200, 1200)]


def test_a_failing_replay_keeps_the_letter(
    env: dict[str, str], redis_proc: RedisProc, stream: str
) -> None:
    client = redis_proc.client()
    letter_id = client.xadd(
        f"{stream}:dlq", {"reason": "r", "stream_id": "1-0", "failed_at": "1", "message": "m"}
    )
    client.set(stream, "not a stream")
    res = run_logs(["dlq", "replay", "--all"], env)
    assert res.returncode == 2
    assert b"not a stream" in res.stderr
    assert [i for i, _ in client.xrange(f"{stream}:dlq")] == [letter_id]


def test_purge_deletes_only_letters_older_than_the_cutoff(
    env: dict[str, str], redis_proc: RedisProc, stream: str
) -> None:
    client = redis_proc.client()
    now_ms = int(time.time() * 1000)
    day = 86_400_000
    old = [
        client.xadd(f"{stream}:dlq", {"reason": "old"}, id=f"{now_ms - (10 - i) * day}-0")
        for i in range(3)
    ]  # 10, 9 and 8 days ago
    recent = [client.xadd(f"{stream}:dlq", {"reason": "new"}) for _ in range(2)]
    assert old and recent
    res = run_logs(["dlq", "purge", "--before", "7d"], env)
    assert res.returncode == 0, res.stderr
    assert res.stderr.startswith(b"purged 3 dead letters")
    assert [i for i, _ in client.xrange(f"{stream}:dlq")] == recent
    iso = run_logs(["dlq", "purge", "--before", "2000-01-01"], env)
    assert iso.returncode == 0 and iso.stderr.startswith(b"purged 0 dead letters")


def test_usage_errors_and_unreachable_redis(
    env: dict[str, str], redis_proc: RedisProc, stream: str
) -> None:
    for args, message in (
        (["dlq", "replay"], b"give dead letter ids or --all"),
        (["dlq", "replay", "--all", "1-0"], b"give dead letter ids or --all"),
        (["dlq", "show", "nope"], b'"nope" is not a stream id'),
        (["dlq", "show", "1-0"], b"no dead letter 1-0"),
        (["dlq", "purge", "--before", "soon"], b'--before "soon"'),
    ):
        res = run_logs(args, env)
        assert res.returncode == 2, (args, res.stderr)
        assert res.stderr.startswith(b"logs: error: ") and message in res.stderr, res.stderr
    missing = run_logs(
        ["dlq", "list"], {**env, "LOGS_REDIS_URL": f"redis://127.0.0.1:{free_port()}"}
    )
    assert missing.returncode == 3
    empty = run_logs(["dlq", "list"], env)
    assert empty.returncode == 0 and empty.stdout == b""
    assert b"no dead letters" in empty.stderr


def test_list_shows_the_newest_and_says_how_many_more(
    env: dict[str, str], redis_proc: RedisProc, stream: str
) -> None:
    client: redis.Redis = redis_proc.client()
    ids = [
        client.xadd(
            f"{stream}:dlq", {"reason": f"r{i}", "stream_id": f"{i}-0", "failed_at": "1", "k": "v"}
        ).decode()
        for i in range(8)
    ]
    res = run_logs(["dlq", "list", "-n", "3", "-F", "json"], env)
    assert [d["id"] for d in json.loads(res.stdout)] == ids[-3:]
    assert b"3 newest of 8 dead letters shown" in res.stderr
