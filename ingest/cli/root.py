"""The `logs` Typer application: the root group and its global options.

Commands live in small modules that register themselves; a module is imported only when one of
its commands runs (cli/lazy.py), and heavy libraries only inside the commands, so `logs --help`
starts instantly and a command pays for nothing but its own work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ingest.cli.lazy import LazyGroup
from ingest.cli.plain import setup_logging

app = typer.Typer(
    name="logs",
    cls=LazyGroup,
    help="loglake: Redis Stream -> hourly Delta Lake of logs, queried with SQL.\n\n"
    'Start with `logs demo`, then `logs sql "select level, count(*) from logs group by 1"`.',
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode=None,
)


def _version_callback(value: bool) -> None:
    if value:
        from ingest.cli.fast import versions

        typer.echo(versions())
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Config file [env LOGS_CONFIG; default ./logs.toml]",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log lines.")
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
    log_format: Annotated[
        str, typer.Option("--log-format", help="Our own log lines: text or json.")
    ] = "text",
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print versions and exit."
        ),
    ] = False,
) -> None:
    """loglake: Redis Stream -> hourly Delta Lake of logs, queried with SQL."""
    ctx.obj = {"config": str(config) if config else None, "quiet": quiet}
    setup_logging(verbose, quiet, log_format)


def rendered_help() -> str:
    """`logs --help` as Typer prints it on a terminal 80 or more columns wide (click's formatter
    then wraps at 78). cli/help.txt keeps a copy for cli/fast.py; after changing a command's
    summary or a global option, `uv run python -m ingest.cli.root` rewrites it."""
    command = typer.main.get_command(app)
    settings = {**command.context_settings, "terminal_width": 78}
    return command.get_help(typer.Context(command, info_name="logs", **settings)) + "\n"


if __name__ == "__main__":
    (Path(__file__).parent / "help.txt").write_text(rendered_help(), encoding="utf-8")
