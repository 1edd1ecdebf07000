"""Query results -> bytes on stdout or in a file, one writer per format.

Rows stream through in chunks (nothing but `table` caps them). TIMESTAMPTZ values are RFC 3339
UTC with `Z` in every text format, so a value can be pasted back into `--since`; a naive
TIMESTAMP is no instant in UTC and is written as it is, without a zone. json/jsonl nest the
JSON text of `attrs`/`fields` as objects. Writers write rows only: the table's `N rows` footer
goes to the `footer` callback the caller passes (stderr, in the CLI).
"""

from __future__ import annotations

import collections
import contextlib
import csv
import shutil
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any

from queries.formats import BINARY, EXTENSIONS, Format, pick_format

if TYPE_CHECKING:
    import duckdb

CHUNK = 10_000
TABLE_ROWS = 40
__all__ = ["BINARY", "EXTENSIONS", "WRITERS", "Format", "Result", "pick_format"]
JSON_COLUMNS = {"attrs", "fields"}
_NUMERIC = ("INT", "DECIMAL", "DOUBLE", "FLOAT", "REAL", "NUMERIC")


class Result:
    """A DuckDB result waiting to be fetched."""

    def __init__(
        self, cursor: duckdb.DuckDBPyConnection, names: list[str], types: list[str]
    ) -> None:
        self.cursor, self.names, self.types = cursor, names, types

    @classmethod
    def of(cls, cursor: duckdb.DuckDBPyConnection) -> Result:
        description = cursor.description or []
        return cls(cursor, [d[0] for d in description], [str(d[1]).upper() for d in description])

    def chunks(self, size: int = CHUNK) -> Iterator[list[tuple[Any, ...]]]:
        while True:
            rows = self.cursor.fetchmany(size)
            if not rows:
                return
            yield rows

    def arrow_reader(self, batch_rows: int = 131_072) -> Any:
        """The rows not fetched yet, as Arrow (for parquet and for counting long tables)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "extra copy" advice: we need the DB-API result
            return self.cursor.to_arrow_reader(batch_rows)


# -- value conversions -------------------------------------------------------------------------


def rfc3339(value: datetime) -> str:
    """TIMESTAMPTZ -> `...Z` (UTC); a naive TIMESTAMP keeps its wall time and gets no zone."""
    if value.tzinfo is None:
        return value.isoformat()
    return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def text_value(value: Any, null: str = "") -> str:
    """A value as csv/tsv/markdown text."""
    if value is None:
        return null
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list | tuple):
        return _dumps(value).decode()
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, timedelta | time | date):
        return str(value)
    if isinstance(value, int):  # beyond 64 bits (HUGEINT)
        return str(value)
    raise TypeError


def _dumps(value: Any) -> bytes:
    import orjson

    # No OPT_NAIVE_UTC: a naive TIMESTAMP is not UTC, so it keeps no zone.
    options = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
    try:
        return orjson.dumps(value, default=_json_default, option=options)
    except orjson.JSONEncodeError:
        # orjson refuses integers beyond 64 bits without consulting `default`.
        import json

        return json.dumps(value, default=str, ensure_ascii=False).encode()


def _json_rows(result: Result) -> Iterator[bytes]:
    import orjson

    names = result.names
    nested = [
        i
        for i, (n, t) in enumerate(zip(names, result.types, strict=True))
        if t == "JSON" or (n in JSON_COLUMNS and t == "VARCHAR")
    ]
    for rows in result.chunks():
        for row in rows:
            record = dict(zip(names, row, strict=True))
            for i in nested:
                text = row[i]
                if isinstance(text, str) and text[:1] in ("{", "["):
                    with contextlib.suppress(orjson.JSONDecodeError):
                        record[names[i]] = orjson.loads(text)
            yield _dumps(record)


# -- writers ------------------------------------------------------------------------------------


def write_jsonl(result: Result, out: IO[str], **_: Any) -> int:
    count = 0
    batch: list[str] = []
    for line in _json_rows(result):
        batch.append(line.decode())
        count += 1
        if len(batch) >= CHUNK:
            out.write("\n".join(batch) + "\n")
            batch = []
    if batch:
        out.write("\n".join(batch) + "\n")
    return count


def write_json(result: Result, out: IO[str], **_: Any) -> int:
    """A JSON array, one row per line, streamed."""
    count = 0
    out.write("[")
    for line in _json_rows(result):
        out.write(("\n" if count == 0 else ",\n") + line.decode())
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def write_csv(result: Result, out: IO[str], header: bool = True, **_: Any) -> int:
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(result.names)
    count = 0
    for rows in result.chunks():
        writer.writerows([text_value(v) for v in row] for row in rows)
        count += len(rows)
    return count


_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _tsv_line(cells: list[str]) -> str:
    return "\t".join(c.translate(_TSV_ESCAPES) for c in cells) + "\n"


def write_tsv(result: Result, out: IO[str], header: bool = True, **_: Any) -> int:
    """Tab-separated values as `cut`, `sort` and Postgres' text COPY read them: no quoting;
    a backslash, tab, newline or carriage return inside a value is written `\\\\`, `\\t`,
    `\\n`, `\\r`; NULL is empty (as in csv)."""
    if header:
        out.write(_tsv_line(result.names))
    count = 0
    for rows in result.chunks():
        out.write("".join(_tsv_line([text_value(v) for v in row]) for row in rows))
        count += len(rows)
    return count


def _cell(value: Any, null: str = "NULL") -> str:
    text = text_value(value, null)
    return text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


def write_markdown(result: Result, out: IO[str], **_: Any) -> int:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |\n"

    out.write(line(result.names))
    out.write("|" + "|".join("---:" if _numeric(t) else "---" for t in result.types) + "|\n")
    count = 0
    for rows in result.chunks():
        out.write("".join(line([_cell(v, "") for v in row]) for row in rows))
        count += len(rows)
    return count


def write_vertical(result: Result, out: IO[str], **_: Any) -> int:
    """One `column | value` line per field, a header per record (psql `\\x`)."""
    width = max((len(n) for n in result.names), default=0)
    count = 0
    for rows in result.chunks():
        parts = []
        for row in rows:
            count += 1
            parts.append(f"-[ RECORD {count} ]".ljust(width + 12, "-") + "\n")
            parts.extend(
                f"{n.ljust(width)} | {_cell(v)}\n" for n, v in zip(result.names, row, strict=True)
            )
        out.write("".join(parts))
    return count


def write_parquet(result: Result, out: IO[bytes], **_: Any) -> int:
    """zstd Parquet, timestamps in microseconds UTC, streamed batch by batch."""
    import pyarrow.parquet as pq

    reader = result.arrow_reader()
    count = 0
    with pq.ParquetWriter(out, reader.schema, compression="zstd", coerce_timestamps="us") as w:
        for batch in reader:
            w.write_batch(batch)
            count += batch.num_rows
    return count


def _numeric(duck_type: str) -> bool:
    return any(k in duck_type for k in _NUMERIC) and not duck_type.endswith("[]")


def write_table(
    result: Result,
    out: IO[str],
    max_rows: int = TABLE_ROWS,
    width: int | None = None,
    footer: Callable[[str], None] | None = None,
    **_: Any,
) -> int:
    """DuckDB-style box: at most `max_rows` rows (head and tail). The exact `N rows (M shown)`
    footer is not a row: it goes to `footer` (the CLI's stderr), after `out` is flushed.
    `width` None = the rows' full width (piped output)."""
    limit = max_rows if max_rows >= 0 else None
    if limit is None:
        rows = [r for chunk in result.chunks() for r in chunk]
        total, head, tail = len(rows), rows, list[tuple[Any, ...]]()
    else:
        first = result.cursor.fetchmany(limit + 1)
        if len(first) <= limit:
            total, head, tail = len(first), first, list[tuple[Any, ...]]()
        else:
            head = first[: (limit + 1) // 2]
            rest, tail = _count_and_tail(result, first[len(head) :], limit - len(head))
            total = len(head) + rest
    summary = _draw(out, result, head, tail, total, width)
    if footer is not None:
        out.flush()
        footer(summary)
    return total


def _count_and_tail(
    result: Result, seen: list[tuple[Any, ...]], keep: int
) -> tuple[int, list[tuple[Any, ...]]]:
    """Count the rest of a long result in Arrow (no Python objects per row) and keep the last
    `keep` rows; `seen` are rows already fetched after the head."""
    rest = 0
    last: collections.deque[Any] = collections.deque()
    for batch in result.arrow_reader():
        rest += batch.num_rows
        if batch.num_rows:
            last.append(batch)
            while sum(b.num_rows for b in last) - last[0].num_rows >= keep:
                last.popleft()
    tail = list(seen)
    for batch in last:
        columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        tail.extend(zip(*columns, strict=True))
    return len(seen) + rest, tail[-keep:] if keep else []


def _draw(
    out: IO[str],
    result: Result,
    head: list[tuple[Any, ...]],
    tail: list[tuple[Any, ...]],
    total: int,
    width: int | None,
) -> str:
    """Write the box; returns its footer line."""
    names, types = result.names, [t.lower() for t in result.types]
    body = [[_cell(v) for v in row] for row in head]
    rest = [[_cell(v) for v in row] for row in tail]
    natural = [
        max([len(names[i]), len(types[i])] + [len(r[i]) for r in body + rest])
        for i in range(len(names))
    ]
    keep, widths = _layout(natural, width)
    hidden = len(names) - len(keep)
    if hidden:
        # Like DuckDB: the leading columns, then one `…` column standing for the rest.
        names, types = [names[i] for i in keep] + ["…"], [types[i] for i in keep] + [""]
        body = [[r[i] for i in keep] + ["…"] for r in body]
        rest = [[r[i] for i in keep] + ["…"] for r in rest]
        widths = [*widths, 1]
    right = [_numeric(t.upper()) for t in types]

    def fit(text: str, i: int, align_right: bool = False, center: bool = False) -> str:
        w = widths[i]
        if len(text) > w:
            text = text[: max(w - 1, 0)] + "…"
        if center:
            return text.center(w)
        return text.rjust(w) if align_right else text.ljust(w)

    def rule(left: str, mid: str, end: str) -> str:
        return left + mid.join("─" * (w + 2) for w in widths) + end + "\n"

    def line(cells: list[str], center: bool = False) -> str:
        return (
            "│" + "│".join(f" {fit(c, i, right[i], center)} " for i, c in enumerate(cells)) + "│\n"
        )

    parts = [rule("┌", "┬", "┐"), line(names, True), line(types, True), rule("├", "┼", "┤")]
    parts.extend(line(cells) for cells in body)
    if tail:
        parts.extend(line(["·"] * len(names), True) for _ in range(3))
        parts.extend(line(cells) for cells in rest)
    parts.append(rule("└", "┴", "┘"))
    shown = len(head) + len(tail)
    footer = f"{total:,} row{'' if total == 1 else 's'}"
    if shown < total:
        footer += f" ({shown} shown)"
    if hidden:
        footer += f", {len(keep) + hidden} columns ({len(keep)} shown)"
    out.write("".join(parts))
    return footer


MIN_WIDTH = 10


def _layout(natural: list[int], width: int | None) -> tuple[list[int], list[int]]:
    """Which columns to show and how wide, to fit `width` characters (None: no limit).
    Columns shrink (widest first, down to MIN_WIDTH); when even that is too wide, trailing
    columns are hidden behind a `…` column."""
    keep = list(range(len(natural)))
    if width is None or _frame(natural) <= width:
        return keep, list(natural)
    floors = [min(w, MIN_WIDTH) for w in natural]
    while len(keep) > 1 and _frame([floors[i] for i in keep]) + 4 > width:
        keep.pop()
    widths = [natural[i] for i in keep]
    budget = width - (4 if len(keep) < len(natural) else 0)
    while _frame(widths) > budget:
        widest = max(range(len(widths)), key=widths.__getitem__)
        if widths[widest] <= MIN_WIDTH:
            break
        others = [w for i, w in enumerate(widths) if i != widest]
        target = max(MIN_WIDTH, widths[widest] - (_frame(widths) - budget))
        widths[widest] = max(target, min(max(others, default=MIN_WIDTH), widths[widest] - 1))
    return keep, widths


def _frame(widths: list[int]) -> int:
    return sum(widths) + 3 * len(widths) + 1


WRITERS: dict[Format, Callable[..., int]] = {
    Format.table: write_table,
    Format.csv: write_csv,
    Format.tsv: write_tsv,
    Format.json: write_json,
    Format.jsonl: write_jsonl,
    Format.markdown: write_markdown,
    Format.vertical: write_vertical,
    Format.parquet: write_parquet,
}


def terminal_width() -> int:
    return shutil.get_terminal_size((120, 24)).columns
