"""What every `logs` command shares: option declarations, settings resolution, the error edge.

The only place (with the command modules) that writes to the terminal. Light imports only.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ingest.errors import ExitCode, LogsError, UsageError

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
    from ingest import config  # not at import: `logs --version` needs no settings

    config_file = None
    if ctx is not None:
        root = ctx.find_root()
        if isinstance(root.obj, dict):
            config_file = root.obj.get("config")
    return config.load({k: v for k, v in flags.items() if v is not None}, config_file)


# -- output and errors --------------------------------------------------------------------------


def error(message: str, hint: str | None = None) -> None:
    """`logs: error: <message>` on stderr, after flushing stdout so the order stays readable."""
    with contextlib.suppress(BrokenPipeError, ValueError):
        sys.stdout.flush()
    sys.stderr.write(f"logs: error: {message}\n")
    if hint:
        sys.stderr.write(f"hint: {hint}\n")
    sys.stderr.flush()


def note(message: str) -> None:
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()


def edge(fn: F) -> F:
    """Turn domain errors into one line on stderr and the right exit code; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            _check_utf8(fn, kwargs)
            return fn(*args, **kwargs)
        except LogsError as exc:
            error(str(exc), exc.hint)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            note("interrupted")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except BrokenPipeError:
            # `logs sql ... | head`: the reader left; exit quietly (Python signal docs recipe).
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(0) from None
        except typer.Exit:
            raise
        except Exception as exc:
            if os.environ.get("LOGS_DEBUG"):
                raise
            from ingest.errors import one_line

            refused = _redis_refusal(exc)
            if refused is not None:
                error(refused, "README, 'Redis permissions', lists what each command needs")
                raise typer.Exit(ExitCode.UNAVAILABLE) from None
            error(f"unexpected {one_line(exc)}", "rerun with LOGS_DEBUG=1 for the traceback")
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _redis_refusal(exc: Exception) -> str | None:
    """A command Redis refused for lack of permission (an ACL user without it): exit 3."""
    if not type(exc).__module__.startswith("redis"):
        return None  # redis is not imported here unless the command used it
    import redis

    from ingest.errors import flat

    if isinstance(exc, redis.exceptions.NoPermissionError):
        return f"Redis refused a command: NOPERM {flat(str(exc))}"
    return None


# -- text from the command line ------------------------------------------------------------------


def utf8(raw: bytes, where: str) -> str:
    """`raw` as text; bytes that are not UTF-8 are a usage error naming where they came from."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{where} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None


def _check_utf8(fn: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """Python hands an argument that is not UTF-8 over as a str with lone surrogates
    (surrogateescape); it would fail later, deep in DuckDB or redis-py. Paths are exempt: a
    file name may be any bytes."""
    for name, value in kwargs.items():
        offset = _bad_offset(value)
        if offset is not None:
            raise UsageError(f"{_cli_name(fn, name)} is not valid UTF-8 ({offset})")


def _bad_offset(value: Any) -> str | None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            char = ord(value[exc.start])
            offset = len(value[: exc.start].encode("utf-8", "surrogateescape"))
            what = f"byte 0x{char - 0xDC00:02x}" if 0xDC80 <= char <= 0xDCFF else f"U+{char:04X}"
            return f"{what} at offset {offset}"
        return None
    if isinstance(value, list | tuple):
        for item in value:
            found = _bad_offset(item)
            if found is not None:
                return found
    return None


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


# -- our own process logs ------------------------------------------------------------------------


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        import json

        return json.dumps(
            {
                "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
        )


def setup_logging(verbose: int = 0, quiet: bool = False, fmt: str = "text") -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose > 0 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-5s %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger("logs")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


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
