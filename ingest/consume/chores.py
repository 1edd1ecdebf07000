"""Which Redis errors ingest lives with. Ingest's own path (reading, acknowledging, the group it
reads with) must work or it stops; its chores (trimming, claiming others' entries, dead letters,
gap checks) may fail without stopping it: each failure is told once, the chore is skipped and
tried again a minute later, and its return is told too.

A Redis error is *transient* when waiting may cure it (loading, out of memory, read-only
replica, failing disk): those are outages, waited out with backoff. The others (no permission,
wrong type, a bad argument) are not: in a chore, the chore is skipped; on the path, ingest exits
3 with the error on one line (`Refused`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis

from ingest.errors import RedisRefused, flat

log = logging.getLogger("logs.ingest")

RETRY_AFTER = 60.0
"""Seconds a failed chore is skipped before it is tried again."""

_TRANSIENT_CLASSES = (
    redis.OutOfMemoryError,
    redis.ReadOnlyError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.MasterDownError,
)
_TRANSIENT_CODES = ("MISCONF", "BUSY ", "NOREPLICAS", "LOADING")


def transient(exc: redis.ResponseError) -> bool:
    """Waiting may cure it."""
    return isinstance(exc, _TRANSIENT_CLASSES) or str(exc).startswith(_TRANSIENT_CODES)


def describe(exc: redis.ResponseError) -> str:
    """The error as Redis said it: redis-py strips the code of the ones it knows (`NOPERM`)."""
    text = flat(str(exc))
    if isinstance(exc, redis.exceptions.NoPermissionError):
        return f"NOPERM {text}"
    return text


def refused(what: str, exc: redis.ResponseError, url: str) -> RedisRefused:
    """Ingest's own path refused: the one-line error it exits 3 with."""
    return RedisRefused(
        f"Redis at {url} refused {what}: {describe(exc)}",
        hint="README, 'Redis permissions', lists what each command needs",
    )


class Chores:
    """Runs the chores, remembering which fail."""

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer
        self._failing: dict[str, tuple[str, float]] = {}
        """Chore -> (what Redis said, when to try again)."""

    def due(self, name: str) -> bool:
        """Not failing, or failing long enough ago to try again."""
        failing = self._failing.get(name)
        return failing is None or time.monotonic() >= failing[1]

    def failing(self, name: str) -> str | None:
        """What Redis said when `name` last failed; None when it works."""
        failing = self._failing.get(name)
        return failing[0] if failing else None

    def run(self, name: str, step: Callable[[], object]) -> bool:
        """`step()`, unless it failed within the last minute; its non-transient Redis errors
        are told (once) and swallowed. True when it ran and succeeded."""
        if not self.due(name):
            return False
        try:
            step()
        except redis.ResponseError as exc:
            if transient(exc):
                raise  # an outage: the loop waits it out
            self.failed(name, exc)
            return False
        self.succeeded(name)
        return True

    def failed(self, name: str, exc: redis.ResponseError) -> None:
        said = describe(exc)
        previous = self._failing.get(name)
        if previous is None or previous[0] != said:
            log.warning(
                "consumer %s: %s skipped: Redis refused it (%s); ingest goes on without it, "
                "trying again every %.0f s",
                self.consumer,
                name,
                said,
                RETRY_AFTER,
            )
        self._failing[name] = (said, time.monotonic() + RETRY_AFTER)

    def succeeded(self, name: str) -> None:
        if self._failing.pop(name, None) is not None:
            log.warning("consumer %s: %s works again", self.consumer, name)
