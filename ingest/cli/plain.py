"""The parts of the `logs` edge that need no Typer: one-line errors and exit codes, settings from
flags, our own log lines.

`logs sql` runs on these before Typer is imported (cli/fast.py); cli/common.py builds the Typer
side (option declarations, the `edge` decorator) on them, so both paths fail alike.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ingest.errors import ExitCode, LogsError, UsageError

if TYPE_CHECKING:
    from ingest import config


def resolve(config_file: str | None, **flags: Any) -> config.Resolved:
    """Settings from flags (only those given), env, the config file and defaults."""
    from ingest import config  # not at import: `logs --version` needs no settings

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


def guard(work: Callable[[], object], keep: tuple[type[BaseException], ...] = ()) -> int:
    """Run a command's work and return its exit code: domain errors become one line on stderr
    and their code, never a traceback. Exceptions in `keep` pass through (Typer's Exit)."""
    try:
        work()
        return ExitCode.OK
    except keep:
        raise
    except LogsError as exc:
        error(str(exc), exc.hint)
        return exc.exit_code
    except KeyboardInterrupt:
        note("interrupted")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # `logs sql ... | head`: the reader left; exit quietly (Python signal docs recipe).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return ExitCode.OK
    except Exception as exc:
        if os.environ.get("LOGS_DEBUG"):
            raise
        from ingest.errors import one_line

        refused = _redis_refusal(exc)
        if refused is not None:
            error(refused, "README, 'Redis permissions', lists what each command needs")
            return ExitCode.UNAVAILABLE
        error(f"unexpected {one_line(exc)}", "rerun with LOGS_DEBUG=1 for the traceback")
        return 1


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


def bad_offset(value: Any) -> str | None:
    """Where a command-line value stops being UTF-8: Python hands such an argument over as a str
    with lone surrogates (surrogateescape), which would fail later, deep in DuckDB or redis-py."""
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
            found = bad_offset(item)
            if found is not None:
                return found
    return None


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
