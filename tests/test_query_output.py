"""What `logs sql` writes, byte for byte: rows only on stdout (the table's footer on stderr),
naive timestamps without a zone, real TSV, `-o` files named by format and created with the
mode any new file gets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from ingest.cli import app
from ingest.lake.writer import LakeWriter
from ingest.records import decode

runner = CliRunner()


def logs(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


# -- stdout carries only rows ----------------------------------------------------------------


def test_table_footer_goes_to_stderr_not_stdout(env: dict[str, str]) -> None:
    result = logs("sql", "select range as n from range(100)")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("┌") and lines[-1].startswith("└")  # the box and nothing else
    assert sum(1 for ln in lines if ln.startswith("│ ")) == 2 + 40 + 3  # names, types, rows, ···
    assert "rows" not in result.stdout
    assert result.stderr == "100 rows (40 shown)\n"
    one = logs("sql", "select 1 as one")
    assert one.stdout.splitlines()[-1].startswith("└") and one.stderr == "1 row\n"
    schema = logs("schema", "logs")
    assert schema.exit_code == 0 and "rows" not in schema.stdout
    assert schema.stderr.endswith(" rows\n")


def test_footer_shows_after_the_table_on_a_terminal(env: dict[str, str]) -> None:
    """Both streams on one terminal: the footer line still comes right under the box."""
    import pty

    leader, follower = pty.openpty()
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("LOGS_")}, **env}
    proc = subprocess.run(
        [sys.executable, "-m", "ingest", "sql", "select range as n from range(50)"],
        stdout=follower,
        stderr=follower,
        env=full,
        timeout=60,
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert proc.returncode == 0
    lines = [ln.strip() for ln in seen.decode().splitlines() if ln.strip()]
    assert lines[-2].startswith("└") and lines[-1] == "50 rows (40 shown)"


# -- timestamps ----------------------------------------------------------------------------------

STAMPS = (
    "select timestamp '2026-11-20 10:00:00.5' as naive, "
    "timestamptz '2026-11-20 15:30:00.5+05:30' as aware, "
    "[timestamp '2026-11-20 10:00:00'] as naive_list"
)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "table", "markdown", "vertical"])
def test_naive_timestamps_have_no_zone_in_text_formats(env: dict[str, str], fmt: str) -> None:
    result = logs("sql", STAMPS, "-F", fmt)
    assert result.exit_code == 0, result.stderr
    assert "2026-11-20T10:00:00.500000Z" in result.stdout  # the TIMESTAMPTZ, in UTC
    assert result.stdout.count("2026-11-20T10:00:00.500000") == 2
    assert result.stdout.count("Z") == 1, result.stdout
    assert '["2026-11-20T10:00:00"]' in result.stdout.replace('""', '"')


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_naive_timestamps_have_no_zone_in_json(env: dict[str, str], fmt: str) -> None:
    result = logs("sql", STAMPS, "-F", fmt)
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)
    row = row[0] if isinstance(row, list) else row
    assert row == {
        "naive": "2026-11-20T10:00:00.500000",
        "aware": "2026-11-20T10:00:00.500000Z",
        "naive_list": ["2026-11-20T10:00:00"],
    }
    assert datetime.fromisoformat(row["naive"]).tzinfo is None


def test_naive_timestamps_stay_naive_in_parquet(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    assert logs("sql", STAMPS, "-o", str(out)).exit_code == 0
    schema = pq.read_schema(out)
    assert schema.field("naive").type.tz is None
    assert str(schema.field("aware").type.tz) == "UTC"


# -- TSV -----------------------------------------------------------------------------------------


def test_tsv_escapes_tab_newline_backslash_and_never_quotes(env: dict[str, str]) -> None:
    query = (
        "select 'a' || chr(9) || 'b' as \"tab\tname\", 'one' || chr(10) || 'two' as nl, "
        "'c:' || chr(92) || 'x' as bs, 'say \"hi\", ok' as quoted, "
        "'r' || chr(13) as cr, null as nothing"
    )
    result = logs("sql", query, "-F", "tsv")
    assert result.exit_code == 0, result.stderr
    header = "tab\\tname\tnl\tbs\tquoted\tcr\tnothing\n"
    row = 'a\\tb\tone\\ntwo\tc:\\\\x\tsay "hi", ok\tr\\r\t\n'
    assert result.stdout == header + row
    headless = logs("sql", query, "-F", "tsv", "--no-header")
    assert headless.stdout == result.stdout.split("\n", 1)[1]


# -- -o: the format from the name ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["out.xyz", "out", "out.log"])
def test_output_with_an_unknown_extension_needs_a_format(
    env: dict[str, str], tmp_path: Path, name: str
) -> None:
    out = tmp_path / name
    result = logs("sql", "select 1 as x", "-o", str(out))
    assert result.exit_code == 2, result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"logs: error: -o {out}: ")
    for known in (".csv", ".tsv", ".json", ".jsonl", ".md", ".parquet", ".txt"):
        assert known in first
    assert "-F" in result.stderr and result.stdout == ""
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left
    forced = logs("sql", "select 1 as x", "-o", str(out), "-F", "csv")
    assert forced.exit_code == 0, forced.stderr
    assert out.read_text() == "x\n1\n"


# -- file modes ----------------------------------------------------------------------------------


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_sql_and_export_files_get_the_same_mode_from_the_umask(
    env: dict[str, str], data_dir: Path, tmp_path: Path, umask: None, mask: int
) -> None:
    doc = {"ts": "2026-11-20T10:00:00Z", "message": "hello"}
    LakeWriter(data_dir).commit([decode("1795000000000-0", [b"data", orjson.dumps(doc)])])
    os.umask(mask)
    expected = 0o666 & ~mask
    for name in ("rows.csv", "rows.parquet", "rows.txt"):
        out = tmp_path / name
        result = logs("sql", "select * from logs", "-o", str(out))
        assert result.exit_code == 0, result.stderr
        assert out.stat().st_mode & 0o777 == expected, name
    exported = tmp_path / "export.parquet"
    result = logs("export", "--all", "-o", str(exported))
    assert result.exit_code == 0, result.stderr
    assert exported.stat().st_mode & 0o777 == expected
