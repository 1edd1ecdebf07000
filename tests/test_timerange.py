"""`--since/--until` forms, the half-open window, and the hours it prunes to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest.errors import UsageError
from queries.timerange import Window, parse_time, window

NOW = datetime(2026, 11, 20, 10, 30, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", NOW - timedelta(seconds=90)),
        ("15m", NOW - timedelta(minutes=15)),
        ("1h", NOW - timedelta(hours=1)),
        ("2d", NOW - timedelta(days=2)),
        ("1w", NOW - timedelta(weeks=1)),
        ("1h30m", NOW - timedelta(hours=1, minutes=30)),
        ("now", NOW),
        ("today", datetime(2026, 11, 20, tzinfo=UTC)),
        ("yesterday", datetime(2026, 11, 19, tzinfo=UTC)),
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
        ("2026-11-20T10:00", datetime(2026, 11, 20, 10, tzinfo=UTC)),
        ("2026-11-20T10:00Z", datetime(2026, 11, 20, 10, tzinfo=UTC)),
        ("2026-11-20T10:00:00.5z", datetime(2026, 11, 20, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2026-11-20T11:00:00+01:00", datetime(2026, 11, 20, 10, tzinfo=UTC)),
        ("2026-11-20 10:00:00", datetime(2026, 11, 20, 10, tzinfo=UTC)),
        ("1795000000", datetime.fromtimestamp(1795000000, UTC)),
        ("1795000000.25", datetime.fromtimestamp(1795000000.25, UTC)),
    ],
)
def test_forms(text: str, expected: datetime) -> None:
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize("text", ["1x", "", "1.5h", "-1h", "h", "2026-13-01", "last week", "1mo"])
def test_bad_values_name_the_flag_and_the_valid_forms(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_time(text, NOW, "--until")
    message = str(caught.value)
    assert message.startswith(f'--until "{text}"')
    assert "1h30m" in message and "yesterday" in message
    assert caught.value.exit_code == 2


def test_window_resolves_both_ends_against_one_now() -> None:
    w = window("2h", "1h", now=NOW)
    assert (w.since, w.until) == (NOW - timedelta(hours=2), NOW - timedelta(hours=1))


def test_empty_window_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="is not before"):
        window("1h", "2h", now=NOW)
    with pytest.raises(UsageError):
        window("now", "now", now=NOW)


def test_window_is_half_open_and_prunes_hours() -> None:
    w = Window(datetime(2026, 11, 20, 9, 30, tzinfo=UTC), datetime(2026, 11, 20, 11, tzinfo=UTC))
    assert w.contains(datetime(2026, 11, 20, 9, 30, tzinfo=UTC))
    assert not w.contains(datetime(2026, 11, 20, 11, tzinfo=UTC))
    assert [h for h in ("08", "09", "10", "11") if w.overlaps_hour("2026-11-20", h)] == ["09", "10"]
    assert Window().overlaps_hour("1999-01-01", "00")
    assert not Window().bounded and w.bounded


def test_datetimes_pass_through_as_utc() -> None:
    naive = datetime(2026, 11, 20, 10)
    w = window(naive, None, now=NOW)
    assert w.since == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert w.until is None
