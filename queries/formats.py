"""Output formats of `logs sql`, and how one is chosen. Tiny and pure: the CLI imports it at
start-up for its `-F` choices; the writers live in queries.render."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from ingest.errors import UsageError


class Format(StrEnum):
    table = "table"
    csv = "csv"
    tsv = "tsv"
    json = "json"
    jsonl = "jsonl"
    markdown = "markdown"
    vertical = "vertical"
    parquet = "parquet"


EXTENSIONS = {
    ".csv": Format.csv,
    ".tsv": Format.tsv,
    ".tab": Format.tsv,
    ".json": Format.json,
    ".jsonl": Format.jsonl,
    ".ndjson": Format.jsonl,
    ".md": Format.markdown,
    ".markdown": Format.markdown,
    ".parquet": Format.parquet,
    ".pq": Format.parquet,
    ".txt": Format.table,
}
BINARY = {Format.parquet}


def pick_format(flag: str | None, output: Path | None, configured: str) -> Format:
    """`-F` wins, then the extension of `-o`, then LOGS_FORMAT / logs.toml / `table`.
    An `-o` name whose extension says no format needs `-F`: guessing would write a box-drawn
    table into a file meant for a program."""
    by_extension = EXTENSIONS.get(output.suffix.lower()) if output is not None else None
    if output is not None and flag is None and by_extension is None:
        what = f"unknown extension {output.suffix!r}" if output.suffix else "no extension"
        raise UsageError(
            f"-o {output}: {what}; known extensions: {', '.join(EXTENSIONS)}",
            hint="name the file by its format, or give -F FORMAT (e.g. -F csv)",
        )
    if flag is not None:
        chosen = Format(flag)
        if by_extension is not None and by_extension is not chosen:
            raise UsageError(
                f"-F {chosen.value} contradicts -o {output} (a "
                f"{by_extension.value} file name); give one of them"
            )
        return chosen
    if by_extension is not None:
        return by_extension
    try:
        return Format(configured)
    except ValueError:
        raise UsageError(
            f"format {configured!r} is not one of {', '.join(f.value for f in Format)}"
        ) from None
