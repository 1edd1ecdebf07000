"""The CLI as a new user meets it: help everywhere, version, wrong flags, config precedence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from ingest import config
from ingest.cli import app
from ingest.errors import ConfigError

runner = CliRunner()

TYPER_EDGE = {"ingest.cli.root", "ingest.cli.lazy", "ingest.cli.common", "ingest.cli.plain"}
"""What every command that goes through Typer imports of ingest/cli."""


def all_commands() -> list[list[str]]:
    """Every command path, through the group API (`logs` loads its commands lazily)."""
    root = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(cmd: Any, prefix: list[str]) -> None:
        if not hasattr(cmd, "list_commands"):
            paths.append(prefix)
            return
        ctx = typer.Context(cmd)
        for name in cmd.list_commands(ctx):
            walk(cmd.get_command(ctx, name), [*prefix, name])

    walk(root, [])
    return paths


@pytest.mark.parametrize("path", all_commands(), ids=lambda p: " ".join(p))
def test_every_command_has_help_with_an_example(path: list[str]) -> None:
    res = runner.invoke(app, [*path, "--help"])
    assert res.exit_code == 0, res.output
    assert "Example" in res.output, f"`logs {' '.join(path)} --help` shows no example"
    assert "Usage: " in res.output


def test_every_command_is_found_by_importing_only_its_module() -> None:
    """cli/lazy.py's HOMES says which module registers which command; a command it misses
    still runs, but only after every module was imported (slow start-up)."""
    from ingest.cli import lazy

    registered: dict[str, str] = {}
    for module in lazy.COMMAND_MODULES:
        part = typer.Typer()
        __import__(f"ingest.cli.{module}", fromlist=["register"]).register(part)
        for name in typer.main.get_group(part).commands:
            registered[name] = module
    assert registered == lazy.HOMES


def test_the_list_of_commands_is_what_the_built_commands_say() -> None:
    """`logs --help` lists commands from summaries (nothing built); built, they read alike."""
    root = typer.main.get_command(app)
    ctx = typer.Context(root, info_name="logs")
    from_summaries = root.get_help(ctx)
    for name in root.list_commands(ctx):
        root.get_command(ctx, name)  # build every command for real
    assert root.get_help(ctx) == from_summaries
    assert "sql       Query the lake with SQL" in from_summaries


@pytest.mark.parametrize(
    ("args", "loaded"),
    [
        (["--version"], set()),
        (["--help"], set()),
        (["sql", "select 1", "-F", "csv"], {"ingest.cli.plain", "ingest.cli.sqlcmd"}),
        (["sql", "--help"], {"ingest.cli.query", *TYPER_EDGE}),
        (["dlq", "list", "--help"], {"ingest.cli.dlq", "ingest.cli.ops", *TYPER_EDGE}),
    ],
)
def test_a_command_imports_its_own_module_only(
    args: list[str], loaded: set[str], tmp_path: Path
) -> None:
    """What `logs` imports for a command: `--version`, `--help` and a plain `logs sql` not even
    Typer (cli/fast.py), other commands only the module that registers them."""
    import os
    import subprocess
    import sys

    # sys.modules at exit, not -X importtime: that misses importlib.import_module's imports.
    program = (
        "import atexit, sys\n"
        "atexit.register(lambda: print(*sorted(sys.modules), file=sys.stderr))\n"
        "from ingest.cli import main\n"
        "main()\n"
    )
    env = {**os.environ, "COLUMNS": "100", "LOGS_DATA_DIR": str(tmp_path)}
    res = subprocess.run(
        [sys.executable, "-c", program, *args], capture_output=True, timeout=60, env=env
    )
    assert res.returncode == 0, res.stderr
    imported = set(res.stderr.decode().split())
    modules = {m for m in imported if m.startswith("ingest.cli.")}
    assert modules == {"ingest.cli.fast", *loaded}
    heavy = ["pydantic", "deltalake", "polars", "pyarrow", "redis"]
    if args[0] != "sql" or "--help" in args:
        heavy += ["duckdb"]
    if not loaded & TYPER_EDGE:
        heavy += ["typer"]
    for name in heavy:
        assert name not in imported, name


def test_light_parameter_conversion_keeps_typers_answers() -> None:
    """Values converted without pydantic (cli/lazy.py) the way Typer would: enums in any case,
    integers, pairs, and a clear usage error for a bad value."""
    res = runner.invoke(
        app,
        [
            "sql",
            "select $a::int + $b::int as n",
            "-F",
            "CSV",
            "-p",
            "a",
            "40",
            "-p",
            "b",
            "2",
            "--max-rows",
            "5",
        ],
    )
    assert res.exit_code == 0, res.output
    assert res.stdout == "n\n42\n"
    bad = runner.invoke(app, ["sql", "select 1", "--max-rows", "many"])
    assert bad.exit_code == 2 and "'many' is not a valid integer" in bad.output
    enum = runner.invoke(app, ["sql", "select 1", "-F", "xml"])
    assert enum.exit_code == 2 and "'xml' is not one of 'table', 'csv'" in enum.output


def test_the_core_commands_exist() -> None:
    names = {" ".join(p) for p in all_commands()}
    assert {"send", "gen", "ingest", "down", "up"} <= names


def test_version_names_our_and_the_main_libraries_versions() -> None:
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0
    line = res.output.strip()
    assert line.startswith("logs ")
    for lib in ("duckdb", "polars", "deltalake", "redis", "python"):
        assert lib in line
    # Read from the dist-info folder names (fast); they must say what the metadata says.
    from importlib.metadata import version

    for lib in ("duckdb", "polars", "deltalake", "redis"):
        assert f"{lib} {version(lib)}" in line
    assert line.startswith(f"logs {version('loglake')} (")


def test_no_arguments_shows_help_and_a_wrong_flag_is_a_usage_error() -> None:
    res = runner.invoke(app, [])
    assert "Usage: " in res.output
    res = runner.invoke(app, ["ingest", "--no-such-flag"])
    assert res.exit_code == 2
    assert "No such option: --no-such-flag" in res.output


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    cfg = tmp_path / "logs.toml"
    cfg.write_text('stream = "from-file"\n[ingest]\nbatch_rows = 70\nread_count = 9\n')
    env = {"LOGS_STREAM": "from-env", "LOGS_READ_COUNT": "11"}
    resolved = config.load({"read_count": 13}, str(cfg), env)
    s = resolved.settings
    assert (s.stream, s.batch_rows, s.read_count, s.group) == ("from-env", 70, 13, "lake")
    assert resolved.sources["stream"] == "env LOGS_STREAM"
    assert resolved.sources["batch_rows"] == f"file {cfg}"
    assert resolved.sources["read_count"] == "flag"
    assert resolved.sources["group"] == "default"


def test_config_file_mistakes_are_clear(tmp_path: Path) -> None:
    cfg = tmp_path / "conf" / "logs.toml"
    cfg.parent.mkdir()
    cfg.write_text("batch_row = 5\n")
    with pytest.raises(ConfigError, match="unknown setting 'batch_row' .did you mean 'batch_rows'"):
        config.load({}, str(cfg), {})
    with pytest.raises(ConfigError, match="LOGS_BATCH_ROWS: batch_rows must be int"):
        config.load({}, None, {"LOGS_BATCH_ROWS": "lots"})
    with pytest.raises(ConfigError, match="does not exist"):
        config.load({}, str(tmp_path / "missing.toml"), {})


def test_a_bad_setting_is_exit_2_with_one_line(tmp_path: Path) -> None:
    res = runner.invoke(app, ["ingest", "--drain"], env={"LOGS_BATCH_ROWS": "-1"})
    assert res.exit_code == 2
    assert res.output.strip() == "logs: error: batch_rows must be positive, got -1"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@db:6379/0", "redis://:***@db:6379/0"),
        ("redis://app:hunter2@db/1", "redis://app:***@db/1"),
        ("rediss://db:6380", "rediss://db:6380"),
    ],
)
def test_passwords_are_masked(url: str, shown: str) -> None:
    assert config.mask_url(url) == shown


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOGS_COMPACT_INTERVAL": "0"}, "compact_interval must be positive, got 0.0"),
        ({"LOGS_ROLLUP_MINUTE": "60"}, "rollup_minute must be 0-59, got 60"),
        ({"LOGS_RETENTION_DAYS": "0"}, "retention_days must be positive, got 0"),
    ],
)
def test_scheduler_settings_are_validated(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.load({}, None, env)
