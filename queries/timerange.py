"""`--since` / `--until`: one parser for every command, resolved against one captured `now`.

Durations (`90s 15m 1h 2d 1w 1h30m`, meaning "now minus"), ISO dates and datetimes / RFC 3339
(naive = UTC, like the partitions), unix seconds, `now`, `today`, `yesterday` (UTC midnight).
A window is half-open: [since, until). Pure (stdlib only).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from ingest.errors import UsageError
from ingest.lake import layout

FORMS = (
    "expected 90s, 15m, 1h, 2d, 1w, 1h30m, 2026-11-20, 2026-11-20T10:00Z, "
    "a unix timestamp, now, today or yesterday"
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Patterns, compiled (and cached by re) on first use: most queries give no window.
_DURATION = r"(?:\d+[smhdw])+"
_DURATION_PART = r"(\d+)([smhdw])"
_UNIX = r"\d+(?:\.\d+)?"


def parse_time(text: str, now: datetime, flag: str = "--since") -> datetime:
    """One `--since`/`--until` value -> an aware UTC datetime; UsageError listing valid forms."""
    value = text.strip()
    lowered = value.lower()
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if lowered == "now":
        return now
    if lowered == "today":
        return midnight
    if lowered == "yesterday":
        return midnight - timedelta(days=1)
    if re.fullmatch(_DURATION, lowered):
        seconds = sum(int(n) * _UNITS[unit] for n, unit in re.findall(_DURATION_PART, lowered))
        try:
            return now - timedelta(seconds=seconds)
        except OverflowError:
            raise UsageError(f'{flag} "{text}": duration too long') from None
    if re.fullmatch(_UNIX, value):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            raise UsageError(f'{flag} "{text}": unix timestamp out of range') from None
    try:
        # fromisoformat takes `Z`, offsets and dates; RFC 3339 also allows a lowercase `z`.
        parsed = datetime.fromisoformat(value[:-1] + "Z" if value.endswith("z") else value)
    except ValueError:
        raise UsageError(f'{flag} "{text}": {FORMS}') from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # naive times are UTC, like the partitions
    return parsed.astimezone(UTC)


class Window(NamedTuple):
    """Event-time window [since, until); either end may be open."""

    since: datetime | None = None
    until: datetime | None = None

    @property
    def bounded(self) -> bool:
        return self.since is not None or self.until is not None

    def overlaps_hour(self, date: str, hour: str) -> bool:
        """Whether the hour partition `date/hour` can hold rows of this window."""
        if self.since is None and self.until is None:
            return True
        start = layout.hour_start(date, hour)
        if self.until is not None and start >= self.until:
            return False
        return not (self.since is not None and start + timedelta(hours=1) <= self.since)

    def contains(self, ts: datetime) -> bool:
        if self.since is not None and ts < self.since:
            return False
        return not (self.until is not None and ts >= self.until)


def window(
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    now: datetime | None = None,
) -> Window:
    """Resolve both ends against the same `now`; since must come before until."""
    now = now or datetime.now(UTC)
    start = _resolve(since, now, "--since")
    end = _resolve(until, now, "--until")
    if start is not None and end is not None and start >= end:
        raise UsageError(
            f"--since {_show(start)} is not before --until {_show(end)}: the window is empty",
            hint="the window is [since, until); e.g. --since 2h --until 1h",
        )
    return Window(start, end)


def _resolve(value: str | datetime | None, now: datetime, flag: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return parse_time(value, now, flag)


def _show(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")
