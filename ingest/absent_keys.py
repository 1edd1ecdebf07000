"""Absent keys cut out of JSON objects a struct encoder wrote: Polars writes an absent struct
field as `"key":null`, which `records.decode` never writes (it leaves the key out). Both
columnar lanes (consume/columnar.py, formats/textlane.py) encode `attrs` this way."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


def absent_cuts(fields: list[str], nullable: list[str]) -> list[tuple[str, str]]:
    """What to replace by what, in order, to cut the `nullable` ones of an encoded struct's
    `fields` (sorted, as encoded) out where they are null: one pass over the text per field,
    two for the last one only when every field before it may be cut too.

    Every field but the last is followed by a comma; those go first, so the last field then
    follows a comma if any field before it stayed, else the brace."""
    *leading, last = fields
    cuts = [(f'"{name}":null,', "") for name in nullable if name != last]
    if last in nullable:
        if any(name not in nullable for name in leading):
            cuts.append((f',"{last}":null}}', "}"))
        elif not leading:
            cuts.append((f'{{"{last}":null}}', "{}"))
        else:
            cuts += [(f',"{last}":null}}', "}"), (f'{{"{last}":null}}', "{}")]
    return cuts


def cut_absent(text: pa.Array, cuts: list[tuple[str, str]]) -> pa.Array:
    """`absent_cuts` applied by Arrow's substring replace (~30 % cheaper than in Polars)."""
    import pyarrow.compute as pc

    for pattern, replacement in cuts:
        text = pc.replace_substring(text, pattern, replacement)
    return text
