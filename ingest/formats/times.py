"""Times written in text -> microseconds since the epoch, UTC. Pure (stdlib only).

A text format's pattern captures the parts of its time in named groups (see `TIME_GROUPS`);
`parts_to_us` turns them into an instant, the same way for every format:

- a zone in the text (`Z`, `+01:00`, `+0100`, `+01`, `UTC`, `GMT`) wins; a naive time is read in
  the `timezone` setting (default UTC; ambiguous wall times take the earlier instant);
- a time without a year (RFC 3164, klog, Android) takes the most recent year that puts it no
  more than a day after the ingest time, so a Dec 31 line read on Jan 1 is last year's; a time
  without a date (logback's `HH:mm:ss.SSS`) takes the most recent day that puts it no more than
  an hour after;
- two-digit years are 1969-2068 (POSIX `%y`); a 60th second (a leap second) is read as the
  59th; fractions keep six digits, truncated.

The columnar text lane (ingest/formats/textlane.py) computes the same arithmetic in Polars;
tests/test_textlane.py holds the two to one answer.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ingest.errors import ConfigError

MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
MONTH_WORDS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"

TIME_GROUPS = ("Y", "y2", "mo", "b", "d", "H", "M", "S", "f", "z", "epoch")
"""Named groups a pattern may use for its time: four- or two-digit year, month as a number or
an English abbreviation, day, hours, minutes, seconds, fraction digits, zone; or `epoch`,
seconds since 1970 with an optional fraction."""

_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_US = 86_400_000_000
YEARLESS_SLACK_US = _DAY_US
"""A year-less time may lie this far after the ingest time (clocks and zones disagree)."""
DATELESS_SLACK_US = 3_600_000_000
"""A date-less time may lie this far after the ingest time."""
MIN_US = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _US
MAX_US = (datetime(9999, 12, 31, 23, tzinfo=UTC) - _EPOCH) // _US


@functools.cache
def zone(name: str) -> ZoneInfo | None:
    """The IANA zone `name`; None for UTC (the fast case)."""
    if name.upper() in ("UTC", "Z", "ETC/UTC", "GMT"):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"timezone: unknown zone {name!r} (an IANA name, e.g. Europe/Berlin)"
        ) from None


def check_timezone(name: str) -> str:
    zone(name)
    return name


def offset_seconds(text: str) -> int | None:
    """`Z`, `UTC`, `GMT`, `+01:00`, `+0100`, `+01` -> seconds east of UTC; None if not a zone
    this reader knows, or an offset of a day or more."""
    if text in ("Z", "z", "UTC", "GMT"):
        return 0
    if len(text) not in (3, 5, 6) or text[0] not in "+-":
        return None
    digits = text[1:].replace(":", "", 1) if len(text) == 6 and text[3] == ":" else text[1:]
    if not digits.isdigit() or not digits.isascii() or len(digits) not in (2, 4):
        return None
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        return None
    seconds = hours * 3600 + minutes * 60
    return -seconds if text[0] == "-" else seconds


def fraction_us(digits: str | None) -> int:
    """`5` -> 500000, `123456789` -> 123456 (truncated, as everywhere else in loglake)."""
    if not digits:
        return 0
    return int(digits[:6].ljust(6, "0"))


def wall_us(
    year: int, month: int, day: int, hour: int, minute: int, second: int, micro: int
) -> int | None:
    """A wall time as if it were UTC, in µs; None when no such date or time exists."""
    if second == 60:
        second = 59
    try:
        dt = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    except (ValueError, OverflowError):
        return None
    return (dt - _EPOCH) // _US


def local_to_utc(wall: int, tz: ZoneInfo | None) -> int | None:
    """A wall time (`wall_us`) read in `tz` -> UTC µs. Ambiguous times (the hour repeated when
    clocks go back) take the earlier instant; times that do not exist (skipped when clocks go
    forward) are read with the offset in force before the change, as Python's zoneinfo does."""
    if tz is None:
        return wall
    dt = (_EPOCH + wall * _US).replace(tzinfo=tz)  # fold=0: the earlier of two
    offset = dt.utcoffset()
    if offset is None:
        return wall
    return wall - offset // _US


def _year_of(us: int) -> int:
    return (_EPOCH + us * _US).year


