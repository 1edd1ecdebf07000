"""The text formats read a batch at a time, in Polars (the columnar text lane's first half).

`read_batch` gives, for a batch of text entries, the canonical document of every line it reads
with certainty, as the columns of one frame (`ts` as RFC 3339 text, `level`, `host`, `service`,
`message`, `_format` and each format's attributes; null where a document has no such key),
and leaves the rest to `registry.text_doc`, line by line. It reads exactly as text.py does: the
same patterns (Rust's regex reads them as Python's `re` does), the same arithmetic for times
(times.py), the same typing of attributes. Lines it leaves: line ends, ANSI codes or a BOM
(cleaning is the per-entry path's), what looks like JSON, CRI lines (their payload is read
again), RFC 5424 structured data, attributes that do not convert, times it cannot decide
(a date that does not exist, a wall time skipped by a DST change, Feb 29 without a year).
logfmt lines come back as JSON text, for the JSON lane.

Polars is imported inside the functions: this package stays light for everything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ingest.formats import logfmt
from ingest.formats.levels import LEVEL_FAST, LEVEL_LETTERS, LEVEL_NUMBERS
from ingest.formats.text import FACILITIES, LEVEL_GROUPS, TextFormat
from ingest.formats.times import (
    DATELESS_SLACK_US,
    MAX_US,
    MIN_US,
    MONTHS,
    YEARLESS_SLACK_US,
)

if TYPE_CHECKING:
    import polars as pl

    from ingest.formats.registry import Formats

_DAY = 86_400_000_000
_GUARD = r"[\r\n\x1b\x{feff}]|^[ \t]*\{"
"""Lines left to the per-entry path whatever their format."""
_LEFT_WHOLE = frozenset({"cri"})


@dataclass
class Batch:
    frame: Any
    """pl.DataFrame of the documents read, one row per line taken..."""
    taken: list[int]
    """...the positions of those lines..."""
    logfmt: list[int]
    """...positions of logfmt lines, and..."""
    logfmt_json: list[bytes]
    """...the JSON text each stands for..."""
    left: list[int]
    """...and the lines left to the per-entry path."""


def read_batch(texts: Sequence[str], now_us: Sequence[int], formats: Formats) -> Batch:
    """Read `texts` (lines as they arrived; `now_us[i]`: line i's ingest time)."""
    import polars as pl

    if formats.mine:  # the user's patterns may be Python-only regexes: every line goes there
        return Batch(pl.DataFrame(), [], [], [], list(range(len(texts))))
    frame = pl.DataFrame(
        {"text": pl.Series(texts, dtype=pl.String), "now": pl.Series(now_us, dtype=pl.Int64)}
    ).with_row_index("pos")
    guarded = frame.get_column("text").str.contains(_GUARD)
    left: list[int] = guarded.arg_true().to_list() if guarded.any() else []
    rest = frame.filter(guarded.not_()) if left else frame

    taken_frames, taken, logfmt_rows, logfmt_json = [], [], [], []
    if formats.logfmt and len(rest):
        is_logfmt = rest.get_column("text").str.contains(f"^(?:{logfmt.LINE})$")
        if is_logfmt.any():
            chosen = rest.filter(is_logfmt)
            logfmt_rows = chosen.get_column("pos").to_list()
            logfmt_json = _logfmt_json(chosen.get_column("text"))
            rest = rest.filter(is_logfmt.not_())
    for fmt in formats.builtin:
        if not len(rest):
            break
        matched = rest.get_column("text").str.contains(f"^(?:{fmt.pattern})")
        if not matched.any():
            continue
        chosen = rest.filter(matched)
        rest = rest.filter(matched.not_())
        if fmt.name in _LEFT_WHOLE:
            left.extend(chosen.get_column("pos").to_list())
            continue
        docs = _read(fmt, chosen, formats)
        ok = docs.get_column("__ok")
        if not ok.all():
            left.extend(chosen.get_column("pos").filter(ok.not_()).to_list())
            docs = docs.filter(ok)
        taken.extend(docs.get_column("__pos").to_list())
        taken_frames.append(docs.drop("__ok", "__pos"))
    if len(rest):
        taken.extend(rest.get_column("pos").to_list())
        taken_frames.append(rest.select(message=pl.col("text")))
    frames = [f for f in taken_frames if f.height]
    joined = pl.concat(frames, how="diagonal") if frames else pl.DataFrame()
    return Batch(joined, taken, logfmt_rows, logfmt_json, sorted(left))


def _read(fmt: TextFormat, chosen: pl.DataFrame, formats: Formats) -> pl.DataFrame:
    """The documents of the lines `fmt`'s pattern matched; `__ok` false where the lane cannot
    decide a line (it goes to the per-entry path)."""
    import polars as pl

    groups = chosen.get_column("text").str.extract_groups(f"^(?:{fmt.pattern})").struct.unnest()
    names = set(groups.columns)
    g = {name: pl.col(f"g_{name}") for name in names}
    frame = pl.concat(
        [chosen, groups.rename({name: f"g_{name}" for name in names})], how="horizontal"
    )

    def given(name: str) -> pl.Expr:
        """The group's value, null when it did not take part or holds `-` or nothing."""
        if name not in names:
            return pl.lit(None, pl.String)
        return pl.when(g[name].is_in(["", "-"]).not_()).then(g[name])

    out: dict[str, pl.Expr] = {"__pos": pl.col("pos"), "_format": pl.lit(fmt.name)}
    ok: list[pl.Expr] = []
    if fmt.has_time:
        has_time = (g["H"].is_not_null() if "H" in names else pl.lit(False)) | (
            g["epoch"].is_not_null() if "epoch" in names else pl.lit(False)
        )
        us = _time_us(g, names, formats)
        out["ts"] = pl.when(has_time).then(_rfc3339(us))
        ok.append(has_time.not_() | us.is_not_null())
    level = _level(fmt, g, names)
    if level is not None:
        out["level"] = level
    for name in ("host", "service", "trace_id"):
        if name in names:
            out[name] = given(name)
    if fmt.whole_message:
        out["message"] = pl.col("text")
    elif "message" in names:
        out["message"] = g["message"].fill_null("").str.strip_prefix("\ufeff")
    else:
        out["message"] = pl.lit("")
    if "pri" in names:
        facility = (g["pri"].cast(pl.Int64) // 8).replace_strict(
            dict(enumerate(FACILITIES)), default=None, return_dtype=pl.String
        )
        out["facility"] = pl.when(g["pri"].is_not_null()).then(facility)
    for name in fmt.attr_groups:
        value = given(name)
        kind = fmt.types.get(name)
        if kind is int:
            number = value.str.contains(r"^[0-9]{1,18}$")
            ok.append(value.is_null() | number)
            value = value.cast(pl.Int64, strict=False)
        elif kind is float:
            number = value.str.contains(r"^[0-9]+(?:\.[0-9]+)?$")
            ok.append(value.is_null() | number)
            value = value.cast(pl.Float64, strict=False)
        out[name] = value
    if "sd" in names:
        ok.append(given("sd").is_null())
    out["__ok"] = pl.all_horizontal(ok) if ok else pl.lit(True)
    return frame.select(**out)


def _level(fmt: TextFormat, g: dict[str, pl.Expr], names: set[str]) -> pl.Expr | None:
    import polars as pl

    parts: list[pl.Expr] = []
    for name in LEVEL_GROUPS:
        if name in names:
            word = g[name].replace_strict(
                LEVEL_FAST, default=g[name].str.to_uppercase(), return_dtype=pl.String
            )
            parts.append(pl.when(g[name] != "").then(word))
    if "lvl" in names:
        parts.append(g["lvl"].replace_strict(LEVEL_LETTERS, default=None, return_dtype=pl.String))
    if "pri" in names:
        parts.append(
            (g["pri"].cast(pl.Int64) % 8).replace_strict(
                LEVEL_NUMBERS, default=None, return_dtype=pl.String
            )
        )
    if fmt.status_level and "status" in names:
        first = g["status"].str.slice(0, 1)
        parts.append(
            pl.when(first == "5")
            .then(pl.lit("ERROR"))
            .when(first == "4")
            .then(pl.lit("WARN"))
            .otherwise(pl.lit("INFO"))
        )
    if not parts:
        return None
    return pl.coalesce(parts) if len(parts) > 1 else parts[0]


def _number(g: dict[str, pl.Expr], name: str, names: set[str]) -> pl.Expr:
    import polars as pl

    return g[name].cast(pl.Int64, strict=False) if name in names else pl.lit(None, pl.Int64)


def _time_us(g: dict[str, pl.Expr], names: set[str], formats: Formats) -> pl.Expr:
    """times.parts_to_us, column-wise: UTC µs, null where the lane cannot decide."""
    import polars as pl

    if "epoch" in names:
        whole = g["epoch"].str.extract(r"^([0-9]+)").cast(pl.Int64, strict=False)
        fraction = g["epoch"].str.extract(r"\.([0-9]+)$")
        us = whole * 1_000_000 + _fraction(fraction)
        return pl.when(us.is_between(MIN_US, MAX_US)).then(us)
    hour, minute = _number(g, "H", names), _number(g, "M", names)
    second = _number(g, "S", names).fill_null(0)
    micro = _fraction(g["f"]) if "f" in names else pl.lit(0, pl.Int64)
    clock_ok = (hour <= 23) & (minute <= 59) & (second <= 60)
    clock = (
        hour * 3_600_000_000
        + minute * 60_000_000
        + pl.when(second == 60).then(59).otherwise(second) * 1_000_000
        + micro
    )
    zone = _zone_text(g, names)
    offset = _offset_us(zone)
    if "b" in names:
        month = g["b"].replace_strict(MONTHS, default=None, return_dtype=pl.Int64)
    else:
        month = _number(g, "mo", names)
    day = _number(g, "d", names)

    def instant(year: pl.Expr, month: pl.Expr, day: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        """(UTC µs or null, whether the date and clock exist)."""
        valid = clock_ok & _date_ok(year, month, day)
        wall = _civil_days(year, month, day) * _DAY + clock
        utc = pl.when(zone.is_not_null()).then(wall - offset).otherwise(_local(wall, formats))
        return pl.when(valid).then(utc), valid

    now = pl.col("now")
    branches: list[tuple[pl.Expr, pl.Expr]] = []
    """(when, value), tried in order, as parts_to_us decides row by row."""
    has_date = month.is_not_null() & day.is_not_null()
    if "Y" in names or "y2" in names:
        if "Y" in names:
            year = _number(g, "Y", names)
        else:
            two = _number(g, "y2", names)
            year = pl.when(two < 69).then(2000 + two).otherwise(1900 + two)
        utc, _ = instant(year, month, day)
        branches.append(
            (has_date & year.is_not_null(), pl.when(utc.is_between(MIN_US, MAX_US)).then(utc))
        )
    if "d" in names:  # no year: the most recent within the slack
        this_year = pl.from_epoch(now, time_unit="us").dt.year().cast(pl.Int64)
        candidates = [instant(this_year + 1 - k, month, day) for k in range(3)]
        branches.append((has_date, _first_within(candidates, now + YEARLESS_SLACK_US)))
        branches.append((month.is_not_null() | day.is_not_null(), pl.lit(None, pl.Int64)))
    # A time of day alone: the most recent day within the slack.
    today = now // _DAY
    candidates = []
    for back in (-1, 0, 1, 2):
        wall = (today - back) * _DAY + clock
        utc = pl.when(zone.is_not_null()).then(wall - offset).otherwise(_local(wall, formats))
        candidates.append((pl.when(clock_ok).then(utc), clock_ok))
    result = _first_within(candidates, now + DATELESS_SLACK_US)
    for when, value in reversed(branches):
        result = pl.when(when).then(value).otherwise(result)
    return result


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


def _offset_us(zone: pl.Expr) -> pl.Expr:
    """times.offset_seconds in µs: null for what it refuses."""
    import polars as pl

    parts = zone.str.extract_groups(r"^([+-])([0-9]{2})(?::?([0-9]{2}))?$")
    sign = pl.when(parts.struct.field("1") == "-").then(-1).otherwise(1)
    hours = parts.struct.field("2").cast(pl.Int64, strict=False)
    minutes = parts.struct.field("3").cast(pl.Int64, strict=False).fill_null(0)
    numeric = pl.when((hours <= 23) & (minutes <= 59)).then(
        sign * (hours * 3600 + minutes * 60) * 1_000_000
    )
    return pl.when(zone.is_in(["Z", "z", "UTC", "GMT"])).then(0).otherwise(numeric)


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


def _date_ok(year: pl.Expr, month: pl.Expr, day: pl.Expr) -> pl.Expr:
    import polars as pl

    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days_in_month = (
        pl.when(month == 2)
        .then(pl.when(leap).then(29).otherwise(28))
        .when(month.is_in([4, 6, 9, 11]))
        .then(30)
        .otherwise(31)
    )
    return year.is_between(1, 9999) & month.is_between(1, 12) & (day >= 1) & (day <= days_in_month)


def _civil_days(year: pl.Expr, month: pl.Expr, day: pl.Expr) -> pl.Expr:
    """Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil)."""
    import polars as pl

    y = year - (month <= 2).cast(pl.Int64)
    era = pl.when(y >= 0).then(y).otherwise(y - 399) // 400
    yoe = y - era * 400
    shifted = pl.when(month > 2).then(month - 3).otherwise(month + 9)
    doy = (153 * shifted + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _rfc3339(us: pl.Expr) -> pl.Expr:
    """times.rfc3339, column-wise."""
    import polars as pl

    return pl.from_epoch(us, time_unit="us").dt.strftime("%Y-%m-%dT%H:%M:%S.%6fZ")


def _logfmt_json(lines: pl.Series) -> list[bytes]:
    """logfmt.to_json, column-wise."""
    import polars as pl

    pairs = lines.str.extract_all(f"{logfmt.KEY}=(?:{logfmt.QUOTED}|{logfmt.BARE})")
    fragments = pairs.list.eval(_pair_json(pl.element())).list.join(",")
    texts = pl.select(
        pl.concat_str([pl.lit('{"_format":"logfmt",'), pl.lit(fragments), pl.lit("}")])
    )
    return texts.to_series().cast(pl.Binary).to_list()


def _pair_json(pair: pl.Expr) -> pl.Expr:
    import polars as pl

    key = pair.str.extract(f"^({logfmt.KEY})=")
    value = pair.str.slice(key.str.len_chars() + 1)
    bare_json = value.str.starts_with('"') | value.str.contains(f"^(?:{logfmt.NUMBER}|true|false)$")
    return (
        pl.lit('"')
        + key
        + pl.lit('":')
        + pl.when(bare_json).then(value).otherwise(pl.lit('"') + value + pl.lit('"'))
    )
