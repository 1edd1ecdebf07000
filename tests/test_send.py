"""`logs send` and `logs parse` as users run them: records joined from lines, read where they
are sent, flags that fill and never overwrite, encodings, time zones, your own formats."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import redis

from tests.helpers import RedisProc, lake_rows, run_logs

JAVA = """\
2026-11-23 10:00:00,123 ERROR [main] c.e.Checkout - payment failed
java.lang.IllegalStateException: card declined
\tat com.example.Checkout.pay(Checkout.java:42)
\tat com.example.Api.handle(Api.java:7)
Caused by: java.net.SocketTimeoutException: read timed out
\t... 12 more
2026-11-23 10:00:01,000 INFO [main] c.e.Checkout - next request
"""

PYTHON = """\
2026-11-23 10:00:02,000 ERROR app: unhandled
Traceback (most recent call last):
  File "/app/main.py", line 3, in <module>
    main()
ValueError: bad value

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/main.py", line 5, in <module>
KeyError: 'x'
2026-11-23 10:00:03,000 WARN app: after
"""


def entries(client: redis.Redis, stream: str) -> list[dict[str, object]]:
    """The stream's entries as documents (what `logs send` XADDed)."""
    out = []
    for _, fields in client.xrange(stream):
        ((key, value),) = fields.items()
        out.append(json.loads(value) if key == b"data" else {"_raw": value})
    return out


def parse(lines: bytes | str, *args: str, env: dict[str, str] | None = None) -> list[dict]:  # type: ignore[type-arg]
    data = lines.encode() if isinstance(lines, str) else lines
    res = run_logs(["parse", *args], env or {}, input=data)
    assert res.returncode == 0, res.stderr
    return [json.loads(line) for line in res.stdout.decode().splitlines()]


