"""`logs --version`, `logs --help` and a plain `logs sql` are answered before Typer is imported
(cli/fast.py). They must answer exactly what Typer answers: same stdout, stderr, exit code and
files, for every way of writing the arguments; whatever the fast path does not understand goes
to Typer untouched."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from ingest.cli import fast, plain, sqlcmd
from ingest.cli.root import app, rendered_help
from tests.conftest import RedisProc
from tests.helpers import closed_hour, fill_hour

TYPER = "from ingest.cli import app; app(prog_name='logs')"
"""The same arguments through Typer alone."""


def sql_command() -> Any:
    root = typer.main.get_command(app)
    return root.get_command(typer.Context(root, info_name="logs"), "sql")


def test_the_options_table_is_the_typer_commands() -> None:
    """Every option of `logs sql`, with the parameter it sets and how many values it takes; none
    that Typer would fill from the environment or run a callback for (the fast path would not)."""
    declared: dict[str, tuple[str, int]] = {}
    for param in sql_command().params:
        if param.param_type_name == "argument":
            assert param.name == "query" and param.nargs == 1
            continue
        assert param.envvar is None and param.callback is None and not param.is_eager
        for opt in [*param.opts, *param.secondary_opts]:
            declared[opt] = (str(param.name), 0 if param.is_flag else param.nargs)
    assert declared == fast.SQL_OPTIONS


def test_both_paths_run_the_same_function_with_the_same_defaults() -> None:
    """cli/query.py's `sql` hands every parameter to cli/sqlcmd.py, whose defaults the fast path
    relies on for options not given; the global options' defaults are what it sets up."""
    typer_defaults = {p.name: p.default for p in sql_command().params}
    work = inspect.signature(sqlcmd.sql).parameters
    for name, param in work.items():
        if param.default is not inspect.Parameter.empty:
            wanted = typer_defaults["param" if name == "params" else name]
            assert param.default == (None if name == "params" else wanted), name
    dests = {dest for dest, _ in fast.SQL_OPTIONS.values()}
    assert dests - {"param"} - set(work) == {"data_dir", "lake_uri", "redis_url", "stream", "group"}
    root = typer.main.get_command(app)
    skip = {"_version", "install_completion", "show_completion"}
    globals_ = {p.name: p.default for p in root.params if p.name not in skip}
    logging_defaults = inspect.signature(plain.setup_logging).parameters
    assert globals_ == {
        "config": None,
        "verbose": logging_defaults["verbose"].default,
        "quiet": logging_defaults["quiet"].default,
        "log_format": logging_defaults["fmt"].default,
    }


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Two closed hours with redelivered entries (dedup matters), and the SQL files."""
    root = tmp_path_factory.mktemp("fast")
    data_dir = root / "data"
    fill_hour(data_dir, closed_hour(30), 0, 300)
    fill_hour(data_dir, closed_hour(29), 1000, 200)
    (root / "q.sql").write_text("select count(*) as n from logs")
    (root / "bad.sql").write_bytes(b"select '\xff'")
    yield root


def run(program: list[str], args: list[str], cwd: Path, env: dict[str, str], stdin: bytes = b""):  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, *program, *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


HOUR = closed_hour(30).strftime("%Y-%m-%dT%H:00Z")
NEXT = closed_hour(29).strftime("%Y-%m-%dT%H:00Z")

CASES: list[tuple[str, list[str], bool]] = [
    ("table", ["select level, count(*) as n from logs group by 1 order by 1"], True),
    ("csv any case", ["select count(*) as n from logs", "-F", "CSV"], True),
    (
        "option first",
        ["-F", "json", "select service, count(*) n from logs group by 1 order by 1"],
        True,
    ),
    ("--opt=value", ["--format=jsonl", "select 1 as n"], True),
    (
        "params",
        ["select $a::int + $b::int as n", "-p", "a", "40", "--param", "b", "2", "-F", "csv"],
        True,
    ),
    ("params not spliced", ["select $x as v", "-p", "x", "'; drop table t; --", "-F", "csv"], True),
    ("max rows", ["select range as n from range(50)", "--max-rows", "5"], True),
    ("max rows -1", ["select range as n from range(50)", "--max-rows", "-1", "-F", "tsv"], True),
    ("max rows=", ["select range as n from range(50)", "--max-rows=3"], True),
    (
        "window",
        ["select count(*) n from logs", "--since", HOUR, "--until", NEXT, "-F", "csv"],
        True,
    ),
    ("since relative", ["select count(*) n from logs", "--since", "2d", "-F", "csv"], True),
    ("no header", ["select 1 as a, 2 as b", "--no-header", "-F", "csv"], True),
    ("stdin", ["-", "-F", "csv"], True),
    ("file", ["--file", "q.sql", "-F", "csv"], True),
    ("data dir", ["select count(*) n from logs", "-d", "data", "-F", "csv"], True),
    ("settings", ["select 1 n", "--stream", "s", "--group", "g", "--lake-uri", "data/lake"], True),
    ("live", ["select count(*) n from logs", "--live", "-F", "csv"], True),
    ("bad column", ["select nope from logs"], True),
    ("not a select", ["delete from logs"], True),
    ("empty window", ["select 1", "--since", NEXT, "--until", HOUR], True),
    ("unknown extension", ["select 1", "-o", "out.xyz"], True),
    ("file and argument", ["select 1", "--file", "q.sql"], True),
    ("missing file", ["--file", "nope.sql"], True),
    ("file not UTF-8", ["--file", "bad.sql"], True),
    ("no SQL", [], True),
    ("unreachable redis", ["select 1", "--live", "--redis-url", "redis://127.0.0.1:9"], True),
    ("bad format", ["select 1", "-F", "xml"], False),
    ("bad integer", ["select 1", "--max-rows", "many"], False),
    ("one value of two", ["select 1", "-p", "a"], False),
    ("two statements", ["select 1", "select 2"], False),
    ("unknown option", ["select 1", "--bogus"], False),
    ("repeated option", ["select 1", "-F", "csv", "-F", "json"], False),
    ("attached short value", ["select 1 as n", "-Fcsv"], False),
    ("double dash", ["--", "select 1 as n"], False),
    ("help", ["--help"], False),
    ("argument not UTF-8", ["select '\udcff'"], False),
]


@pytest.mark.parametrize(("args", "takes"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_logs_sql_answers_what_typer_answers(
    args: list[str], takes: bool, lake: Path, redis_proc: RedisProc
) -> None:
    assert (fast.parse_sql(args) is not None) is takes  # the case tests the path it names
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGS_")}
    env |= {"LOGS_DATA_DIR": "data", "LOGS_REDIS_URL": redis_proc.url, "COLUMNS": "100"}
    stdin = b"select 7 as n\n"
    ours = run(["-m", "ingest", "sql"], args, lake, env, stdin)
    typers = run(["-c", TYPER, "sql"], args, lake, env, stdin)
    assert (ours.returncode, ours.stderr.decode(), ours.stdout.decode()) == (
        typers.returncode,
        typers.stderr.decode(),
        typers.stdout.decode(),
    )
    assert ours.returncode in (0, 1, 2, 3)
    assert b"Traceback" not in ours.stderr


def test_an_output_file_is_the_same_either_way(lake: Path) -> None:
    env = {**os.environ, "LOGS_DATA_DIR": "data"}
    for program, name in ((["-m", "ingest", "sql"], "fast"), (["-c", TYPER, "sql"], "typer")):
        done = run(
            program, ["select * from logs order by stream_id", "-o", f"{name}.csv"], lake, env
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr.decode() == f"wrote 500 rows to {name}.csv\n"
    assert (lake / "fast.csv").read_bytes() == (lake / "typer.csv").read_bytes()
    assert len((lake / "fast.csv").read_text().splitlines()) == 501


@pytest.mark.parametrize("columns", ["200", "80", "79", "60"])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_is_typers_at_any_width(flag: str, columns: str, tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": columns}
    ours = run(["-m", "ingest"], [flag], tmp_path, env)
    typers = run(["-c", TYPER], [flag], tmp_path, env)
    assert ours.returncode == typers.returncode == 0
    assert ours.stdout.decode() == typers.stdout.decode()
    assert "sql       Query the lake with SQL" in ours.stdout.decode()


def test_the_help_copy_is_current() -> None:
    """cli/help.txt is what the fast path prints for `logs --help`."""
    copy = Path(fast.__file__).parent / "help.txt"
    assert copy.read_text(encoding="utf-8") == rendered_help(), (
        "a command's summary or a global option changed: run `uv run python -m ingest.cli.root`"
    )


def test_version_is_typers(tmp_path: Path) -> None:
    ours = run(["-m", "ingest"], ["--version"], tmp_path, dict(os.environ))
    typers = run(["-c", TYPER], ["--version"], tmp_path, dict(os.environ))
    assert ours.returncode == typers.returncode == 0
    assert ours.stdout == typers.stdout and ours.stdout.startswith(b"logs ")


def test_completion_and_global_options_go_to_typer(tmp_path: Path) -> None:
    env = {**os.environ, "LOGS_DATA_DIR": str(tmp_path)}
    quiet = run(["-m", "ingest"], ["-q", "sql", "select 42 as n", "-F", "csv"], tmp_path, env)
    assert (quiet.returncode, quiet.stdout) == (0, b"n\n42\n")
    completion = {
        **env,
        "_LOGS_COMPLETE": "complete_bash",
        "COMP_WORDS": "logs sq",
        "COMP_CWORD": "1",
    }
    done = run(["-m", "ingest"], ["sql", "select 1"], tmp_path, completion)
    assert (done.returncode, done.stdout) == (0, b"sql\n")
