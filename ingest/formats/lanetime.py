"""Times read off text lines a batch at a time: `times.parts_to_us`, column-wise, in Polars.

The same instants as the per-entry reader, to the microsecond: naive times in the `timezone`
setting (ambiguous ones the earlier; those a DST change skips are left to the per-entry path,
as null), years and dates inferred within the same slack, a 60th second read as the 59th.
Dates become day numbers by lookup (a batch holds few distinct dates). Imported only by the
columnar text lane (textlane.py).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from ingest.formats.times import (
    DATELESS_SLACK_US,
    MAX_US,
    MIN_US,
    MONTHS,
    YEARLESS_SLACK_US,
    offset_seconds,
)

if TYPE_CHECKING:
    import polars as pl

    from ingest.formats.registry import Formats

_DAY = 86_400_000_000


def _number(g: dict[str, pl.Expr], name: str, names: set[str]) -> pl.Expr:
    import polars as pl

    return g[name].cast(pl.Int64, strict=False) if name in names else pl.lit(None, pl.Int64)


def with_time(
    frame: pl.DataFrame, g: dict[str, pl.Expr], names: set[str], formats: Formats
) -> pl.DataFrame:
    """times.parts_to_us, column-wise, as `__us`: UTC µs, null where the lane cannot decide."""
    import polars as pl

    if "epoch" in names:
        whole = g["epoch"].str.extract(r"^([0-9]+)").cast(pl.Int64, strict=False)
        us = whole * 1_000_000 + _fraction(g["epoch"].str.extract(r"\.([0-9]+)$"))
        return frame.with_columns(__us=pl.when(us.is_between(MIN_US, MAX_US)).then(us))
    second = _number(g, "S", names).fill_null(0)
    zone = _zone_text(g, names)
    parts = {
        "__hour": _number(g, "H", names),
        "__minute": _number(g, "M", names),
        "__second": pl.when(second == 60).then(59).otherwise(second),
        "__second_ok": second <= 60,
        "__micro": _fraction(g["f"]) if "f" in names else pl.lit(0, pl.Int64),
        "__zoned": zone.is_not_null(),
        "__offset": _offset_us(frame, zone),
        "__month": g["b"].replace_strict(MONTHS, default=None, return_dtype=pl.Int64)
        if "b" in names
        else _number(g, "mo", names),
        "__day": _number(g, "d", names),
    }
    if "Y" in names:
        parts["__year"] = _number(g, "Y", names)
    elif "y2" in names:
        two = _number(g, "y2", names)
        parts["__year"] = pl.when(two < 69).then(2000 + two).otherwise(1900 + two)
    frame = frame.with_columns(**parts)
    hour, minute, month, day = (pl.col(c) for c in ("__hour", "__minute", "__month", "__day"))
    frame = frame.with_columns(
        # A zone this reader does not know makes the time no time (times.offset_seconds).
        __clock_ok=(hour <= 23)
        & (minute <= 59)
        & pl.col("__second_ok")
        & (pl.col("__zoned").not_() | pl.col("__offset").is_not_null()),
        __clock=hour * 3_600_000_000
        + minute * 60_000_000
        + pl.col("__second") * 1_000_000
        + pl.col("__micro"),
        __has_date=month.is_not_null() & day.is_not_null(),
        __now_year=pl.from_epoch("now", time_unit="us").dt.year().cast(pl.Int64),
    )
    clock_ok, clock, now = pl.col("__clock_ok"), pl.col("__clock"), pl.col("now")

    def utc_of(wall: pl.Expr) -> pl.Expr:
        if formats.tz is None:  # naive times are UTC: no branch needed
            return wall - pl.col("__offset").fill_null(0)
        local = _local(wall, formats)
        return pl.when(pl.col("__zoned")).then(wall - pl.col("__offset")).otherwise(local)

    # Dates become day numbers by lookup: a batch holds few distinct dates, so each is
    # computed once in Python (and checked to exist) instead of by ~20 column operations
    # per candidate year (that cost ~0.6 µs a line).
    years: dict[str, pl.Expr] = {}
    has_date = pl.col("__has_date")
    explicit = "__year" in parts and frame.get_column("__year").null_count() < frame.height
    if explicit:
        years["__k_explicit"] = pl.col("__year")
    yearless = "__year" not in parts or frame.get_column("__year").null_count() > 0
    if "d" in names and yearless:  # no year: the most recent within the slack
        # Next year's dates are at least Dec 31 in UTC: only an ingest time from Dec 30 on can
        # reach one within a day. Skipped when no line's can.
        now_date = pl.from_epoch("now", time_unit="us")
        year_end = frame.select(
            ((now_date.dt.month() == 12) & (now_date.dt.day() >= 30)).any()
        ).item()
        for k in range(0 if year_end else 1, 3):
            years[f"__k{k}"] = pl.col("__now_year") + 1 - k
    frame = frame.with_columns(
        **{key: year * 10_000 + month * 100 + day for key, year in years.items()}
    )
    frame = frame.with_columns(**_day_numbers(frame, list(years)))

    def instant(key: str) -> tuple[pl.Expr, pl.Expr]:
        valid = clock_ok & pl.col(f"{key}_days").is_not_null()
        return pl.when(valid).then(utc_of(pl.col(f"{key}_days") * _DAY + clock)), valid

    candidates: dict[str, pl.Expr] = {}
    branches: list[tuple[pl.Expr, pl.Expr]] = []
    """(when, value), tried in order, as parts_to_us decides row by row."""
    if explicit:
        utc, _ = instant("__k_explicit")
        candidates["__explicit"] = pl.when(utc.is_between(MIN_US, MAX_US)).then(utc)
        branches.append((has_date & pl.col("__year").is_not_null(), pl.col("__explicit")))
    tries: list[tuple[str, str]] = []
    if "d" in names:
        for key in (k for k in years if k != "__k_explicit"):
            utc, valid = instant(key)
            candidates[f"{key}_utc"], candidates[f"{key}_valid"] = utc, valid
            tries.append((f"{key}_utc", f"{key}_valid"))
        limit = now + YEARLESS_SLACK_US
        # (Every pattern with a day has a date wherever it has a time: no date-less branch.)
    else:  # a time of day alone: the most recent day within the slack
        for back in (-1, 0, 1, 2):
            utc = pl.when(clock_ok).then(utc_of((now // _DAY - back) * _DAY + clock))
            candidates[f"__y{back + 1}"], candidates[f"__y{back + 1}_valid"] = utc, clock_ok
            tries.append((f"__y{back + 1}", f"__y{back + 1}_valid"))
        limit = now + DATELESS_SLACK_US
    frame = frame.with_columns(**candidates)
    result = _first_within([(pl.col(u), pl.col(v)) for u, v in tries], limit)
    if "d" in names:
        branches.append((has_date, result))
        result = pl.lit(None, pl.Int64)
    for when, value in reversed(branches):
        result = pl.when(when).then(value).otherwise(result)
    return frame.with_columns(__us=result)


def _day_numbers(frame: pl.DataFrame, keys: list[str]) -> dict[str, pl.Expr]:
    """`<key>_days`: days since 1970-01-01 of each `yyyymmdd` key column, null for dates that
    do not exist (years 1-9999, as Python's datetime)."""
    import polars as pl

    found: set[int] = set()
    for key in keys:
        found.update(frame.get_column(key).drop_nulls().unique().to_list())
    table = {}
    for number in found:
        try:
            day = date(number // 10_000, number // 100 % 100, number % 100)
        except (ValueError, OverflowError):
            continue
        table[number] = day.toordinal() - _EPOCH_ORDINAL
    return {
        f"{key}_days": pl.col(key).replace_strict(table, default=None, return_dtype=pl.Int64)
        for key in keys
    }


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _first_within(candidates: list[tuple[pl.Expr, pl.Expr]], limit: pl.Expr) -> pl.Expr:
    """The first candidate that exists and is not after `limit`; null at the first one that
    exists as a date but whose instant the lane cannot tell (a DST gap), and when none is
    found among these (the per-entry path looks further back)."""
    import polars as pl

    result: pl.Expr = pl.lit(None, pl.Int64)
    for utc, valid in reversed(candidates):
        result = (
            pl.when(valid & utc.is_not_null() & (utc <= limit))
            .then(utc)
            .when(valid & utc.is_null())
            .then(pl.lit(None, pl.Int64))
            .otherwise(result)
        )
    return result


def _fraction(digits: pl.Expr) -> pl.Expr:
    import polars as pl

    return digits.str.slice(0, 6).str.pad_end(6, "0").cast(pl.Int64, strict=False).fill_null(0)


def _zone_text(g: dict[str, pl.Expr], names: set[str]) -> pl.Expr:
    import polars as pl

    zones = [g[n] for n in ("z", "z2") if n in names]
    if not zones:
        return pl.lit(None, pl.String)
    return pl.coalesce(zones) if len(zones) > 1 else zones[0]


def _offset_us(frame: pl.DataFrame, zone: pl.Expr) -> pl.Expr:
    """times.offset_seconds in µs (null for what it refuses), by lookup: a batch writes few
    distinct zones."""
    import polars as pl

    found = frame.select(zone.alias("zone")).to_series().drop_nulls().unique().to_list()
    table = {}
    for text in found:
        seconds = offset_seconds(text)
        if seconds is not None:
            table[text] = seconds * 1_000_000
    return zone.replace_strict(table, default=None, return_dtype=pl.Int64)


def _local(wall: pl.Expr, formats: Formats) -> pl.Expr:
    """A naive wall time read in the timezone setting; null where the lane cannot tell."""
    import polars as pl

    if formats.tz is None:
        return wall
    return (
        pl.from_epoch(wall, time_unit="us")
        .dt.replace_time_zone(formats.timezone, ambiguous="earliest", non_existent="null")
        .dt.epoch("us")
    )
