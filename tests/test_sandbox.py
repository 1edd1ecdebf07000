"""User SQL may read the lake and nothing else: every escape gets exit 1, a clear message on
stderr, nothing on stdout, and no file appears anywhere."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from ingest.cli import app
from ingest.lake.writer import LakeWriter
from ingest.records import decode

runner = CliRunner()


def files_under(*roots: Path) -> set[Path]:
    return {p for root in roots if root.exists() for p in root.rglob("*")}


@pytest.fixture
def lake(env: dict[str, str], data_dir: Path) -> Path:
    doc = {"ts": datetime.now(UTC).isoformat(), "message": "hello", "service": "api"}
    LakeWriter(data_dir).commit([decode("1795000000000-0", [b"data", orjson.dumps(doc)])])
    return data_dir / "lake"


def escapes(lake: Path, outside: Path) -> list[str]:
    inside = lake / "logs"
    return [
        # writing files, inside the lake (DuckDB alone would allow it) and outside
        f"COPY (SELECT * FROM logs) TO '{inside}/evil.parquet' (FORMAT parquet)",
        f"COPY (SELECT 1) TO '{outside}/evil.csv'",
        f"COPY logs TO '{outside}/evil2.csv'",
        f"EXPORT DATABASE '{outside}/dump'",
        f"CREATE TABLE t AS SELECT * FROM read_parquet('{inside}/**/*.parquet')",
        "CREATE VIEW v AS SELECT 1",
        "CREATE MACRO m() AS 1",
        "INSERT INTO logs SELECT * FROM logs",
        "DELETE FROM logs",
        "DROP VIEW logs",
        # reading outside the data dir, the network
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM glob('/etc/*')",
        f"SELECT * FROM read_parquet('{outside}/*.parquet')",
        "SELECT * FROM read_parquet('http://127.0.0.1:1/x.parquet')",
        "SELECT * FROM read_json('https://example.com/x.json')",
        # other databases, extensions, settings
        f"ATTACH '{outside}/other.duckdb' AS other",
        "ATTACH ':memory:' AS other",
        "DETACH memory",
        "INSTALL httpfs",
        "LOAD httpfs",
        "FORCE INSTALL httpfs FROM core",
        "SET enable_external_access = true",
        "SET allowed_directories = ['/']",
        "RESET enable_external_access",
        "SET memory_limit = '1TB'",
        "PRAGMA enable_profiling",
        "CALL pragma_version()",
        "CHECKPOINT",
        "USE memory",
        "BEGIN TRANSACTION",
        # a write smuggled after a harmless statement
        f"SELECT 1; COPY (SELECT 1) TO '{outside}/evil3.csv'",
        "SELECT getenv('HOME')",
    ]


def test_every_escape_is_refused_and_creates_nothing(lake: Path, tmp_path: Path) -> None:
    outside = tmp_path / f"outside-{uuid.uuid4().hex[:6]}"
    outside.mkdir()
    cwd = Path.cwd()
    before = files_under(lake, outside, cwd)
    for sql in escapes(lake, outside):
        result = runner.invoke(app, ["sql", sql, "-F", "csv"])
        assert result.exit_code == 1, (sql, result.exit_code, result.stdout, result.stderr)
        assert result.stdout == "", sql
        assert result.stderr.startswith("logs: error: "), (sql, result.stderr)
        assert "Traceback" not in result.stderr
        assert files_under(lake, outside, cwd) == before, sql
    assert not Path("/etc/evil.csv").exists()


def test_refusals_say_why(lake: Path, tmp_path: Path) -> None:
    copy = runner.invoke(app, ["sql", f"COPY (SELECT 1) TO '{tmp_path}/x.csv'"])
    assert copy.stderr.splitlines() == [
        "logs: error: COPY statements are refused: the lake is read-only here",
        "hint: logs sql runs one read-only statement (SELECT, WITH, DESCRIBE, SUMMARIZE, "
        "EXPLAIN); write files with `-o FILE` or `logs export`",
    ]
    passwd = runner.invoke(app, ["sql", "SELECT * FROM read_csv('/etc/passwd')"])
    assert passwd.stderr.startswith(
        'logs: error: Permission Error: Cannot access file "/etc/passwd"'
    )
    assert f"hint: logs sql reads only the lake under {lake.resolve()}" in passwd.stderr
    setting = runner.invoke(app, ["sql", "SET enable_external_access = true"])
    assert "SET statements are refused" in setting.stderr


def test_reads_inside_the_lake_still_work(lake: Path) -> None:
    allowed = [
        "SELECT count(*) FROM logs",
        "DESCRIBE logs",
        "SUMMARIZE logs",
        "EXPLAIN SELECT * FROM logs",
        "FROM logs SELECT message",
        "WITH x AS (SELECT * FROM logs) SELECT count(*) FROM x",
        "SHOW TABLES",
        f"SELECT count(*) FROM read_parquet('{lake}/logs/**/*.parquet')",
        "SELECT current_setting('enable_external_access')",
    ]
    for sql in allowed:
        result = runner.invoke(app, ["sql", sql, "-F", "csv"])
        assert result.exit_code == 0, (sql, result.stderr)
    check = runner.invoke(
        app, ["sql", "SELECT current_setting('enable_external_access') AS v", "-F", "csv"]
    )
    assert check.stdout == "v\nfalse\n"


def test_export_where_is_sandboxed_too(lake: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.parquet"
    for where in (
        "true) TO 'evil.csv' --",
        "1=1; COPY (SELECT 1) TO 'evil.csv'",
        "(SELECT count(*) FROM read_csv('/etc/passwd')) > 0",
    ):
        result = runner.invoke(app, ["export", "--all", "--where", where, "-o", str(out)])
        assert result.exit_code == 1, (where, result.stderr)
        assert result.stderr.startswith("logs: error: ")
    assert os.listdir(tmp_path) == ["data"]  # the cwd too: no evil.csv, no temp file
