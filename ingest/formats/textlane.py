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
from typing import TYPE_CHECKING, Any

from ingest.formats import logfmt
from ingest.formats.lanetime import with_time
from ingest.formats.levels import LEVEL_FAST, LEVEL_LETTERS, LEVEL_NUMBERS
from ingest.formats.text import FACILITIES, LEVEL_GROUPS, TextFormat
from ingest.formats.times import MAX_US

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

    from ingest.absent_keys import absent_cuts, cut_absent

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
    cuts = absent_cuts(names, [c for c in names if nulls[c]])
    if cuts:
        text = cut_absent(text, cuts)
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

    from ingest.absent_keys import absent_cuts, cut_absent

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
    cuts = absent_cuts(names, nullable)
    if cuts:
        cut = cut_absent(out.get_column("attrs").to_arrow(), cuts)
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
        frame = with_time(frame, g, names, formats)
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
