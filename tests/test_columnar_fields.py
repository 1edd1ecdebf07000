"""The columnar lane for field-per-column entries (`columnar.decode_fields`) held to the same
contract as the JSON lane: each row it emits is the row `records.decode` makes of that entry;
every entry is a row or left to the per-entry path, never both, never neither."""

from __future__ import annotations

import random

import pytest

from ingest import generate
from ingest.consume.columnar import MIN_GROUP, decode_fields
from ingest.records import ALIASES
from tests.lane_contract import assert_contract, synthetic_ids

ISO = "2026-01-01T10:00:00.250Z"
Entry = list[bytes]


def entry(pairs: list[tuple[str | bytes, str | bytes]]) -> Entry:
    out: Entry = []
    for key, value in pairs:
        out += [k if isinstance(k, bytes) else k.encode() for k in (key, value)]
    return out


def assert_fields_exact(entries: list[Entry]) -> tuple[int, list[int]]:
    ids = synthetic_ids(len(entries))
    table, left = decode_fields(ids, entries)
    return assert_contract(table, left, ids, entries), left


def group(pairs: list[tuple[str | bytes, str | bytes]], n: int = MIN_GROUP + 10) -> list[Entry]:
    """`n` entries with the same keys (a group the lane takes), each message made distinct."""
    out = []
    for i in range(n):
        varied = [
            (k, v + f" #{i}" if k == "message" and isinstance(v, str) else v) for k, v in pairs
        ]
        out.append(entry(varied))  # type: ignore[arg-type]
    return out


CASES = {
    "plain": [("ts", ISO), ("level", "warning"), ("service", "api"), ("message", "m")],
    "syslog-ng keys": [("HOST", "h1"), ("PROGRAM", "sshd"), ("MESSAGE", "x"), ("time", ISO)],
    "two aliases": [("ts", ISO), ("timestamp", "other"), ("msg", "b"), ("message", "a")],
    "every alias": [(names[-1], ISO if col == "ts" else "v") for col, names in ALIASES.items()],
    "empty values": [("ts", ISO), ("service", ""), ("host", ""), ("trace_id", ""), ("message", "")],
    "no time": [("level", "ERR"), ("service", "db"), ("message", "m")],
    "own _ts_source": [("_ts_source", "mine"), ("service", "db"), ("message", "m")],
    "odd keys": [("ts", ISO), ("", "empty"), ("^ts$", "pattern"), ("*", "star"), ("é", "x")],
    "epoch string": [("ts", "1767225600"), ("level", "30"), ("message", "m")],
    "offset time": [("ts", "2026-01-01T10:00:00+01:00"), ("message", "m")],
    "long fraction": [("ts", "2026-01-01T10:00:00.123456789Z"), ("message", "m")],
    "level words": [("ts", ISO), ("level", "Notice"), ("severity", "crit"), ("message", "m")],
    "unknown level": [("ts", ISO), ("level", "verbose"), ("message", "m")],
    "json-looking value": [("ts", ISO), ("message", '{"a": 1}'), ("extra", "null")],
    "quotes and escapes": [("ts", ISO), ("message", 'a "q" \\ \n\t\x01'), ('k"ey', "v")],
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_group_of_each_shape_is_exact(name: str) -> None:
    assert_fields_exact(group(CASES[name]))


def test_all_groups_in_one_batch_are_exact_and_mostly_taken() -> None:
    entries = [e for pairs in CASES.values() for e in group(pairs)]
    random.Random(3).shuffle(entries)
    taken, _ = assert_fields_exact(entries)
    assert taken > len(entries) // 2


def test_generated_field_entries_are_taken_and_exact() -> None:
    entries = [
        entry(list(fields.items()))  # type: ignore[arg-type]
        for fields in generate.entries(3000, hours=3, seed=5, shape="fields", now=1_767_225_600.0)
    ]
    taken, _ = assert_fields_exact(entries)
    assert taken >= 0.9 * len(entries)


def test_what_the_lane_leaves() -> None:
    small = group(CASES["plain"], n=MIN_GROUP - 1)
    repeated = group([("ts", ISO), ("message", "a"), ("message", "b")])
    bad_utf8 = group([("ts", ISO), ("message", b"\xff\xfe")])
    bad_key = group([("ts", ISO), (b"\xff", "v"), ("message", "m")])
    entries = small + repeated + bad_utf8 + bad_key
    taken, left = assert_fields_exact(entries)
    assert taken == 0
    assert len(left) == len(entries)


def test_fuzz_groups_are_exact() -> None:
    rng = random.Random(11)
    keys = [
        "ts",
        "time",
        "level",
        "severity",
        "service",
        "app",
        "host",
        "message",
        "msg",
        "trace_id",
        "user",
        "path",
        "_ts_source",
        "TS",
        "Message",
    ]
    values = [
        ISO,
        "2026-01-01T10:00:00Z",
        "2026-02-30T10:00:00Z",
        "1767225600",
        "",
        "INFO",
        "warn",
        "err",
        "7",
        "é😀",
        'q"\\',
        "null",
        "  padded ",
        "2026-01-01T24:00:00Z",
    ]
    entries = []
    for _ in range(6):
        pairs = rng.sample(keys, rng.randint(3, 8))
        for _ in range(MIN_GROUP + rng.randint(0, 50)):
            entries.append(entry([(k, rng.choice(values)) for k in pairs]))
    rng.shuffle(entries)
    taken, _ = assert_fields_exact(entries)
    assert taken > 0
