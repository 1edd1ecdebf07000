"""What can go wrong with one request, as exceptions each protocol renders in its own form.

None of these is a `LogsError`: they never reach the CLI, they become HTTP answers. Transient
conditions (`Busy`, `Unavailable`) are the only ones a client should retry.
"""

from __future__ import annotations

RETRY_AFTER = 5
"""Seconds a client is asked to wait before retrying a transient refusal."""


class Problem(Exception):
    status = 500
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(Problem):
    """The body cannot be decoded; retrying the same bytes cannot help."""

    status = 400

    def __init__(self, message: str, event_number: int | None = None) -> None:
        super().__init__(message)
        self.event_number = event_number
        """Splunk HEC: the 0-based index of the first event that could not be read."""


class Unauthorized(Problem):
    """No credentials (`missing`) or credentials in a form we cannot read (`malformed`)."""

    status = 401

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class Forbidden(Problem):
    """Credentials that match no configured token."""

    status = 403


class NotFound(Problem):
    status = 404


class MethodNotAllowed(Problem):
    status = 405


class RequestTimeout(Problem):
    """The body stopped arriving."""

    status = 408


class TooLarge(Problem):
    """Over a configured limit; the message names the limit and its setting."""

    status = 413


class UnsupportedMedia(Problem):
    status = 415


class Busy(Problem):
    """Ingest is behind (lag or stream length over `receive_max_lag`): retry later."""

    status = 429
    retryable = True


class Unavailable(Problem):
    """Redis cannot be reached or refused the writes: retry later."""

    status = 503
    retryable = True
