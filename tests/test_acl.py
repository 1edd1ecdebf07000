"""Every command under a Redis user holding only what README's "Redis permissions" table gives
it (the rules are read from the README, so the table stays true), and ingest when Redis refuses
one of its chores or its own path."""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.redis_server import free_port
from tests.helpers import ROOT, RedisProc, lake_ids, run_logs, spawn_logs, start_redis

PASSWORD = "acl-s3cret"


def readme_rules() -> dict[str, str]:
    """`command -> ACL rules` from the README's permissions table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Redis permissions", 1)[1].split("\n### ", 1)[0]
    rules = {}
    for row in re.findall(r"^\| (.+?) \| `(.+?)`", section, flags=re.M):
        names, rule = row
        for name in re.findall(r"`([^`]+)`", names):
            rules[name] = rule.replace("\\|", "|")
    return rules


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[RedisProc]:
    rp = start_redis(tmp_path / "acl-redis")
    yield rp
    rp.kill()


def user(rp: RedisProc, name: str, rules: str) -> str:
    """A user with exactly `rules`; returns its URL."""
    rp.client().execute_command(
        "ACL", "SETUSER", name, "reset", "on", f">{PASSWORD}", *rules.split()
    )
    return f"redis://{name}:{PASSWORD}@127.0.0.1:{rp.port}/0"


def as_user(env: dict[str, str], url: str) -> dict[str, str]:
    return {**env, "LOGS_REDIS_URL": url, "LOGS_STREAM": "logs"}


def test_the_readme_names_a_user_for_every_command() -> None:
    assert set(readme_rules()) >= {
        "send", "gen", "receive", "ingest", "status", "tail", "dlq", "sql --live", "schedule",
    }  # fmt: skip


def test_every_command_works_under_its_readme_user(
    acl_redis: RedisProc, env: dict[str, str], data_dir: Path
) -> None:
    rules = readme_rules()
    urls = {name: user(acl_redis, name.replace(" ", ""), rule) for name, rule in rules.items()}
    admin = acl_redis.client()

    def ok(name: str, args: list[str], stdin: bytes | None = None) -> str:
        res = run_logs(args, as_user(env, urls[name]), input=stdin)
        err = res.stderr.decode()
        assert res.returncode == 0, f"{args}: {err}"
        assert "NOPERM" not in err and "skipped" not in err and PASSWORD not in err, err
        return res.stdout.decode()

    ok("gen", ["gen", "-n", "300"])
    ok("send", ["send"], b"plain line one\nplain line two\n")
    admin.xadd("logs", {"data": '{"a":' * 80 + "1" + "}" * 80})  # a dead letter to come

    port = free_port()
    receiver = spawn_logs(
        ["receive", "--loki-port", str(port), "--otlp-port", "0", "--elastic-port", "0",
         "--hec-port", "0"],
        as_user(env, urls["receive"]),
    )  # fmt: skip
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/ingest", data=b'{"message": "over http"}\n', method="POST"
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(request, timeout=10) as res:
                    assert res.status in (200, 204)
                break
            except OSError:
                assert time.monotonic() < deadline, "receive did not start"
                time.sleep(0.2)
    finally:
        receiver.send_signal(signal.SIGTERM)
        _, err = receiver.communicate(timeout=30)
    assert receiver.returncode == 0 and b"NOPERM" not in err, err

    ok("ingest", ["ingest", "--drain"])
    assert len(set(lake_ids(data_dir))) == 303
    assert admin.xlen("logs:dlq") == 1

    # A producer trims past the group: telling the gap (and, on Redis 7, correcting the group's
    # counter) is within the ingest user's rules too.
    for i in range(50):
        admin.xadd("logs", {"message": f"capped {i}"}, maxlen=10, approximate=False)
    ok("ingest", ["ingest", "--drain"])
    assert len(set(lake_ids(data_dir))) == 313

    facts = json.loads(ok("status", ["status", "-F", "json"]))
    assert facts["gap"]["events"] == 1
    assert facts["group"]["pending"] == 0 and facts["dlq"]["length"] == 1
    ok("status", ["status"])
    admin.xadd("logs", {"message": "arriving now"})
    assert "arriving now" in ok("tail", ["tail", "-n", "3"])
    assert "1" in ok("sql --live", ["sql", "--live", "select count(*) from logs"])

    letters = ok("dlq", ["dlq", "list", "-F", "jsonl"]).splitlines()
    letter = json.loads(letters[0])
    ok("dlq", ["dlq", "replay", letter.get("dlq_id") or letter["id"]])
    ok("dlq", ["dlq", "purge", "--before", "1d"])

    scheduler = spawn_logs(["schedule"], as_user(env, urls["schedule"]))
    time.sleep(5)
    scheduler.send_signal(signal.SIGTERM)
    _, err = scheduler.communicate(timeout=60)
    assert scheduler.returncode == 0, err
    assert b"NOPERM" not in err and b"lease check failed" not in err, err
    assert admin.get("logs:scheduler:lease") is None  # held, then released


def test_a_refused_chore_is_one_warning_and_ingest_goes_on(
    acl_redis: RedisProc, env: dict[str, str], data_dir: Path
) -> None:
    no_trim = readme_rules()["ingest"].replace(" +xtrim", "")
    url = user(acl_redis, "notrim", no_trim)
    assert run_logs(["gen", "-n", "500"], as_user(env, url)).returncode == 0
    res = run_logs(["ingest", "--drain"], as_user(env, url))
    err = res.stderr.decode()
    assert res.returncode == 0, err
    refusals = [line for line in err.splitlines() if "trimming skipped" in line]
    assert len(refusals) == 1, err
    assert "WARNING" in refusals[0] and "'xtrim'" in refusals[0]
    assert len(set(lake_ids(data_dir))) == 500
    admin = acl_redis.client()
    assert admin.xpending("logs", "lake")["pending"] == 0
    assert admin.xlen("logs") == 500  # untrimmed, as told


def test_refused_dead_letters_stay_pending_and_drain_says_so(
    acl_redis: RedisProc, env: dict[str, str], data_dir: Path
) -> None:
    rule = readme_rules()["ingest"].replace(" ~logs:dlq", "")
    url = user(acl_redis, "nodlq", rule)
    admin = acl_redis.client()
    admin.xadd("logs", {"message": "fine"})
    poison = admin.xadd("logs", {"data": '{"a":' * 80 + "1" + "}" * 80})
    res = run_logs(["ingest", "--drain"], as_user(env, url))
    err = res.stderr.decode()
    assert res.returncode == 3, err
    errors = [line for line in err.splitlines() if line.startswith("logs: error:")]
    assert errors == [errors[0]] and "1 entries stay pending in group lake" in errors[0], err
    assert "dead-lettering skipped" in err
    assert len(set(lake_ids(data_dir))) == 1
    pending = admin.xpending_range("logs", "lake", "-", "+", 10)
    assert [p["message_id"] for p in pending] == [poison]
    assert admin.xlen("logs:dlq") == 0


def test_ingest_refused_its_own_reads_exits_3_on_one_line(
    acl_redis: RedisProc, env: dict[str, str]
) -> None:
    rule = readme_rules()["ingest"].replace(" +xreadgroup", "")
    url = user(acl_redis, "noread", rule)
    acl_redis.client().xadd("logs", {"message": "never read"})
    res = run_logs(["ingest", "--drain"], as_user(env, url))
    err = res.stderr.decode()
    assert res.returncode == 3, err
    lines = [line for line in err.splitlines() if line.startswith("logs: error:")]
    assert len(lines) == 1 and "'xreadgroup'" in lines[0] and "NOPERM" in lines[0], err
    assert "Traceback" not in err and PASSWORD not in err
