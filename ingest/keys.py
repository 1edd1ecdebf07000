"""Every Redis key loglake uses, named in one place. Pure.

Keys derive from the stream's name, so several deployments can share one Redis: the stream
itself (producers XADD to it; the consumer group reads it), its dead letters, the scheduler's
lease.
"""

from __future__ import annotations

DEFAULT_STREAM = "logs"
DEFAULT_GROUP = "lake"


def dlq(stream: str) -> str:
    """The dead-letter stream: entries ingest could not turn into rows, with their reason."""
    return f"{stream}:dlq"


def scheduler_lease(stream: str) -> str:
    """The lease that lets one `logs schedule` of a deployment run jobs at a time."""
    return f"{stream}:scheduler:lease"


def scheduler_state(stream: str) -> str:
    """A copy of the scheduler's state file (last job runs), for `logs status` on any host."""
    return f"{stream}:scheduler:state"


def gaps(stream: str, group: str) -> str:
    """What ingest recorded of entries removed before `group` read them (ingest/gaps.py)."""
    return f"{stream}:gaps:{group}"


def lake_lock(lake_uri: str, name: str) -> str:
    """A lock of jobs on a shared lake (compaction, rollups): keyed by the lake, not the
    stream, since every deployment writing one bucket must agree on it."""
    import hashlib

    digest = hashlib.sha1(lake_uri.encode()).hexdigest()[:16]
    return f"loglake:lake:{digest}:{name}:lock"