def test_stack_traces_and_tracebacks_are_one_row_each(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_text(JAVA + PYTHON)
    res = run_logs(["send", str(log)], env)
    assert res.returncode == 0, res.stderr
    assert b"sent 4 entries (17 lines)" in res.stderr
    assert run_logs(["ingest", "--drain"], env).returncode == 0
    rows = lake_rows(data_dir, "select level, message from t order by ts")
    assert [r[0] for r in rows] == ["ERROR", "INFO", "ERROR", "WARN"]
    assert rows[0][1].endswith("\t... 12 more") and "Caused by:" in rows[0][1]
    assert rows[2][1].startswith("app: unhandled\nTraceback") and rows[2][1].endswith(
        "KeyError: 'x'"
    )


def test_multiline_none_and_a_start_pattern() -> None:
    assert len(parse(JAVA, "--multiline", "none")) == 7
    starts = parse("BEGIN a\nmore\nBEGIN b\n", "--multiline", "^BEGIN")
    assert [r["message"] for r in starts] == ["BEGIN a\nmore", "BEGIN b"]


def test_a_quiet_pipe_flushes_the_record_it_holds(
    env: dict[str, str], redis_proc: RedisProc, stream: str
) -> None:
    import os

    full = {**{k: v for k, v in os.environ.items() if not k.startswith("LOGS_")}, **env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest", "send"],
        env=full,
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    try:
        proc.stdin.write(b"2026-11-23 10:00:00 ERROR boom\n\tat a.b(C.java:1)\n")
        proc.stdin.flush()
        client = redis_proc.client()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and client.xlen(stream) == 0:
            time.sleep(0.1)
        # The pipe is still open: the record went out because it went quiet.
        assert client.xlen(stream) == 1
        assert entries(client, stream)[0]["message"] == "boom\n\tat a.b(C.java:1)"
    finally:
        proc.stdin.close()
        proc.wait(30)
    assert proc.returncode == 0


def test_flags_fill_and_never_overwrite(
    env: dict[str, str], redis_proc: RedisProc, stream: str
) -> None:
    lines = "\n".join(
        [
            "a bare line",
            '{"v":0,"name":"bun","hostname":"b1","level":30,"msg":"bunyan"}',
            '{"MESSAGE":"journald","PRIORITY":"3","_HOSTNAME":"j1"}',
            '{"app":"logrus-app","msg":"logrus","level":"warning"}',
            "<34>Dec  6 10:00:00 web1 sshd[1]: syslog line",
        ]
    )
    res = run_logs(
        ["send", "--service", "flag-svc", "--host", "flag-host", "--level", "debug"],
        env,
        input=lines.encode(),
    )
    assert res.returncode == 0, res.stderr
    assert run_logs(["ingest", "--drain"], env).returncode == 0
    rows = lake_rows(
        Path(env["LOGS_DATA_DIR"]), "select message, service, host, level from t order by message"
    )
    assert rows == [
        ("a bare line", "flag-svc", "flag-host", "DEBUG"),
        ("bunyan", "bun", "b1", "INFO"),
        ("journald", "flag-svc", "j1", "ERROR"),
        ("logrus", "logrus-app", "flag-host", "WARN"),
        ("syslog line", "sshd", "web1", "FATAL"),
    ]


def test_encodings_bom_ansi_and_crlf(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path, tmp_path: Path
) -> None:
    legacy = tmp_path / "legacy.log"
    legacy.write_bytes("2026-11-23 10:00:00 WARN caf\xe9 ferm\xe9\r\n".encode("latin-1"))
    rows = parse(legacy.read_bytes(), "--encoding", "latin-1")
    assert rows[0]["message"] == "café fermé" and rows[0]["level"] == "WARN"

    res = run_logs(["send", str(legacy)], env)
    assert res.returncode == 0
    err = res.stderr.decode()
    assert "1 lines were not valid utf-8" in err and "legacy.log line 1" in err
    assert "ingest dead-letters them" in err
    bom = '\ufeff{"msg": "after a BOM", "level": "error"}\n\x1b[33mWARN\x1b[0m colour\n'
    assert run_logs(["send"], env, input=bom.encode()).returncode == 0
    assert run_logs(["ingest", "--drain"], env).returncode == 0
    got = lake_rows(data_dir, "select level, message from t order by message")
    assert got == [("ERROR", "after a BOM"), ("WARN", "colour")]
    dead = redis_proc.client().xrange(f"{stream}:dlq")
    assert len(dead) == 1 and b"invalid UTF-8" in dead[0][1][b"reason"]


def test_timezone_and_forced_format() -> None:
    rows = parse("2026-07-01 12:00:00 INFO summer\n", "--timezone", "Europe/Berlin")
    assert rows[0]["ts"] == "2026-07-01T10:00:00Z"
    forced = parse("<34>Dec  6 10:00:00 web1 sshd[1]: x\n", "--format", "logfmt")
    assert forced[0]["message"] == "<34>Dec  6 10:00:00 web1 sshd[1]: x"
    res = run_logs(["parse", "--format", "nope"], {}, input=b"x\n")
    assert res.returncode == 2 and b"no such format" in res.stderr
    res = run_logs(["parse", "--timezone", "Mars/Olympus"], {}, input=b"x\n")
    assert res.returncode == 2 and b"unknown zone" in res.stderr
    res = run_logs(["parse", "--multiline", "("], {}, input=b"x\n")
    assert res.returncode == 2 and b"--multiline '(': not a regular expression" in res.stderr
    res = run_logs(["parse", "--encoding", "klingon"], {}, input=b"x\n")
    assert res.returncode == 2 and b"no such encoding" in res.stderr


def test_cri_partial_lines_join() -> None:
    lines = (
        "2026-11-23T10:00:00.1Z stdout P first half, \n"
        "2026-11-23T10:00:00.2Z stdout F second half\n"
        "2026-11-23T10:00:00.3Z stderr F alone\n"
    )
    rows = parse(lines)
    assert [r["message"] for r in rows] == ["first half, second half", "alone"]
    assert rows[0]["attrs"]["stream"] == "stdout" and "partial" not in rows[0]["attrs"]


def test_your_own_format_from_logs_toml(tmp_path: Path) -> None:
    (tmp_path / "logs.toml").write_text(
        "[parsers.checkout]\n"
        "pattern = '^(?<ts>\\d{2}\\.\\d{2}\\.\\d{4} \\d{2}:\\d{2}) \\| (?P<level>\\w+) \\| "
        "(?P<service>[\\w-]+) \\| (?P<message>.*)'\n"
        'time_format = "%d.%m.%Y %H:%M"\n'
    )
    rows = parse("23.11.2026 10:05 | ERR | checkout | order failed\nother\n")
    assert rows[0]["ts"] == "2026-11-23T10:05:00Z"
    # A line no format reads joins the record before it (--multiline auto): the message group
    # takes it.
    assert (rows[0]["level"], rows[0]["service"], rows[0]["message"]) == (
        "ERROR",
        "checkout",
        "order failed\nother",
    )
    assert rows[0]["attrs"]["_format"] == "checkout"
    assert len(rows) == 1
    listed = run_logs(["parse", "--list"], {}).stdout.decode().split()
    assert listed[0] == "checkout" and "syslog3164" in listed
    (tmp_path / "logs.toml").write_text("[parsers.bad]\npattern = '(unclosed'\n")
    res = run_logs(["parse"], {}, input=b"x\n")
    assert res.returncode == 2 and b"parsers.bad: bad pattern" in res.stderr


def test_send_dry_run_sends_nothing(
    env: dict[str, str], redis_proc: RedisProc, stream: str
) -> None:
    res = run_logs(["send", "--dry-run"], env, input=b"<13>Dec  6 10:00:00 h app: hi\n")
    assert res.returncode == 0, res.stderr
    row = json.loads(res.stdout)
    assert (row["service"], row["host"], row["message"]) == ("app", "h", "hi")
    assert redis_proc.client().exists(stream) == 0


def test_year_less_times_read_on_new_years_eve() -> None:
    from ingest.formats.registry import text_doc

    dec31 = int(datetime(2026, 12, 31, 12, tzinfo=UTC).timestamp() * 1_000_000)
    assert text_doc("Jan  1 00:30:00 h app: x", dec31)["ts"] == "2027-01-01T00:30:00.000000Z"
    assert text_doc("Dec 31 11:00:00 h app: x", dec31)["ts"] == "2026-12-31T11:00:00.000000Z"
