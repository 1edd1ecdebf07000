"""JSON text as an entry may hold it: strict (no NaN, no lone surrogates, no integers past what
can be stored) and nested no deeper than `max_json_depth`. What it refuses is a dead letter,
with its reason. Pure but for orjson."""

from __future__ import annotations

import json
from typing import Any

import orjson

from ingest.errors import BadEntry


def depth(obj: Any, limit: int) -> int:
    """Nesting depth of a JSON value, stopping early once it exceeds `limit`."""
    best = 0
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, d = stack.pop()
        if d > best:
            best = d
            if best > limit:
                return best
        if isinstance(node, dict):
            stack.extend((v, d + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, d + 1) for v in node if isinstance(v, dict | list))
    return best


def strict_json(text: str, max_depth: int) -> dict[str, Any] | None:
    """A JSON object, None when `text` is not one, BadEntry when it is one we refuse to store."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        # orjson is strict: lone surrogates, NaN, huge ints and very deep nesting land here.
        # The stdlib parser tells which of those it was.
        try:
            value = json.loads(text)
        except RecursionError:
            raise BadEntry(f"JSON nested deeper than {max_depth} levels") from None
        except ValueError:
            return None
        if not isinstance(value, dict):
            return None
        try:
            json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BadEntry("lone surrogate in a JSON string") from None
        except ValueError:
            raise BadEntry("NaN or Infinity in JSON") from None
        try:
            orjson.dumps(value)
        except TypeError as exc:
            raise BadEntry(f"JSON value not storable: {exc}") from None
    if not isinstance(value, dict):
        return None
    if text.count("{") + text.count("[") > max_depth and depth(value, max_depth) > max_depth:
        raise BadEntry(f"JSON nested deeper than {max_depth} levels")
    return value
