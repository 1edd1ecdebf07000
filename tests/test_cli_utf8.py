"""Bytes that are not UTF-8 where the CLI expects text (an argument, a flag's value, `--file`,
SQL on stdin) are a usage error naming where they came from, in real processes (Python hands
such an argument over surrogate-escaped). Log lines stay data: `logs send` keeps reading any
bytes, and a file name may be any bytes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import RedisProc, run_logs


def arg(raw: bytes) -> str:
    """A command-line argument holding `raw` as it is (what the shell passes for $'\\xff')."""
    return os.fsdecode(raw)


def usage_error(result, message: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, result.stderr
    assert result.stdout == b""
    assert result.stderr.decode() == f"logs: error: {message}\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["sql", arg(b"select '\xff'")],
            "the QUERY argument is not valid UTF-8 (byte 0xff at offset 8)",
        ),
        (
            ["sql", "select $x", "-p", "x", arg(b"caf\xe9")],
            "--param is not valid UTF-8 (byte 0xe9 at offset 3)",
        ),
        (
            ["sql", "select 1", "--since", arg(b"1\xffh")],
            "--since is not valid UTF-8 (byte 0xff at offset 1)",
        ),
        (
            ["export", "--since", "1d", "--where", arg(b"level = '\xc3'"), "-o", "x.parquet"],
            "--where is not valid UTF-8 (byte 0xc3 at offset 9)",
        ),
        (
            ["schema", arg(b"\xfflogs")],
            "the VIEW argument is not valid UTF-8 (byte 0xff at offset 0)",
        ),
    ],
)
def test_arguments_and_flag_values_must_be_utf8(
    env: dict[str, str], args: list[str], message: str
) -> None:
    usage_error(run_logs(args, env), message)


def test_sql_file_and_stdin_must_be_utf8(env: dict[str, str], tmp_path: Path) -> None:
    binary = tmp_path / "query.sql"
    binary.write_bytes(b"select 'ok' as \xfe\xff")
    usage_error(
        run_logs(["sql", "--file", str(binary)], env),
        f"--file {binary} is not valid UTF-8 (byte 0xfe at offset 15)",
    )
    usage_error(
        run_logs(["sql", "-"], env, input=b"select '\x80'"),
        "the SQL on stdin is not valid UTF-8 (byte 0x80 at offset 8)",
    )
    fine = run_logs(["sql", "-", "-F", "csv"], env, input="select 'café' as v".encode())
    assert fine.returncode == 0 and fine.stdout.decode() == "v\ncafé\n"


def test_send_flags_must_be_utf8_but_lines_and_file_names_may_be_any_bytes(
    env: dict[str, str], redis_proc: RedisProc, stream: str, tmp_path: Path
) -> None:
    client = redis_proc.client()
    usage_error(
        run_logs(["send", "--service", arg(b"ap\xffi")], env, input=b"hello\n"),
        "--service is not valid UTF-8 (byte 0xff at offset 2)",
    )
    assert client.xlen(stream) == 0  # refused before anything was sent
    # A log line in latin-1 is data: read with --encoding, or sent as it is for the DLQ.
    named = tmp_path / arg(b"caf\xe9.log")
    named.write_bytes(b"2026-11-23 10:00:00 WARN caf\xe9\n")
    sent = run_logs(["send", "--encoding", "latin-1", str(named)], env)
    assert sent.returncode == 0, sent.stderr
    raw = run_logs(["send"], env, input=b"2026-11-23 10:00:01 INFO caf\xe9\n")
    assert raw.returncode == 0 and b"not valid utf-8" in raw.stderr
    assert client.xlen(stream) == 2
