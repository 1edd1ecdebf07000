"""The ingest fast lane: a whole batch of JSON entries decoded at once, in Arrow and Polars.

`records.decode` takes one entry at a time in Python (~5 µs each). The common shipper shape, one
field holding a flat JSON object, is decoded here column-wise instead, in native code that
releases the GIL (~2-3 µs of CPU each), so it runs on decode threads beside the Redis reads.

Exactness is the rule: a row this lane emits is the row `records.decode` produces, value for
value (tests/test_columnar.py holds both to it). Whatever the lane cannot take with certainty goes
back to `records.decode`, by index; that is also where dead letters are decided:

- raw text: invalid UTF-8, raw newlines, lone-surrogate escapes, `NaN`/`Infinity`, ANSI
  escapes (records.decode cuts them from columns), and any literal `null` (only without one
  does an absent key read the same as a null value);
- values: nested objects and arrays, integral floats written as integers (a column of floats
  reads `5` as 5.0: the raw text tells which it was), keys whose values change type within a
  batch (the Arrow reader refuses those: the batch is bisected);
- columns: time, level, service, host, message or trace values outside the fast forms:
  time as `YYYY-MM-DDTHH:MM:SS[.fraction]Z` or integer epoch s/ms/µs, levels from the word
  table or syslog/pino numbers, the other columns as strings;
- schemas that need more than aliases (formats/jsondocs.py: OTLP, Docker json-file, ...).

Plain-text entries have a lane of their own (`decode_text`, formats/textlane.py).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from ingest.consume.rowquery import frame_rows

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

    from ingest.formats.registry import Formats

MIN_CHUNK = 32
"""A chunk the Arrow reader refuses is split in two until the refused entries are isolated;
chunks this small go to the per-entry decoder whole."""

# Raw text that sends an entry to the per-entry decoder.
_GUARD = r"null|NaN|Infinity|[\r\n]|\\u[dD][89abcdefABCDEF]|\\u001[bB]"
_STRING_FIELDS: set[str] = set()
"""Keys the Arrow reader once typed as timestamps (it does so for ISO-looking strings): they are
read as strings from then on."""


def decode_json(ids: Sequence[bytes], docs: Sequence[bytes]) -> tuple[pa.Table, list[int]]:
    """Rows (the `logs` schema, date/hour included) for the entries this lane decodes exactly,
    and the indexes of the others, for `records.decode`.

    `docs[i]` is the single field value of entry `ids[i]`, a JSON object's text."""
    import pyarrow as pa

    from ingest.lake.schema import arrow_schema

    positions = _clean(docs)
    whole = len(positions) == len(docs)
    left = set() if whole else set(range(len(docs))).difference(positions)
    tables = []
    refused: list[int] = []
    for parsed, chunk in _read_chunks(docs, positions, refused):
        # Most calls parse every doc in one go: no need to gather ids by position then.
        whole_chunk = len(chunk) == len(ids)
        table, not_taken = _rows(
            parsed,
            ids if whole_chunk else [ids[i] for i in chunk],
            docs if whole_chunk else [docs[i] for i in chunk],
        )
        tables.append(table)
        left.update(chunk[i] for i in not_taken)
    left.update(refused)
    if not tables:
        return arrow_schema().empty_table(), sorted(left)
    return pa.concat_tables(tables), sorted(left)


def decode_text(
    ids: Sequence[bytes], texts: Sequence[bytes], formats: Formats | None = None
) -> tuple[pa.Table, list[int]]:
    """Like `decode_json`, for entries of one plain-text field: `texts[i]` is its value. Lines
    are read by the text formats in a batch (formats/textlane.py); logfmt lines become JSON
    and go through `decode_json`; what neither takes is left, for `records.decode`."""
    import polars as pl
    import pyarrow as pa

    from ingest.formats import textlane
    from ingest.formats.registry import DEFAULT
    from ingest.lake.schema import LOG_COLUMN_NAMES, arrow_schema
    from ingest.lake.writer import partition_columns

    text, positions = _utf8(texts)
    whole = len(positions) == len(ids)
    sids = pl.Series(ids if whole else [ids[i] for i in positions], dtype=pl.Binary)
    batch = textlane.read_batch(text, sids.cast(pl.String), formats or DEFAULT)
    left = set(range(len(texts))).difference(positions)
    left.update(positions[i] for i in batch.left)
    tables = []
    schema = arrow_schema()
    if batch.taken:
        rows = batch.frame.to_arrow()
        arrays = [rows.column(n).cast(schema.field(n).type) for n in LOG_COLUMN_NAMES[:-2]]
        date, hour = partition_columns(arrays[0])
        tables.append(pa.Table.from_arrays([*arrays, date, hour], schema=schema))
    if batch.logfmt:
        logfmt_rows = [positions[i] for i in batch.logfmt]
        table, not_taken = decode_json([ids[i] for i in logfmt_rows], batch.logfmt_json)
        tables.append(table)
        left.update(logfmt_rows[i] for i in not_taken)
    if not tables:
        return schema.empty_table(), sorted(left)
    return pa.concat_tables(tables), sorted(left)


MIN_GROUP = 256
"""Field-per-column entries are decoded per key set; smaller sets are not worth a Polars call
(~5 ms fixed) and go to the per-entry decoder."""


