"""What every Typer command of `logs` shares: option declarations, settings resolution, the
error edge, built on cli/plain.py (the same edge without Typer).

The only place (with the command modules and plain.py) that writes to the terminal. Light
imports only.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ingest.cli import plain
from ingest.errors import UsageError

if TYPE_CHECKING:
    from ingest import config

F = TypeVar("F", bound=Callable[..., Any])

# -- shared options (declared once, reused by every command) ----------------------------------

DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        "-d",
        help="Data directory [env LOGS_DATA_DIR; default ./data]",
        show_default=False,
    ),
]
LakeUriOpt = Annotated[
    str | None,
    typer.Option(
        "--lake-uri",
        help="The lake: a directory, s3://bucket/prefix, az://container/prefix or "
        "gs://bucket/prefix [env LOGS_LAKE_URI; default <data dir>/lake]",
        show_default=False,
    ),
]
RedisUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--redis-url",
        help="Redis URL [env LOGS_REDIS_URL; default: embedded server]",
        show_default=False,
    ),
]
StreamOpt = Annotated[
    str | None,
    typer.Option(
        "--stream", help="Stream name [env LOGS_STREAM; default logs]", show_default=False
    ),
]
GroupOpt = Annotated[
    str | None,
    typer.Option(
        "--group", help="Consumer group [env LOGS_GROUP; default lake]", show_default=False
    ),
]


def settings(ctx: typer.Context | None = None, **flags: Any) -> config.Settings:
    """Resolve settings from flags (only those given), env, config file and defaults."""
    return resolve(ctx, **flags).settings


def resolve(ctx: typer.Context | None = None, **flags: Any) -> config.Resolved:
    config_file = None
    if ctx is not None:
        root = ctx.find_root()
        if isinstance(root.obj, dict):
            config_file = root.obj.get("config")
    return plain.resolve(config_file, **flags)


def edge(fn: F) -> F:
    """Turn domain errors into one line on stderr and the right exit code; never a traceback
    (plain.guard, which `logs sql`'s fast path runs too)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        code = plain.guard(lambda: _checked(fn, args, kwargs), keep=(typer.Exit,))
        if code:
            raise typer.Exit(code)

    return wrapper  # type: ignore[return-value]


def _checked(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
    _check_utf8(fn, kwargs)
    return fn(*args, **kwargs)


def _check_utf8(fn: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """Python hands an argument that is not UTF-8 over as a str with lone surrogates
    (surrogateescape); it would fail later, deep in DuckDB or redis-py. Paths are exempt: a
    file name may be any bytes."""
    for name, value in kwargs.items():
        offset = plain.bad_offset(value)
        if offset is not None:
            raise UsageError(f"{_cli_name(fn, name)} is not valid UTF-8 ({offset})")


def _cli_name(fn: Callable[..., Any], name: str) -> str:
    """How the user wrote parameter `name` of command `fn`: `--param`, `the QUERY argument`."""
    import inspect

    from typer.models import ArgumentInfo, ParameterInfo

    try:
        annotation = inspect.signature(fn, eval_str=True).parameters[name].annotation
    except (KeyError, NameError, TypeError, ValueError):
        annotation = None
    for info in getattr(annotation, "__metadata__", ()):
        if isinstance(info, ArgumentInfo):
            return f"the {name.upper()} argument"
        if isinstance(info, ParameterInfo):
            decls = [d for d in info.param_decls or () if d.startswith("--")]
            if decls:
                return decls[0]
    return "--" + name.replace("_", "-")


def command(
    app: typer.Typer, fn: Callable[..., Any], name: str | None = None, **options: Any
) -> None:
    """Register `fn` as a command of `app`, behind `edge`: every command's errors become one line
    and an exit code in the same place. Its parameters take the light path (cli/lazy.py)."""
    from ingest.cli.lazy import LightCommand

    options.setdefault("cls", LightCommand)
    app.command(name, **options)(edge(fn))


def format_option(default: str) -> Any:
    return typer.Option(
        "--format", "-F", help=f"Output format [default {default}].", show_default=False
    )


def redis_client(s: config.Settings):  # type: ignore[no-untyped-def]
    from ingest.redis_conn import connect, resolve_url

    return connect(resolve_url(s), s.block_ms)


def out(text: str) -> None:
    """One line of data on stdout."""
    sys.stdout.write(text + "\n")


def out_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    from ingest.status_table import table_lines

    for line in table_lines(header, rows):
        out(line)
