"""The row query of the columnar lanes: a frame of scalar values (a column per key of the
entries, null where an entry has none) -> the `logs` rows `records.decode` makes of the same
entries, value for value, and the indexes of the rows it cannot make with certainty.

Two eager steps: each column's value is computed once into a `__` column, which the row's checks
and its output then share. Text times and level words are read by Arrow's kernels; everything
else by Polars expressions. See columnar.py for what a row is left to the per-entry path for.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ingest.absent_keys import absent_cuts, cut_absent
from ingest.formats.jsondocs import SPECIAL_KEYS
from ingest.formats.levels import LEVEL_FAST as _LEVEL_FAST
from ingest.formats.levels import LEVEL_NUMBERS as _LEVEL_NUMBERS
from ingest.formats.times import MAX_US as _MAX_US
from ingest.formats.times import MIN_US as _MIN_US
from ingest.records import ALIASES, CONDITIONAL

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

# The per-entry decoder's fast time form; its seconds are parsed by fromisoformat, which refuses
# a 60th second or a 24th hour, so the pattern does too.
RFC3339_Z = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?Z$"
# `"key":null` as Polars encodes an absent struct field, with its trailing comma.
_ABSENT_FIELD = r'"(?:[^"\\]|\\.)*":null,?'
_TS_KEYS = frozenset(ALIASES["ts"])
_LEVEL_KEYS = frozenset(ALIASES["level"])


def frame_rows(
    df: pl.DataFrame,
    keys: dict[str, str],
    ids: Sequence[bytes],
    nested: pa.Array | None,
    docs: Sequence[bytes] | None,
) -> tuple[pa.Table, list[int]]:
    """Rows of a frame of scalar values (`keys`: column -> the entry's key; null: absent), and
    the indexes of rows left to the per-entry path. `nested`: rows holding a nested value;
    `docs`: the rows' raw JSON text, if they have one.

    Two eager steps: each column's value is computed once into a `__` column, which the row's
    checks and its output then share. (Eager, not one lazy query: planning and optimising a
    lazy query cost ~1 ms of a 5,000-row chunk's ~9 ms here, and there is nothing to push down
    in a frame already in memory.)"""
    import polars as pl
    import pyarrow as pa

    from ingest.lake.schema import LOG_COLUMN_NAMES, arrow_schema
    from ingest.lake.writer import partition_columns

    # The ids as a column of the frame, not a literal: a frame with no scalar column at all
    # (`{}`, only nested values) has no height of its own.
    sid = pl.Series("__sid", ids, dtype=pl.Binary).cast(pl.String)
    df = df.hstack([sid]) if df.width else sid.to_frame()
    frame_schema = df.schema  # built anew on each access
    dtypes = {key: frame_schema[column] for column, key in keys.items()}
    col = {key: pl.col(column) for column, key in keys.items()}
    # Text times and levels in their fast forms, by Arrow's kernels (2-5x cheaper than the same
    # as Polars expressions); null where the form does not hold.
    native = _native_values(df, keys, dtypes)
    if native:
        df = df.hstack(list(native.values()))

    ok: list[pl.Expr] = []
    if nested is not None:
        ok.append(pl.lit(pl.Series(nested, dtype=pl.Boolean)).not_())
    # An integral float (5.0) reads the same whether the entry said `5` (an int in attrs) or
    # `5.0`: rows holding one are taken only if their raw text says float (`_said_floats`).
    floats = {k: c for c, k in keys.items() if dtypes[k] == pl.Float64}
    integral = [col[k].is_not_null() & (col[k] == col[k].floor()) for k in floats]
    # Beyond 2**53 (and for the infinities 1e400 reads as) floats do not say which int it was.
    exact = [(col[k].abs() < 2**53) | col[k].is_null() for k in floats]
    # Documents of a schema that needs more than aliases (jsondocs.special) go one by one.
    special = [col[k].is_not_null() for k in SPECIAL_KEYS if k in dtypes]
    if "log" in dtypes and "stream" in dtypes:
        special.append(col["log"].is_not_null() & col["stream"].is_not_null())
    if special:
        ok.append(pl.any_horizontal(special).not_())
    if dtypes.get("_ts_source", pl.String) != pl.String:
        ok.append(col["_ts_source"].is_null())  # replaced by a string when the time is missing

    chosen: dict[str, pl.Expr] = {}
    """key -> 'this key feeds its column in this row' (the best-ranked present alias)."""
    # The stream id's milliseconds: ingested_at, and the time of rows without one.
    step: dict[str, pl.Expr] = {
        "__ms": pl.col("__sid").str.head(pl.col("__sid").str.find("-", literal=True)).cast(pl.Int64)
    }
    for column, names in ALIASES.items():
        any_present: pl.Expr = pl.lit(False)
        parts = []
        for key in (n for n in names if n in dtypes):
            present = col[key].is_not_null()
            if key in CONDITIONAL:  # `name` counts only beside `levelname` or `v`
                beside = [col[k].is_not_null() for k in CONDITIONAL[key] if k in dtypes]
                present = present & (pl.any_horizontal(beside) if beside else pl.lit(False))
            chosen[key] = present & any_present.not_()
            any_present = any_present | present
            if docs is None and column not in ("ts", "trace_id") and dtypes[key] == pl.String:
                # ANSI codes are cut from columns by records.decode: rows holding one go there.
                # (JSON text with an escaped ESC never gets here: see _GUARD.)
                ok.append(present.not_() | col[key].str.contains("\x1b", literal=True).not_())
            fast = (
                pl.col(native[key].name)
                if key in native
                else _fast_value(column, col[key], dtypes[key])
            )
            parts.append(pl.when(chosen[key]).then(fast))
        if not parts:
            continue
        step[f"__has_{column}"] = any_present
        step[f"__{column}"] = pl.coalesce(parts) if len(parts) > 1 else parts[0]
        ok.append(pl.col(f"__has_{column}").not_() | pl.col(f"__{column}").is_not_null())

    def value(column: str, default: pl.Expr | None = None) -> pl.Expr:
        """The column's value (null where the entry has no key for it), or `default` there."""
        if f"__{column}" not in step:
            return pl.lit(None, pl.String) if default is None else default
        if default is None:
            return pl.col(f"__{column}")
        return pl.when(pl.col(f"__has_{column}")).then(pl.col(f"__{column}")).otherwise(default)

    ms = pl.col("__ms")
    trace, service, host = value("trace_id"), value("service"), value("host")
    has_ts = pl.col("__has_ts") if "__ts" in step else pl.lit(False)
    attrs, cuts = _attrs(df, keys, chosen, has_ts)
    out = df.with_columns(**step).select(
        ts=value("ts", ms * 1000).cast(pl.Datetime("us", "UTC")),
        level=value("level", pl.lit("INFO")),
        service=pl.when(service.is_null() | (service == ""))
        .then(pl.lit("unknown"))
        .otherwise(service),
        host=pl.when(host.is_null() | (host == "")).then(pl.lit("unknown")).otherwise(host),
        message=value("message", pl.lit("")),
        trace_id=pl.when(trace == "").then(pl.lit(None, pl.String)).otherwise(trace),
        attrs=attrs,
        stream_id=pl.col("__sid"),
        ingested_at=(ms * 1000).cast(pl.Datetime("us", "UTC")),
        _ok=pl.all_horizontal(ok) if ok else pl.lit(True),
        _integral=pl.any_horizontal(integral) if integral else pl.lit(False),
        _exact=pl.all_horizontal(exact) if exact else pl.lit(True),
    )
    good = out.get_column("_ok") & ~out.get_column("_integral")
    if not good.all() and docs is not None:
        doubt = out.get_column("_ok") & out.get_column("_integral") & out.get_column("_exact")
        if doubt.any():
            said = _said_float_rows(df, floats, doubt.arg_true().to_list(), docs)
            if said:
                good = good.clone().scatter(said, True)
    if good.all():
        taken, not_taken = out, []
    else:
        taken = out.filter(good)
        not_taken = (~good).arg_true().to_list()

    schema = arrow_schema()
    arrays = []
    for name in LOG_COLUMN_NAMES[:-2]:
        column = taken.get_column(name).to_arrow()
        if name == "attrs":
            column = cut_absent(column, cuts)
        arrays.append(column.cast(schema.field(name).type))
    date, hour = partition_columns(arrays[0])
    return pa.Table.from_arrays([*arrays, date, hour], schema=schema), not_taken


def _native_values(
    df: pl.DataFrame, keys: dict[str, str], dtypes: dict[str, pl.DataType]
) -> dict[str, pl.Series]:
    """key -> the value a text time or level key gives its column (`_fast_value`), computed
    with Arrow's kernels, as a `__native` column."""
    import polars as pl

    out = {}
    for column, key in keys.items():
        if dtypes[key] != pl.String:
            continue
        if key not in _TS_KEYS and key not in _LEVEL_KEYS:
            continue
        # large_string: what Arrow's kernels below take (string_view is not).
        text = df.get_column(column).to_arrow(compat_level=pl.CompatLevel.oldest())
        values = _rfc3339_arrow(text) if key in _TS_KEYS else _level_arrow(text)
        if values is not None:
            out[key] = values.alias(f"__native{column}")
    return out


def _rfc3339_arrow(text: pa.Array) -> pl.Series | None:
    """`_rfc3339_us` by Arrow's ISO-8601 cast of the whole seconds and the first six fraction
    digits; None when some date in the fast form does not exist (30 February), for
    `_rfc3339_us` to decide row by row."""
    import polars as pl
    import pyarrow as pa
    import pyarrow.compute as pc

    valid = pc.match_substring_regex(text, RFC3339_Z)
    if not pc.all(valid).as_py():
        text = pc.if_else(valid, text, pa.scalar(None, text.type))
    # `YYYY-MM-DDTHH:MM:SS.ffffff` at most, without the `Z`: the cast reads it as UTC.
    trimmed = pc.utf8_rtrim(pc.utf8_slice_codeunits(text, 0, 26), "Z")
    try:
        us = pc.cast(pc.cast(trimmed, pa.timestamp("us")), pa.int64())
    except pa.ArrowInvalid:
        return None
    low = pc.min(us).as_py()
    if low is not None and low < _MIN_US:  # year 0
        us = pc.if_else(
            pc.less(us, pa.scalar(_MIN_US, pa.int64())), pa.scalar(None, pa.int64()), us
        )
    return pl.Series(us, dtype=pl.Int64)


def _level_arrow(text: pa.Array) -> pl.Series:
    """The level words of `_LEVEL_FAST` (null for any other text), by Arrow's hash lookup."""
    import polars as pl
    import pyarrow.compute as pc

    words, levels = _level_table()
    found = pc.index_in(text, value_set=words)
    return pl.Series(pc.take(levels, found), dtype=pl.String)


@functools.cache
def _level_table() -> tuple[pa.Array, pa.Array]:
    """`_LEVEL_FAST` as Arrow arrays: its words (large_string, like the text), their levels."""
    import pyarrow as pa

    return pa.array(list(_LEVEL_FAST), pa.large_string()), pa.array(list(_LEVEL_FAST.values()))


def _fast_value(column: str, value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """The value a key gives `column` when it is in a fast form, else null. (Text levels, and
    text times unless some date does not exist, come from `_native_values` instead.)"""
    import polars as pl

    if column == "ts":
        if dtype == pl.String:
            return _rfc3339_us(value)
        if dtype == pl.Int64:
            return _epoch_us(value)
    elif column == "level":
        if dtype == pl.Int64:
            return value.replace_strict(_LEVEL_NUMBERS, default=None, return_dtype=pl.String)
    elif dtype == pl.String:
        return value
    return pl.lit(None, pl.Int64 if column == "ts" else pl.String)


def _rfc3339_us(col: pl.Expr) -> pl.Expr:
    """`YYYY-MM-DDTHH:MM:SS[.f…]Z` to µs as records.parse_ts does: whole seconds, then the first
    six fraction digits, truncated."""
    import polars as pl

    seconds = (
        col.str.slice(0, 19)
        .str.to_datetime("%Y-%m-%dT%H:%M:%S", time_unit="us", strict=False)
        .dt.epoch("us")
    )
    fraction = (
        col.str.slice(20).str.strip_suffix("Z").str.slice(0, 6).str.pad_end(6, "0").cast(pl.Int64)
    )
    valid = col.str.contains(RFC3339_Z) & (seconds >= _MIN_US)
    return pl.when(valid).then(seconds + fraction)


def _epoch_us(col: pl.Expr) -> pl.Expr:
    """Integer epoch seconds, ms or µs by magnitude (records._epoch_to_us); nanoseconds, which
    need a float division there, are left to the per-entry path."""
    import polars as pl

    magnitude = col.abs()
    us = (
        pl.when(magnitude < 100_000_000_000)
        .then(col * 1_000_000)
        .when(magnitude < 100_000_000_000_000)
        .then(col * 1000)
        .when(magnitude < 100_000_000_000_000_000)
        .then(col)
    )
    in_range = col.is_between(-(10**17) + 1, 10**17 - 1) & us.is_between(_MIN_US, _MAX_US)
    return pl.when(in_range).then(us)


def _attrs(
    df: pl.DataFrame, keys: dict[str, str], chosen: dict[str, pl.Expr], has_ts: pl.Expr
) -> tuple[pl.Expr, list[tuple[str, str]]]:
    """Every key not feeding a column, as sorted-key JSON, exactly as records.decode writes it
    once the absent keys are cut out by the cuts returned (`cut_absent`).

    Polars encodes an absent key as `"key":null`; with no literal `null` in the raw entries,
    every `null` in the text is one of those, and is cut out."""
    import polars as pl

    column_of = {key: column for column, key in keys.items()}
    present = set(column_of)
    # A column's best-ranked key never stays in attrs.
    # (A conditional alias is not always taken when present, nor is what ranks below it.)
    firsts = (
        next(n for n in names if n in present) for names in ALIASES.values() if present & set(names)
    )
    top = {n for n in firsts if n not in CONDITIONAL} if present else set()
    names = present - top
    ts_keys = [n for n in ALIASES["ts"] if n in present]
    if not ts_keys or df.get_column(column_of[ts_keys[0]]).null_count():
        names.add("_ts_source")  # some rows take their time from the stream id
    if not names:
        return pl.lit("{}"), []
    fields, nullable = [], []
    ordered = sorted(names)  # as records.decode writes attrs, and as `absent_cuts` expects
    for name in ordered:
        value = pl.col(column_of[name]) if name in column_of else pl.lit(None, pl.String)
        if name == "_ts_source":
            if df.schema.get(column_of.get(name, ""), pl.String) != pl.String:
                value = pl.lit(None, pl.String)  # rows holding one are left to records.decode
            value = pl.when(has_ts).then(value).otherwise(pl.lit("stream_id"))
            nullable.append(name)
        elif name in chosen:
            value = pl.when(chosen[name].not_()).then(value)
            nullable.append(name)
        elif df.get_column(column_of[name]).null_count():
            nullable.append(name)
        fields.append(value.alias(name))
    encoded = pl.struct(fields).struct.json_encode()
    if any(_needs_escape(n) for n in nullable):
        return encoded.str.replace_all(_ABSENT_FIELD, "").str.replace(r",\}$", "}"), []
    return encoded, absent_cuts(ordered, nullable)


def _said_float_rows(
    df: pl.DataFrame, floats: dict[str, str], rows: list[int], docs: Sequence[bytes]
) -> list[int]:
    """Those of `rows` whose integral float values (`floats`: key -> column) are all written as
    floats in their raw text."""
    values = df.select(list(floats.values()))[rows].rows()
    return [
        i
        for i, row in zip(rows, values, strict=True)
        if _said_floats(
            docs[i], [k for k, v in zip(floats, row, strict=True) if v is not None and v == v // 1]
        )
    ]


def _said_floats(doc: bytes, keys: list[str]) -> bool:
    """Whether the JSON text `doc` writes the number of each key as a float (`5.0`, `5e0`), not
    as an integer (`5`). A key found nowhere as written (escaped in the text, or with characters
    a pattern would need to escape) counts as no: the entry goes to `records.decode`.

    Nested values never reach here, and inside a string every quote is escaped, so `"key":`
    followed by a number is the key itself."""
    for key in keys:
        if _needs_escape(key):
            return False
        found = re.search(rb'"%b"[ \t]*:[ \t]*(-?[0-9][0-9.eE+-]*)' % re.escape(key.encode()), doc)
        if found is None or not any(c in found.group(1) for c in b".eE"):
            return False
    return True


def _needs_escape(name: str) -> bool:
    return any(ch in '"\\' or ch < " " or ch == "\x7f" for ch in name)
