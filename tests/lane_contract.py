"""The contract the columnar lanes (ingest/consume/columnar.py) are held to, checked one way
for all: every row a lane emits is the row `records.decode` makes of that entry, column for column;
every entry is a row or left to the per-entry path, never both, never neither; a dead letter
is never a row."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pytest

from ingest.errors import BadEntry
from ingest.formats.registry import DEFAULT, Formats
from ingest.lake.schema import arrow_schema
from ingest.lake.writer import rows_to_arrow
from ingest.records import decode


def synthetic_ids(n: int) -> list[bytes]:
    return [f"{1700000000000 + i}-{i % 5}".encode() for i in range(n)]


def assert_contract(
    table: pa.Table,
    left: list[int],
    ids: Sequence[bytes],
    entries: Sequence[list[bytes]],
    formats: Formats = DEFAULT,
) -> int:
    """`table, left`: what a lane made of `entries` (each `[k1, v1, ...]` as Redis returns it)
    with ids `ids`, reading text with `formats`. Returns how many entries it took."""
    assert table.schema == arrow_schema()
    assert left == sorted(set(left)), "left indexes must be sorted and distinct"
    assert all(0 <= i < len(entries) for i in left)
    index_of = {sid.decode(): i for i, sid in enumerate(ids)}
    emitted = table.column("stream_id").to_pylist()
    assert len(emitted) == len(set(emitted)), "an entry emitted twice"
    unknown = [sid for sid in emitted if sid not in index_of]
    assert not unknown, f"rows for ids that were not given: {unknown[:5]}"
    taken = sorted(index_of[sid] for sid in emitted)
    both = set(taken) & set(left)
    assert not both, f"both a row and left: {[entries[i] for i in sorted(both)][:5]}"
    neither = set(range(len(entries))) - set(taken) - set(left)
    assert not neither, f"neither a row nor left: {[entries[i] for i in sorted(neither)][:5]}"

    expected = []
    for i in taken:
        try:
            expected.append(decode(ids[i].decode(), entries[i], formats=formats))
        except BadEntry as exc:
            pytest.fail(f"lane emitted a row for a dead letter ({exc.reason}): {entries[i]!r}")
    want = rows_to_arrow(expected).sort_by("stream_id").to_pylist()
    got = table.sort_by("stream_id").to_pylist()
    mismatches = [
        (entries[index_of[w["stream_id"]]], {k: (w[k], g[k]) for k in w if w[k] != g[k]})
        for w, g in zip(want, got, strict=True)
        if w != g
    ]
    assert not mismatches, "rows differ (entry, {column: (records, lane)}):\n" + "\n".join(
        f"  {str(entry)[:200]}: {diff}" for entry, diff in mismatches[:10]
    )
    return len(taken)