def parts_to_us(parts: dict[str, str | None], tz: ZoneInfo | None, now_us: int) -> int | None:
    """The instant the time groups of one match (`TIME_GROUPS`) name, in UTC µs; None when they
    name no valid time. `now_us`: the ingest time, for times without a year or a date."""
    epoch = parts.get("epoch")
    if epoch:
        whole, _, fraction = epoch.partition(".")
        us = int(whole) * 1_000_000 + fraction_us(fraction)
        return us if MIN_US <= us <= MAX_US else None
    hour_text, minute_text = parts.get("H"), parts.get("M")
    if not hour_text or not minute_text:
        return None
    hour, minute = int(hour_text), int(minute_text)
    second = int(parts.get("S") or 0)
    micro = fraction_us(parts.get("f"))
    if hour > 23 or minute > 59 or second > 60:
        return None
    zone_text = parts.get("z")
    offset = None
    if zone_text:
        offset = offset_seconds(zone_text)
        if offset is None:
            return None
    month_name = parts.get("b")
    month_text = parts.get("mo")
    month = MONTHS.get(month_name, 0) if month_name else int(month_text) if month_text else 0
    day_text = parts.get("d")
    year_text, short_year = parts.get("Y"), parts.get("y2")

    def instant(year: int, month: int, day: int) -> int | None:
        wall = wall_us(year, month, day, hour, minute, second, micro)
        if wall is None:
            return None
        if offset is not None:
            return wall - offset * 1_000_000
        return local_to_utc(wall, tz)

    if not month or not day_text:
        # A time of day alone: the most recent day that puts it within the slack.
        if month or day_text:
            return None
        now_day = _EPOCH + (now_us // _DAY_US) * _DAY_US * _US
        for back in (-1, 0, 1, 2):
            date = now_day - timedelta(days=back)
            found = instant(date.year, date.month, date.day)
            if found is not None and found <= now_us + DATELESS_SLACK_US:
                return found
        return None
    day = int(day_text)
    if year_text:
        return _checked(instant(int(year_text), month, day))
    if short_year:
        two = int(short_year)
        return _checked(instant(2000 + two if two < 69 else 1900 + two, month, day))
    # No year: the most recent one within the slack (Feb 29 looks back to a leap year).
    year = _year_of(now_us) + 1
    for candidate in range(year, year - 9, -1):
        found = instant(candidate, month, day)
        if found is not None and found <= now_us + YEARLESS_SLACK_US:
            return found
    return None


def _checked(us: int | None) -> int | None:
    return us if us is not None and MIN_US <= us <= MAX_US else None


def _epoch_to_us(number: float) -> int | None:
    """Epoch seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude."""
    magnitude = abs(number)
    if magnitude < 1e11:
        us = number * 1_000_000
    elif magnitude < 1e14:
        us = number * 1_000
    elif magnitude < 1e17:
        us = number
    else:
        us = number / 1_000
    us = int(round(us)) if isinstance(us, float) else int(us)
    return us if MIN_US <= us <= MAX_US else None


def parse_ts(value: Any, tz: ZoneInfo | None = None) -> int | None:
    """A JSON or field value's event time in microseconds UTC, or None when the value is not a
    time we understand: RFC 3339 / ISO 8601 with any offset (naive ones read in `tz`, UTC when
    None), epoch s/ms/µs/ns by magnitude, as a number or digits."""
    if type(value) is str:
        # Fast path for the commonest form, `2026-11-23T01:02:03[.fff…]Z`: whole seconds are
        # parsed once per distinct second, the fraction by hand.
        n = len(value)
        if n >= 20 and value[-1] == "Z" and value[10] == "T" and (n == 20 or value[19] == "."):
            base = _SECONDS.get(value[:19])
            if base is None:
                base = _second_us(value[:19])
            if base is not None:
                fraction = value[20:-1]
                if not fraction:
                    return base
                if fraction.isdecimal():
                    return base + int(fraction[:6].ljust(6, "0"))
        text = value.strip()
        if not text.isdecimal():
            try:
                dt = _fromisoformat(text)
            except ValueError:
                return _parse_ts_slow(text, tz)
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=tz or UTC)  # naive: the timezone setting's wall time
            # Exact: whole seconds are exact in a float, microseconds added as an int.
            return _in_range(
                int(dt.replace(microsecond=0).timestamp()) * 1_000_000 + dt.microsecond
            )
        return _epoch_to_us(int(text)) if text else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return _epoch_to_us(value)
    if isinstance(value, float):
        return _epoch_to_us(value) if value == value else None
    return None


_fromisoformat = datetime.fromisoformat
_SECONDS: dict[str, int] = {}


def _second_us(text: str) -> int | None:
    try:
        dt = _fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        return None
    if len(_SECONDS) > 100_000:
        _SECONDS.clear()
    us = int(dt.timestamp()) * 1_000_000
    _SECONDS[text] = us
    return us


def _parse_ts_slow(text: str, tz: ZoneInfo | None) -> int | None:
    """Fractional or signed epoch numbers, lowercase `z`/`t`, comma fractions."""
    if not text:
        return None
    try:
        return _epoch_to_us(float(text)) if text[0].isdigit() or text[0] in "-." else None
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.upper().replace(",", ".", 1))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz or UTC)
    return _in_range(int(dt.replace(microsecond=0).timestamp()) * 1_000_000 + dt.microsecond)


def _in_range(us: int) -> int | None:
    """An offset can carry 0001-01-01 below year 1, which no partition can hold."""
    return us if us >= MIN_US else None


def rfc3339(us: int) -> str:
    """µs UTC -> `YYYY-MM-DDTHH:MM:SS.ffffffZ`, the form both decode lanes read fastest."""
    # The date and time of day are formatted once per second: records of one batch share their
    # seconds, and the datetime arithmetic is most of the cost (1.7 -> 0.35 µs per call).
    second, micro = divmod(us, 1_000_000)
    prefix = _SECOND_TEXT.get(second)
    if prefix is None:
        dt = _EPOCH + second * 1_000_000 * _US
        prefix = (
            f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:"
            f"{dt.second:02d}."
        )
        if len(_SECOND_TEXT) > 10_000:
            _SECOND_TEXT.clear()
        _SECOND_TEXT[second] = prefix
    return f"{prefix}{micro:06d}Z"


_SECOND_TEXT: dict[int, str] = {}
