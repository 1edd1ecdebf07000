"""Domain errors. Each carries the exit code the CLI turns it into; nothing below the CLI prints."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    """Success, including a query that returned no rows."""
    QUERY = 1
    """The SQL was rejected (syntax, unknown view, sandbox)."""
    USAGE = 2
    """Bad flag, bad value, bad configuration file."""
    UNAVAILABLE = 3
    """Redis or the data directory cannot be reached."""
    INTERRUPTED = 130
    """Ctrl-C."""


class LogsError(Exception):
    """Base of every error a user may see as `logs: error: <message>`."""

    exit_code: int = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ConfigError(LogsError):
    exit_code = ExitCode.USAGE


class UsageError(LogsError):
    exit_code = ExitCode.USAGE


class QueryError(LogsError):
    exit_code = ExitCode.QUERY


class RedisUnavailable(LogsError):
    exit_code = ExitCode.UNAVAILABLE


class RedisRefused(RedisUnavailable):
    """Redis answered but will not let us in (credentials, permissions): waiting will not help."""


class DataUnavailable(LogsError):
    exit_code = ExitCode.UNAVAILABLE


class BadEntry(Exception):
    """A stream entry that cannot become a row; `reason` goes to the dead-letter stream."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def one_line(exc: BaseException) -> str:
    """`Type: message` on one line, at most 300 characters: how an unexpected error is told in
    one log line or one `logs: error:` line."""
    return f"{type(exc).__name__}: {flat(str(exc))}"[:300]


def flat(text: str) -> str:
    """A multi-line message on one line. Delta's errors chain their causes on lines of their
    own (`Generic error` / `  ↳ Unable to copy data to file` / `  ↳ File too large`, coloured):
    the causes are what a user needs, so they are kept, joined with `: `."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    parts = [line.strip().lstrip("↳").strip() for line in text.splitlines()]
    return ": ".join(part for part in parts if part)
