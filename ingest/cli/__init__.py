"""The `logs` command line: a thin edge over ingest/ and queries/.

Commands live in small modules that register themselves; a module is imported only when one of
its commands runs (ingest/cli/lazy.py), and heavy libraries only inside the commands, so
`logs --help` starts instantly and `logs sql` pays for nothing but its own work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ingest.cli.common import setup_logging
from ingest.cli.lazy import LazyGroup

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


def _versions() -> str:
    import platform

    libraries = ("duckdb", "polars", "deltalake", "redis")
    found = _installed(("loglake", *libraries))
    parts = [f"{dist} {found[dist]}" for dist in libraries if found[dist]]
    parts.append(f"python {platform.python_version()}")
    return f"logs {found['loglake'] or 'dev'} ({', '.join(parts)})"


def _installed(dists: tuple[str, ...]) -> dict[str, str | None]:
    """Versions from the `NAME-VERSION.dist-info` folder names on sys.path (what an installer
    writes; importlib.metadata would parse every METADATA file, 10x slower), else from
    importlib.metadata."""
    import os
    import sys

    found: dict[str, str | None] = {}
    for folder in sys.path:
        try:
            names = os.listdir(folder or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info") and "-" in name:
                dist, _, number = name[: -len(".dist-info")].partition("-")
                if dist.lower() in dists and dist.lower() not in found:
                    found[dist.lower()] = number
    for dist in dists:
        if dist not in found:
            from importlib.metadata import PackageNotFoundError, version

            try:
                found[dist] = version(dist)
            except PackageNotFoundError:
                found[dist] = None
    return found


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(_versions())
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
