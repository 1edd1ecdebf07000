"""The text formats read a batch at a time, in Polars (the columnar text lane's first half).

`read_batch` gives, for a batch of text entries, the rows (the `logs` columns) of every line
it reads with certainty, the row `records.decode` makes of that line's canonical document, and
leaves the rest to `records.decode`, line by line. It reads exactly as text.py does: the
same patterns (Rust's regex reads them as Python's `re` does), the same arithmetic for times
(times.py), the same typing of attributes. Lines it leaves: line ends, ANSI codes or a BOM
(cleaning is the per-entry path's), what looks like JSON, CRI lines (their payload is read
again), RFC 5424 structured data, attributes that do not convert, times it cannot decide
(a date that does not exist, a wall time skipped by a DST change, Feb 29 without a year).
logfmt lines come back as JSON text, for the JSON lane.

Polars is imported inside the functions: this package stays light for everything else.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
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
    """pl.DataFrame of the rows read (the `logs` columns but date and hour)..."""
    taken: list[int]
    """...the positions of the lines they are..."""
    logfmt: list[int]
    """...positions of logfmt lines, and..."""
    logfmt_json: list[bytes]
    """...the JSON text each stands for..."""
    left: list[int]
    """...and the lines left to the per-entry path."""


def read_batch(texts: pl.Series, ids: pl.Series, formats: Formats) -> Batch:
    """Read `texts` (lines as they arrived, a String series) of the entries `ids` (their
    stream ids, a String series): rows, for `logs ingest`."""
    import polars as pl

    frame = pl.DataFrame({"text": texts, "sid": ids}).with_row_index("pos")
    frame = frame.with_columns(
        now=pl.col("sid").str.head(pl.col("sid").str.find("-", literal=True)).cast(pl.Int64) * 1000
    )
    taken_frames, taken, logfmt_rows, logfmt_json, left = [], [], [], [], []
    for fmt, chosen in _dispatch(frame, formats):
        if fmt == "left":
            left.extend(chosen.get_column("pos").to_list())
        elif fmt == "logfmt":
            logfmt_rows = chosen.get_column("pos").to_list()
            logfmt_json = _logfmt_json(chosen.get_column("text"))
        elif fmt is None:  # no format: the line is the message, its time the arrival time
            taken.extend(chosen.get_column("pos").to_list())
            taken_frames.append(
                chosen.select(
                    ts=pl.col("now").cast(pl.Datetime("us", "UTC")),
                    level=pl.lit("INFO"),
                    service=pl.lit("unknown"),
                    host=pl.lit("unknown"),
                    message=pl.col("text"),
                    trace_id=pl.lit(None, pl.String),
                    attrs=pl.lit('{"_ts_source":"stream_id"}'),
                    stream_id=pl.col("sid"),
                    ingested_at=pl.col("now").cast(pl.Datetime("us", "UTC")),
                )
            )
        else:
            rows = _rows(fmt, _read(fmt, chosen, formats))
            ok = rows.get_column("__ok")
            if not ok.all():
                left.extend(rows.get_column("__pos").filter(ok.not_()).to_list())
                rows = rows.filter(ok)
            taken.extend(rows.get_column("__pos").to_list())
            taken_frames.append(rows.drop("__ok", "__pos"))
    frames = [f for f in taken_frames if f.height]
    joined = pl.concat(frames) if frames else pl.DataFrame()
    return Batch(joined, taken, logfmt_rows, logfmt_json, sorted(left))


def read_docs(
    texts: Sequence[str], now_us: int, formats: Formats, defaults: dict[str, str]
) -> list[str | None]:
    """The canonical document of each line as JSON text (the columns a flag names filled where
    the line says nothing), for `logs send`; None for lines left to `registry.text_doc`."""
    import polars as pl

    out: list[str | None] = [None] * len(texts)
    frame = pl.DataFrame({"text": pl.Series(texts, dtype=pl.String)}).with_row_index("pos")
    frame = frame.with_columns(sid=pl.lit(f"{now_us // 1000}-0"), now=pl.lit(now_us))
    for fmt, chosen in _dispatch(frame, formats):
        if fmt == "left" or (fmt == "logfmt" and defaults):
            continue
        positions = chosen.get_column("pos").to_list()
        texts_json: list[str | None]
        if fmt == "logfmt":
            texts_json = [t.decode() for t in _logfmt_json(chosen.get_column("text"))]
        elif fmt is None:
            docs = chosen.select(message=pl.col("text"), __ok=pl.lit(True), __pos=pl.col("pos"))
            texts_json = _docs_json(docs, defaults)
        else:
            docs = _read(fmt, chosen, formats)
            positions = docs.get_column("__pos").to_list()
            texts_json = _docs_json(docs, defaults)
        for position, text in zip(positions, texts_json, strict=True):
            out[position] = text
    return out


def _docs_json(docs: pl.DataFrame, defaults: dict[str, str]) -> list[str | None]:
    """Each document as JSON text, absent keys left out; None where `__ok` is false or the
    time falls outside years 1000-9999 (what RFC 3339 text in four digits can say)."""
    import polars as pl

    from ingest.columnar import _cut_absent, _cuts

    columns: dict[str, pl.Expr] = {}
    ok = pl.col("__ok")
    for name in docs.columns:
        if name.startswith("__") or name in ("sid", "now"):
            continue
        value = pl.col(name)
        if name == "ts":
            ok = ok & (value.is_null() | value.is_between(_YEAR_1000_US, MAX_US))
            value = pl.from_epoch(value, time_unit="us").dt.strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        columns[name] = value
    for name, default in defaults.items():
        columns[name] = columns[name].fill_null(default) if name in columns else pl.lit(default)
    values = docs.select(**columns)
    nulls = {c: values.get_column(c).null_count() for c in values.columns}
    names = sorted(c for c, n in nulls.items() if n < values.height)
    text = values.select(pl.struct(names).struct.json_encode()).to_series().to_arrow()
    cuts = _cuts(names, [c for c in names if nulls[c]])
    if cuts:
        text = _cut_absent(text, cuts)
    good = docs.select(ok).to_series()
    return [t if g else None for t, g in zip(text.to_pylist(), good.to_list(), strict=True)]


_YEAR_1000_US = -30_610_224_000_000_000  # 1000-01-01T00:00:00Z


def _dispatch(frame: pl.DataFrame, formats: Formats) -> Iterator[tuple[Any, pl.DataFrame]]:
    """The lines of `frame` by the format that takes them, in the order formats are tried:
    ("left", lines for the per-entry path), ("logfmt", lines), (TextFormat, lines), and last
    (None, lines no format takes)."""
    if formats.mine:  # the user's patterns may be Python-only regexes: every line goes there
        yield "left", frame
        return
    guarded = frame.get_column("text").str.contains(_GUARD)
    if guarded.any():
        yield "left", frame.filter(guarded)
        frame = frame.filter(guarded.not_())
    if formats.logfmt and len(frame):
        is_logfmt = frame.get_column("text").str.contains(f"^(?:{logfmt.LINE})$")
        if is_logfmt.any():
            yield "logfmt", frame.filter(is_logfmt)
            frame = frame.filter(is_logfmt.not_())
    # Formats no line of the batch can start are not tried (a regex pass each, saved).
    firsts = set(frame.get_column("text").str.slice(0, 1).unique().to_list())
    for fmt in formats.builtin:
        if not len(frame):
            return
        if fmt.first_chars is not None and fmt.first_chars.isdisjoint(firsts):
            continue
        matched = frame.get_column("text").str.contains(f"^(?:{fmt.pattern})")
        if not matched.any():
            continue
        chosen = frame.filter(matched)
        frame = frame.filter(matched.not_())
        yield ("left" if fmt.name in _LEFT_WHOLE else fmt), chosen
    if len(frame):
        yield None, frame


_ROW_COLUMNS = ("ts", "level", "service", "host", "message", "trace_id")


def _rows(fmt: TextFormat, docs: pl.DataFrame) -> pl.DataFrame:
    """The rows of a format's documents, as records._row makes them: absent columns take
    their defaults, every other key goes to `attrs` (sorted-key JSON, absent keys cut)."""
    import polars as pl

    from ingest.columnar import _cut_absent, _cuts

    # Attributes null in every row are left out of the struct, not cut from each row's text
    # afterwards: a cut is a pass over every row (the generic formats' optional pid, thread,
    # logger, prefix... are mostly absent).
    nulls = {
        c: docs.get_column(c).null_count()
        for c in docs.columns
        if c not in _ROW_COLUMNS and not c.startswith("__") and c not in ("sid", "now")
    }
    names = sorted(c for c, n in nulls.items() if n < docs.height)
    nullable = [c for c in names if nulls[c]]
    ts_missing = docs.get_column("ts").null_count() if "ts" in docs.columns else docs.height
    fields = [pl.col(n) for n in names]
    if ts_missing:
        source: pl.Expr
        if "ts" in docs.columns:
            source = pl.when(pl.col("ts").is_null()).then(pl.lit("stream_id"))
            nullable.append("_ts_source")
        else:
            source = pl.lit("stream_id")
        fields.append(source.alias("_ts_source"))
        names = sorted([*names, "_ts_source"])
        fields.sort(key=lambda e: e.meta.output_name())
    attrs = pl.struct(fields).struct.json_encode()

    def column(name: str, default: pl.Expr) -> pl.Expr:
        return pl.col(name).fill_null(default) if name in docs.columns else default

    out = docs.select(
        ts=column("ts", pl.col("now")).cast(pl.Datetime("us", "UTC")),
        level=column("level", pl.lit("INFO")),
        service=column("service", pl.lit("unknown")),
        host=column("host", pl.lit("unknown")),
        message=pl.col("message"),
        trace_id=column("trace_id", pl.lit(None, pl.String)),
        attrs=attrs,
        stream_id=pl.col("sid"),
        ingested_at=pl.col("now").cast(pl.Datetime("us", "UTC")),
        __ok=pl.col("__ok"),
        __pos=pl.col("__pos"),
    )
    cuts = _cuts(names, nullable)
    if cuts:
        cut = _cut_absent(out.get_column("attrs").to_arrow(), cuts)
        out = out.with_columns(attrs=pl.Series("attrs", cut, dtype=pl.String))
    return out


def _read(fmt: TextFormat, chosen: pl.DataFrame, formats: Formats) -> pl.DataFrame:
    """The documents of the lines `fmt`'s pattern matched; `__ok` false where the lane cannot
    decide a line (it goes to the per-entry path)."""
    import polars as pl

    pattern, sliced = _lane_pattern(fmt)
    groups = chosen.get_column("text").str.extract_groups(pattern).struct.unnest()
    if sliced:  # the message is what follows the header
        head = groups.get_column("__head").str.len_chars()
        groups = groups.drop("__head").with_columns(
            message=chosen.get_column("text").str.slice(head)
        )
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

    out: dict[str, pl.Expr] = {
        "__pos": pl.col("pos"),
        "sid": pl.col("sid"),
        "now": pl.col("now"),
        "_format": pl.lit(fmt.name),
    }
    ok: list[pl.Expr] = []
    if fmt.has_time:
        # Staged, each step's values computed once into a column (one expression tree for the
        # whole time would evaluate its shared parts once per use: ~50x slower here).
        frame = _with_time(frame, g, names, formats)
        has_time = (g["H"].is_not_null() if "H" in names else pl.lit(False)) | (
            g["epoch"].is_not_null() if "epoch" in names else pl.lit(False)
        )
        us = pl.col("__us")
        out["ts"] = pl.when(has_time).then(us)
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


def _lane_pattern(fmt: TextFormat) -> tuple[str, bool]:
    """The pattern the lane extracts with, and whether the message is to be sliced off the
    line after it: a trailing `(?P<message>(?s:.*))` costs Rust's capture engine ~0.5 µs a
    line, and always holds what follows the rest of the match."""
    tail = "(?P<message>(?s:.*))"
    if fmt.pattern.endswith(tail) and fmt.pattern.count("(?P<message>") == 1:
        return f"^(?P<__head>{fmt.pattern[: -len(tail)]})", True
    return f"^(?:{fmt.pattern})", False


def _level(fmt: TextFormat, g: dict[str, pl.Expr], names: set[str]) -> pl.Expr | None:
    import polars as pl

    parts: list[pl.Expr] = []
    for name in LEVEL_GROUPS:
        if name in names:
            # As records._row reads text.py's `LEVEL_FAST.get(word) or word.upper()`.
            upper = g[name].str.to_uppercase()
            known_upper = upper.replace_strict(LEVEL_FAST, default=upper, return_dtype=pl.String)
            word = g[name].replace_strict(LEVEL_FAST, default=known_upper, return_dtype=pl.String)
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


def _with_time(
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
        "__offset": _offset_us(zone),
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
    if "d" in names:  # no year: the most recent within the slack
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
    """Whether the date exists (years 1-9999, as Python's datetime). Arithmetic, not
    when/then: this runs for every candidate year of every line."""
    import polars as pl

    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    february = (month == 2).cast(pl.Int64)
    days_in_month = (
        31 - february * (3 - leap.cast(pl.Int64)) - month.is_in([4, 6, 9, 11]).cast(pl.Int64)
    )
    return year.is_between(1, 9999) & month.is_between(1, 12) & day.is_between(1, days_in_month)


def _civil_days(year: pl.Expr, month: pl.Expr, day: pl.Expr) -> pl.Expr:
    """Days from 1970-01-01 to a date of years 1-9999 (H. Hinnant's days_from_civil, for
    non-negative years, where floor division needs no care)."""
    import polars as pl

    y = year - (month <= 2).cast(pl.Int64)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


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
