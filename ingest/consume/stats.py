"""What one `logs ingest` process has done so far (exported as metrics by metrics.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Stats:
    read: int = 0
    """Entries read from the stream, redeliveries included."""
    ingested: int = 0
    """Rows committed to the lake."""
    dead_lettered: int = 0
    commits: int = 0
    commit_seconds: float = 0.0
    last_batch_rows: int = 0
    reconnects: int = 0
    """Redis connection losses survived."""
    claimed: int = 0
    """Entries taken over from dead or stalled consumers."""
    trimmed_before_delivery: int = 0
    """Entries removed from the stream before the group read them (a lower bound on 6.2)."""
    gaps: int = 0
    """Gaps told (entries removed before delivery, counted or not)."""
    stream_resets: int = 0
    """Times the consumer group had vanished and was recreated."""