def decode_fields(
    ids: Sequence[bytes], entries: Sequence[Sequence[bytes]]
) -> tuple[pa.Table, list[int]]:
    """Like `decode_json`, for entries of a field per column: `entries[i]` is `[k1, v1, k2,
    v2, ...]`, three fields or more (one or two fields take other shapes in records.decode).
    Entries are grouped by their keys, in order; a group's values are all strings."""
    import polars as pl
    import pyarrow as pa

    from ingest.lake.schema import arrow_schema

    groups: dict[tuple[bytes, ...], list[int]] = {}
    for i, fields in enumerate(entries):
        groups.setdefault(tuple(fields[::2]), []).append(i)
    tables, left = [], []
    for names, members in groups.items():
        try:
            keys = {f"_{j}": name.decode() for j, name in enumerate(names)}
        except UnicodeDecodeError:
            keys = {}
        # Repeated keys (the last one wins in records.decode) and small groups: per entry.
        if len(members) < MIN_GROUP or len(set(names)) != len(names) or not keys:
            left.extend(members)
            continue
        columns = [
            pl.Series([entries[i][2 * j + 1] for i in members], dtype=pl.Binary)
            for j in range(len(names))
        ]
        try:
            df = pl.DataFrame([c.cast(pl.String) for c in columns], schema=list(keys))
        except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError):
            left.extend(members)  # some value is not UTF-8: records.decode dead-letters it
            continue
        table, not_taken = frame_rows(df, keys, [ids[i] for i in members], None, None)
        tables.append(table)
        left.extend(members[i] for i in not_taken)
    if not tables:
        return arrow_schema().empty_table(), sorted(left)
    return pa.concat_tables(tables), sorted(left)


def _clean(docs: Sequence[bytes]) -> list[int]:
    """Positions of the docs whose raw text passes the guard."""

    text, positions = _utf8(docs)
    clean = text.str.contains(_GUARD).not_()
    if clean.all():
        return positions
    return [p for p, ok in zip(positions, clean.to_list(), strict=True) if ok]


def _utf8(values: Sequence[bytes]) -> tuple[pl.Series, list[int]]:
    """The values that are UTF-8, as a String series, and their positions (invalid UTF-8 is
    records.decode's to dead-letter)."""
    import polars as pl

    series = pl.Series(values, dtype=pl.Binary)
    try:
        return series.cast(pl.String), list(range(len(values)))
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError):  # not all UTF-8
        valid = [_is_utf8(v) for v in values]
        text = series.filter(pl.Series(valid, dtype=pl.Boolean)).cast(pl.String)
        return text, [i for i, ok in enumerate(valid) if ok]


def _is_utf8(doc: bytes) -> bool:
    try:
        doc.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _read_chunks(
    docs: Sequence[bytes], positions: list[int], refused: list[int]
) -> Iterator[tuple[pa.Table, list[int]]]:
    """Parse the docs at `positions` with the Arrow JSON reader, bisecting around what it refuses
    (mixed types, duplicate keys, two objects on one line...); refused positions land in
    `refused`."""
    stack = [positions]
    while stack:
        chunk = stack.pop()
        if not chunk:
            continue
        parsed = _read(docs if len(chunk) == len(docs) else [docs[i] for i in chunk])
        if parsed is not None and parsed.num_rows == len(chunk):
            yield parsed, chunk
        elif len(chunk) <= MIN_CHUNK:
            refused.extend(chunk)
        else:
            half = len(chunk) // 2
            stack += [chunk[half:], chunk[:half]]


def _read(lines: Sequence[bytes]) -> pa.Table | None:
    import pyarrow as pa
    import pyarrow.json as pj

    blob = b"\n".join(lines)
    block = max(1 << 20, 2 * max(map(len, lines)) + 2)
    for _ in range(2):
        schema = pa.schema([(n, pa.string()) for n in sorted(_STRING_FIELDS)])
        options = pj.ParseOptions(
            explicit_schema=schema if len(schema) else None, unexpected_field_behavior="infer"
        )
        try:
            parsed = pj.read_json(
                io.BytesIO(blob),
                read_options=pj.ReadOptions(block_size=block),
                parse_options=options,
            )
        except pa.ArrowInvalid:
            return None
        stamped = [f.name for f in parsed.schema if pa.types.is_timestamp(f.type)]
        if not stamped:
            return parsed
        if len(_STRING_FIELDS) > 1000:
            _STRING_FIELDS.clear()
        _STRING_FIELDS.update(stamped)
    return None


def _rows(
    parsed: pa.Table, ids: Sequence[bytes], docs: Sequence[bytes]
) -> tuple[pa.Table, list[int]]:
    """The `logs` rows of one parsed chunk (`docs`, its raw text), and the indexes of rows left
    to the per-entry path."""
    import polars as pl
    import pyarrow as pa
    import pyarrow.compute as pc

    # Keys become positional column names (`_0`, `_1`...): a key may be empty, look like a
    # Polars pattern (`^ts$`, `*`) or clash with a name used here. Nested values never reach
    # Polars (very deep ones crash its Arrow import): only whether a row has one matters.
    keys: dict[str, str] = {}
    """column -> the JSON key it holds."""
    columns: list[pa.ChunkedArray] = []
    nested = None
    scalar = (pa.string(), pa.int64(), pa.float64(), pa.bool_())
    for key, column in zip(parsed.column_names, parsed.columns, strict=True):
        if column.type in scalar:
            keys[f"_{len(columns)}"] = key
            columns.append(column)
        else:
            valid = pc.is_valid(column)
            nested = valid if nested is None else pc.or_(nested, valid)
    df = pl.from_arrow(pa.table(columns, names=list(keys)) if columns else pa.table({}))
    assert isinstance(df, pl.DataFrame)
    return frame_rows(df, keys, ids, nested, docs)
