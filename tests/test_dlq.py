"""`logs dlq`: dead letters listed with their reasons, shown whole, replayed into the stream
(deleted only once re-added; into the table exactly once) and purged by age."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
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
    # Named as the dead_letters view names its columns (`logs sql "select * from dead_letters"`).
    assert header.split() == ["DLQ", "ID", "STREAM", "ID", "FAILED", "AT", "REASON", "FIELDS"]
    view = run_logs(["sql", "select * from dead_letters", "-F", "jsonl"], env)
    [in_view] = [json.loads(line) for line in view.stdout.splitlines()]
    assert list(letter) == list(in_view) == ["dlq_id", "stream_id", "failed_at", "reason", "fields"]
    assert (letter["dlq_id"], letter["stream_id"]) == (in_view["dlq_id"], in_view["stream_id"])
    assert letter["dlq_id"] in row and bad in row and "invalid UTF-8 at byte 0" in row
    assert run_logs(["dlq"], env).stdout == table.stdout  # `logs dlq` alone lists

    shown = run_logs(["dlq", "show", letter["dlq_id"], "-F", "json"], env)
    assert shown.returncode == 0
    assert json.loads(shown.stdout) == letter
    text = run_logs(["dlq", "show", letter["dlq_id"]], env).stdout.decode()
    assert f"stream_id: {bad}" in text and "  reason: mine" in text


def test_replay_of_an_entry_that_fails_again_returns_it_to_the_dlq(
    env: dict[str, str], redis_proc: RedisProc, stream: str
) -> None:
    client = redis_proc.client()
    client.xadd(stream, {"data": '{"a":' * 80 + "1" + "}" * 80})
    assert run_logs(["ingest", "--drain"], env).returncode == 0
    [first] = letters(env)

    res = run_logs(["dlq", "replay", first["dlq_id"]], env)
    assert res.returncode == 0, res.stderr
    letter_id, new_id = res.stdout.decode().split()
    assert letter_id == first["dlq_id"]
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
        (["dlq", "list", "-n", "0"], b"--count must be at least 1, got 0"),
        (["dlq", "show", "1-0"], b"no dead letter 1-0"),
        (["dlq", "purge", "--before", "soon"], b'--before "soon"'),
    ):
        res = run_logs(args, env)
        assert res.returncode == 2, (args, res.stderr)
        assert res.stderr.startswith(b"logs: error: ") and message in res.stderr, res.stderr
    down = {**env, "LOGS_REDIS_URL": f"redis://127.0.0.1:{free_port()}"}
    missing = run_logs(["dlq", "list"], down)
    assert missing.returncode == 3
    typo = run_logs(["dlq", "show", ""], down)  # told before Redis is asked
    assert typo.returncode == 2 and typo.stderr.startswith(b'logs: error: "" is not a stream id')
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
    assert [d["dlq_id"] for d in json.loads(res.stdout)] == ids[-3:]
    assert b"3 newest of 8 dead letters shown" in res.stderr


def test_purge_cuts_by_failed_at_not_by_the_letter_id(
    env: dict[str, str], redis_proc: RedisProc, stream: str
) -> None:
    client = redis_proc.client()
    dlq = f"{stream}:dlq"
    cutoff = (datetime.now(UTC) - timedelta(days=1)).replace(second=0, microsecond=0)
    t = int(cutoff.timestamp() * 1000)
    keep: list[bytes] = []
    doomed: list[bytes] = []

    def letter(id_ms: int, failed_at: str | None, message: str = "m") -> None:
        fields = {"reason": "r", "stream_id": "1-0", "message": message}
        if failed_at is not None:
            fields["failed_at"] = failed_at
        letter_id = client.xadd(dlq, fields, id=f"{id_ms}-{client.xlen(dlq)}")
        failed = int(failed_at) if failed_at and failed_at.isdigit() else id_ms
        (doomed if failed < t else keep).append(letter_id)

    # Ids in order, failure times not: interleaved around the cutoff over many purge pages;
    # a run of oversized letters (pages shrink to a few letters, then grow back) among them.
    for i in range(1_234):
        message = "x" * (5 << 20) if 500 <= i < 506 else "m"
        letter(t - 60_000 + i, str(t - 30_000 + (i * 7_919) % 60_000), message)
    letter(t - 5_000, str(t + 5))  # added "before" by Redis's clock, failed after: kept
    letter(t + 90_000, str(t - 1))  # added after the cutoff, failed before it: purged
    letter(t + 90_001, None)  # no failed_at: its id says when it was added
    letter(t + 90_002, "soon")
    assert len(doomed) > 600 and len(keep) > 600

    res = run_logs(["dlq", "purge", "--before", cutoff.strftime("%Y-%m-%dT%H:%MZ")], env)
    assert res.returncode == 0, res.stderr
    assert res.stderr.startswith(
        f"purged {len(doomed)} dead letters that failed before ".encode()
    ), res.stderr
    assert f"({len(doomed) + len(keep):,} looked at)".encode() in res.stderr
    assert [i for i, _ in client.xrange(dlq)] == keep
