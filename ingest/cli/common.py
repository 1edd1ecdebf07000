"""What every `logs` command shares: option declarations, settings resolution, the error edge.

The only place (with the command modules) that writes to the terminal. Light imports only.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ingest import config
from ingest.errors import ExitCode, LogsError

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

            error(f"unexpected {one_line(exc)}", "rerun with LOGS_DEBUG=1 for the traceback")
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


# -- our own process logs ------------------------------------------------------------------------


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
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
    and an exit code in the same place."""
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
