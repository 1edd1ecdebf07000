"""The columnar fast lane (ingest/consume/columnar.py) held to its contract: every row it emits
is the row `records.decode` makes of that entry, column for column; every entry is a row or
left to the per-entry path, never both, never neither; a dead letter is never a row."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest

from ingest import generate
from ingest.consume import columnar
from ingest.consume.columnar import decode_json
from ingest.errors import BadEntry
from ingest.lake.schema import arrow_schema
from ingest.lake.writer import rows_to_arrow
from ingest.records import ALIASES, decode
from tests.lane_contract import assert_contract, synthetic_ids

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z: generated times are fixed, not relative to today
ISO = "2026-01-01T10:00:00.250Z"


def as_bytes(doc: str | bytes) -> bytes:
    return doc if isinstance(doc, bytes) else doc.encode()


def assert_lane_exact(docs: Sequence[str | bytes]) -> tuple[int, list[int]]:
    """Run both decoders on `docs` and hold the lane to its contract; returns (taken, left)."""
    raw = [as_bytes(d) for d in docs]
    ids = synthetic_ids(len(raw))
    table, left = decode_json(ids, raw)
    return assert_contract(table, left, ids, [[b"data", doc] for doc in raw]), left


@pytest.fixture(autouse=True)
def cold_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from the lane's state in a freshly started consumer: no key yet known
    to be read as a string (the lane learns those from what the Arrow reader typed as
    timestamps, and keeps them for the life of the process)."""
    monkeypatch.setattr(columnar, "_STRING_FIELDS", set())


def warm_up() -> None:
    """The state after the lane has seen an ISO time without a fraction (the Arrow reader types
    it as a timestamp): `ts` is read as a string from then on, in every batch."""
    table, left = decode_json([b"1-0"], [b'{"ts":"2026-01-01T00:00:00Z","level":"info"}'])
    assert (table.num_rows, left) == (1, [])
    assert "ts" in columnar._STRING_FIELDS


@pytest.fixture(params=["cold", "warm"])
def lane_state(request: pytest.FixtureRequest) -> str:
    if request.param == "warm":
        warm_up()
    return request.param


def doc_id(doc: object) -> str:
    text = repr(doc)
    return text if len(text) <= 70 else f"{text[:60]}...({len(text)} chars)"


def with_time(**fields: object) -> str:
    return json.dumps({"ts": ISO, **fields})


# --- the corpus -----------------------------------------------------------------------------

TS_ALIASES = ALIASES["ts"]
COLUMN_SAMPLES = {
    "level": "warn",
    "service": "api",
    "host": "h1",
    "message": "hi",
    "trace_id": "t1",
}

ALIAS_DOCS = [json.dumps({name: ISO, "message": "m"}) for name in TS_ALIASES] + [
    with_time(**{name: COLUMN_SAMPLES[column]})
    for column, names in ALIASES.items()
    if column != "ts"
    for name in names
]

TWO_ALIASES = [
    with_time(message="best", msg="second"),
    with_time(msg="second", message="best"),
    with_time(log="a", text="b", body="c"),
    with_time(MESSAGE="upper", Message="cap"),
    with_time(level="info", severity="error"),
    with_time(Level="warn", LEVEL="error", lvl="debug"),
    with_time(priority=3, loglevel="info"),
    with_time(host="a", hostname="b", node="c"),
    with_time(service="a", app="b", program="c", container="d"),
    with_time(PROGRAM="p", HOST="h", MESSAGE="m"),
    with_time(trace_id="a", traceId="b", **{"trace.id": "c"}),
    json.dumps({"@timestamp": "2026-01-01T11:00:00Z", "time": ISO}),
    json.dumps({"timestamp": ISO, "ts": "2026-01-01T11:00:00.5Z"}),
    json.dumps({"TS": ISO, "ts": "2026-01-01T11:00:00.5Z"}),
    json.dumps({"t": ISO, "date_time": "2026-01-01T11:00:00.5Z"}),
    json.dumps({"ts": "not a time", "time": ISO}),  # the best alias wins even when unparseable
    json.dumps({"tS": ISO, "Message": "tS is no alias"}),
    with_time(message="both", Trace_Id="not an alias", Host_Name="neither"),
]

NO_TIME = [
    '{"message":"no time at all"}',
    '{"message":"own source","_ts_source":"mine"}',
    json.dumps({"ts": ISO, "_ts_source": "mine"}),
    '{"msg":"own raw","_ts_raw":"r"}',
    '{"level":"error","service":"api"}',
]

TIMES: list[object] = [
    # unparseable
    "yesterday",
    "",
    "   ",
    True,
    False,
    {"s": 1},
    [1],
    # epoch numbers: s, ms, µs, ns, floats, negatives, bounds
    1700000000,
    1700000000123,
    1700000000123456,
    1700000000123456789,
    1700000000.5,
    1700000000123.5,
    1.7e9,
    0,
    -1,
    -1700000000,
    -62135596801,
    100000000000,
    100000000000000,
    100000000000000000,
    "1700000000",
    "-1700000000",
    "1700000000.25",
    " 1700000000 ",
    # ISO forms
    *[f"2026-01-01T10:00:00.{'123456789012'[:k]}Z" for k in range(1, 13)],
    *[f"2026-01-01T10:00:00.{'9' * k}Z" for k in range(1, 13)],
    "2026-01-01T10:00:00Z",
    "2026-01-01T10:00:00.Z",
    "2026-01-01T10:00:00+01:00",
    "2026-01-01T10:00:00.5-05:30",
    "2026-01-01T10:00:00.123+00:00",
    "2026-01-01T10:00:00z",
    "2026-01-01t10:00:00Z",
    "2026-01-01 10:00:00Z",
    "2026-01-01 10:00:00",
    "2026-01-01T10:00:00",
    "2026-01-01T10:00:00,5Z",
    "2026-01-01",
    "2016-12-31T23:59:60Z",
    "2026-01-01T24:00:00Z",
    "2026-01-01T23:59:59.999999999Z",
    "2026-13-01T00:00:00Z",
    "2024-02-29T12:00:00Z",
    "2023-02-29T12:00:00Z",
    "2026-01-01T10:00:00.\u0663Z",  # an Arabic-Indic digit: isdecimal, not [0-9]
    " 2026-01-01T10:00:00Z",
    "2026-01-01T10:00:00.123Z ",
    "0000-01-01T00:00:00Z",
]
# Times whose microseconds are beyond +-2**53 (before ~1684 or after ~2255): see
# test_far_times_make_writable_rows.
FAR_TIMES: list[object] = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00.000001Z",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59.999999Z",
    "1600-01-01T00:00:00Z",
    "2300-01-01T00:00:00Z",
    -20000000000,
    10000000000,
    -62135596800,
    99999999999,
    99999999999999,
    99999999999999999,
]
TIME_DOCS = [json.dumps({"ts": t, "message": "m"}) for t in TIMES] + [
    json.dumps({"time": t}) for t in (1700000000, "2026-01-01T10:00:00.5Z", 1.5e9, "bad")
]

LEVELS: list[object] = [
    *[
        w
        for word in ("trace", "debug", "info", "notice", "warn", "warning", "err", "error")
        for w in (word, word.upper(), word.capitalize())
    ],
    *["dbg", "INF", "wrn", "ERRO", "fatal", "Crit", "CRITICAL", "alert", "emerg", "PANIC"],
    *["information", "Informational", "EMERGENCY"],
    "wArN",
    " warn ",
    "warn\t",
    *range(8),
    *range(10, 70, 10),
    8,
    99,
    -1,
    30.0,
    30.5,
    "30",
    "7",
    "07",
    "",
    "   ",
    "unknown",
    "verbose",
    True,
    False,
    {"x": 1},
    ["warn"],
]
LEVEL_DOCS = [with_time(level=v) for v in LEVELS] + [with_time(severity=v) for v in (3, "warn")]

COLUMN_VALUES: list[object] = ["", " ", "x", 0, 5, -1, 1.5, 5.0, True, False, {"a": 1}, [1, "x"]]
COLUMN_DOCS = [
    with_time(**{column: value})
    for column in ("service", "host", "message", "trace_id")
    for value in COLUMN_VALUES
] + [with_time(service="s"), with_time(app="", service="")]

VALUE_DOCS = [
    with_time(a={"b": 1}),
    with_time(a={"b": {"c": [1, 2]}}),
    with_time(a=[1, 2]),
    with_time(a=[]),
    with_time(a={}),
    with_time(a=["x", {"y": 1}]),
    with_time(x=5.0),
    with_time(x=5),
    with_time(x=5.5),
    with_time(x=-0.5),
    with_time(x=0.1),
    with_time(x=1e-7),
    with_time(x=2.5e-8),
    with_time(x=123456789.123),
    with_time(x=0.30000000000000004),
    with_time(x=1.5e300),
    with_time(x=5e-324),
    with_time(x=1e21),
    '{"ts":"2026-01-01T10:00:00.25Z","x":1E2}',
    '{"ts":"2026-01-01T10:00:00.25Z","x":1.25E-1}',
    '{"ts":"2026-01-01T10:00:00.25Z","x":-0}',
    '{"ts":"2026-01-01T10:00:00.25Z","x":-0.0}',
    '{"ts":"2026-01-01T10:00:00.25Z","x":1e400}',
    '{"ts":"2026-01-01T10:00:00.25Z","x":-1e400}',
    '{"ts":"2026-01-01T10:00:00.25Z","x":1e-400}',
    *[with_time(x=n) for n in (2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**70, -(2**63))],
    *[with_time(x=n) for n in (-(2**63) - 1, 10**30)],
    *[with_time(level=n) for n in (2**63, 2**64)],
    with_time(x=True, y=False),
    with_time(ok=True, n=1, f=1.5, s="s"),
]

NULLS = [
    '{"ts":"2026-01-01T10:00:00.25Z","message":null}',
    '{"ts":null,"message":"m"}',
    '{"ts":"2026-01-01T10:00:00.25Z","level":null}',
    '{"ts":"2026-01-01T10:00:00.25Z","service":null,"host":null,"trace_id":null}',
    '{"ts":"2026-01-01T10:00:00.25Z","x":null}',
    '{"ts":"2026-01-01T10:00:00.25Z","message":"null"}',
    '{"ts":"2026-01-01T10:00:00.25Z","message":"a nullable pointer"}',
    '{"ts":"2026-01-01T10:00:00.25Z","x":"null","null":1}',
    '{"ts":"2026-01-01T10:00:00.25Z","x":"\\u006eull"}',
    '{"ts":"2026-01-01T10:00:00.25Z","\\u006eull":"x"}',
    '{"ts":"2026-01-01T10:00:00.25Z","x":NaN}',
    '{"ts":"2026-01-01T10:00:00.25Z","x":Infinity}',
    '{"ts":"2026-01-01T10:00:00.25Z","x":-Infinity}',
    '{"ts":"2026-01-01T10:00:00.25Z","x":"NaN","y":"Infinity"}',
    '{"ts":NaN}',
    '{"level":NaN,"ts":"2026-01-01T10:00:00.25Z"}',
]

TEXT_DOCS: list[str | bytes] = [
    # surrogates
    '{"ts":"2026-01-01T10:00:00.25Z","x":"\\ud800"}',
    '{"ts":"2026-01-01T10:00:00.25Z","x":"\\udc00 tail"}',
    '{"ts":"2026-01-01T10:00:00.25Z","\\uD800":1}',
    '{"ts":"2026-01-01T10:00:00.25Z","message":"\\ud83d\\ude00"}',
    '{"ts":"2026-01-01T10:00:00.25Z","x":"\\\\ud800"}',
    # newlines, CR, control characters
    json.dumps({"ts": ISO, "message": "pretty", "a": [1, 2]}, indent=2),
    '{"ts":"2026-01-01T10:00:00.25Z","x":1}\n',
    '{"ts":"2026-01-01T10:00:00.25Z","x":"a\rb"}',
    '{\r"ts":"2026-01-01T10:00:00.25Z","x":1}',
    '{"ts":"2026-01-01T10:00:00.25Z","x":"a\nb"}',
    '{"ts":"2026-01-01T10:00:00.25Z","x":"\\u0000\\u001f\\b\\f\\t\\n\\r\\"\\\\\\/"}',
    '{"ts":"2026-01-01T10:00:00.25Z","x":"a\tb"}',
    '{"ts":"2026-01-01T10:00:00.25Z","x":\t1}',
    '{"ts":"2026-01-01T10:00:00.25Z","x":"\x7f\x00"}',
    '{"ts":"2026-01-01T10:00:00.25Z","x":"\x7f"}',
    '{"ts":"2026-01-01T10:00:00.25Z",\x0c"x":1}',
    # unicode
    with_time(message="café ☕ 😀", é="ü", **{"😀": "\u2028\u2029"}),
    json.dumps({"ts": ISO, "message": "café ☕ \u2028", "é": "ü"}, ensure_ascii=False),
    '{"ts":"2026-01-01T10:00:00.25Z","x":"\\u00e9\\u2028"}',
    with_time(x="\ufeff\u00ad\uffff"),
    # keys with quotes, backslashes, escapes
    with_time(**{'a"b': 1, "c\\d": "e", "a/b": 2}),
    with_time(**{"new\nline": 1, "tab\tkey": "v", "\u0000": 3}),
    with_time(**{'k"': 1}, x="y"),
    with_time(**{"a b": 1, "a.b": 2, "A": 3, "a": 4}),
    # duplicate keys
    '{"ts":"2026-01-01T10:00:00.25Z","a":1,"a":2}',
    '{"ts":"2026-01-01T10:00:00.25Z","a":"x","a":"y"}',
    '{"ts":"2026-01-01T10:00:00.25Z","message":"a","message":"b"}',
    '{"ts":"2026-01-01T10:00:00.25Z","ts":"2026-01-01T11:00:00.25Z"}',
    '{"ts":"2026-01-01T10:00:00.25Z","a":1,"\\u0061":2}',
    # more than one object, garbage, broken syntax
    '{"ts":"2026-01-01T10:00:00.25Z","a":1}{"b":2}',
    '{"ts":"2026-01-01T10:00:00.25Z","a":1} {"b":2}',
    '{"ts":"2026-01-01T10:00:00.25Z","a":1} x',
    '{"ts":"2026-01-01T10:00:00.25Z","a":1}]',
    '{"ts":"2026-01-01T10:00:00.25Z","a":1},',
    '{"ts":"2026-01-01T10:00:00.25Z","a":1,}',
    '{"ts":"2026-01-01T10:00:00.25Z","a":1}   ',
    '{"ts":"2026-01-01T10:00:00.25Z","a":1}\t',
    "{}",
    "{ }",
    "{",
    "{   ",
    "{}{}",
    '{"ts":"2026-01-01T10:00:00.25Z",a:1}',
    "{'ts':'2026-01-01T10:00:00.25Z'}",
    '{"ts":"2026-01-01T10:00:00.25Z","a":01}',
    '{"ts":"2026-01-01T10:00:00.25Z","a":1.}',
    '{"ts":"2026-01-01T10:00:00.25Z","a":.5}',
    '{"ts":"2026-01-01T10:00:00.25Z","a":+1}',
    '{"ts":"2026-01-01T10:00:00.25Z","a":0x10}',
    '{"ts":"2026-01-01T10:00:00.25Z","a":"\\x41"}',
    '{"ts":"2026-01-01T10:00:00.25Z","a":tru}',
    '{"ts":"2026-01-01T10:00:00.25Z","a":True}',
    '{"ts":"2026-01-01T10:00:00.25Z","a":1 /* c */}',
    '{"ts":"2026-01-01T10:00:00.25Z","a":"unterminated}',
    '{"ts":"2026-01-01T10:00:00.25Z","a":[1,2}',
    '{"ts":"2026-01-01T10:00:00.25Z","a":-}',
    '{"ts":"2026-01-01T10:00:00.25Z","a":"\\u00"}',
    '{"ts":"2026-01-01T10:00:00.25Z","a":"\\uZZZZ"}',
    '{"ts":"2026-01-01T10:00:00.25Z","a":"\\a"}',
    '{"ts":"2026-01-01T10:00:00.25Z"}//c',
    # NUL and other bytes a C parser may take for the end of the text
    '{"ts":"2026-01-01T10:00:00.25Z","a":1}\x00',
    '{"ts":"2026-01-01T10:00:00.25Z","a":1}\x00{"b":2}',
    '{"ts":"2026-01-01T10:00:00.25Z","a":"x\x00y"}',
    '{"ts":"2026-01-01T10:00:00.25Z",\x00"a":1}',
    '{"ts":"2026-01-01T10:00:00.25Z","a":1}\x1a',
    '{"ts":"2026-01-01T10:00:00.25Z","a":1}\x0b',
    '{"ts":"2026-01-01T10:00:00.25Z","a":1}\u00a0',
    '{"ts":"2026-01-01T10:00:00.25Z","a\\u0000":"\\u0000"}',
    # nesting around the depth limit (64)
    '{"ts":"2026-01-01T10:00:00.25Z","a":' + '{"a":' * 62 + "1" + "}" * 63,
    '{"ts":"2026-01-01T10:00:00.25Z","a":' + '{"a":' * 63 + "1" + "}" * 64,
    '{"ts":"2026-01-01T10:00:00.25Z","a":' + "[" * 63 + "1" + "]" * 63 + "}",
    '{"ts":"2026-01-01T10:00:00.25Z","a":' + "[" * 64 + "1" + "]" * 64 + "}",
    '{"a":' * 200 + "1" + "}" * 200,
    # a large but legal doc (~200 KB)
    with_time(message="x" * 150_000, blob="é" * 20_000, n=1),
    # keys that are column or partition names of the table
    with_time(attrs="a", date="d", hour="h", ingested_at=1, level="info"),
    with_time(_ok=False, _i=1, literal="l", column_1=1),
]

ISO_ATTRS = [
    with_time(d="2026-01-01"),
    with_time(d="2026-01-01T00:00:00"),
    with_time(d="2026-01-01 10:00:00"),
    with_time(d="2026-01-01T00:00:00Z"),
    with_time(d="2026-01-01T00:00:00.5Z"),
    with_time(d="2026-01-01T00:00:00+01:00"),
    with_time(d="not a date"),
    with_time(d="2026"),
    with_time(service="2026-01-01", host="2026-01-01T00:00:00", message="2026-01-01 10:00:00"),
    with_time(trace_id="2026-01-01", level="info"),
]

CORPUS: list[str | bytes] = [
    *ALIAS_DOCS,
    *TWO_ALIASES,
    *NO_TIME,
    *TIME_DOCS,
    *LEVEL_DOCS,
    *COLUMN_DOCS,
    *VALUE_DOCS,
    *NULLS,
    *TEXT_DOCS,
    *ISO_ATTRS,
]


@pytest.mark.parametrize("doc", CORPUS, ids=doc_id)
def test_corpus_one_doc_per_call(doc: str | bytes) -> None:
    warm_up()
    assert_lane_exact([doc])


@pytest.mark.parametrize("doc", TIME_DOCS, ids=doc_id)
def test_time_forms_on_a_cold_lane(doc: str) -> None:
    """Without a key known to be a string, integer epochs are typed as numbers and taken."""
    assert_lane_exact([doc])


NO_SCALAR = [
    "{}",
    "{ }",
    '{"a":{"b":1}}',
    '{"a":[1,2]}',
    '{"a":{"x":1},"b":[]}',
    '{"a":' * 80 + "1" + "}" * 80,
]


@pytest.mark.parametrize("doc", NO_SCALAR, ids=doc_id)
def test_docs_without_a_scalar_value_on_a_cold_lane(doc: str) -> None:
    """No column survives the nested-value filter (or there is none): the rows still count.
    Regression: such a batch once came back as neither rows nor leftovers, and ingest
    acknowledged the entry without a row or a dead letter."""
    assert_lane_exact([doc])


def test_a_batch_without_any_scalar_value_on_a_cold_lane() -> None:
    assert_lane_exact(NO_SCALAR)


def test_corpus_in_one_batch(lane_state: str) -> None:
    assert_lane_exact(CORPUS)


def test_corpus_in_one_shuffled_batch_twice(lane_state: str) -> None:
    docs = list(CORPUS) * 2
    random.Random(7).shuffle(docs)
    assert_lane_exact(docs)


FAST_TIMES = [
    *[f"2026-01-01T10:00:00.{'123456789012'[:k]}Z" for k in range(1, 13)],
    "2026-01-01T10:00:00Z",
    "2024-02-29T12:00:00Z",
    "2026-01-01T23:59:59.999999999Z",
    "0001-01-01T00:00:00.000001Z",
    "1969-12-31T23:59:59.5Z",
]
FAST_LEVELS = [w for w in LEVELS if isinstance(w, str) and w in ("info", "WARN", "Error", "dbg")]


def test_fast_times_and_levels_are_taken_in_a_batch_with_other_forms(lane_state: str) -> None:
    """RFC 3339 UTC times and level words are read for a whole batch at once (Arrow's cast and
    hash lookup), other forms beside them null; each fast one is taken, exactly."""
    fast = [
        json.dumps({"ts": t, "level": FAST_LEVELS[i % len(FAST_LEVELS)], "message": "m"})
        for i, t in enumerate(FAST_TIMES)
    ]
    other = [json.dumps({"ts": t, "level": "wArN"}) for t in ("2026-01-01T10:00:00+01:00", "bad")]
    taken, left = assert_lane_exact(fast + other)
    assert (taken, len(left)) == (len(fast), 2)


def test_a_date_that_does_not_exist_leaves_only_its_own_entry(lane_state: str) -> None:
    """30 February matches the fast form's pattern but fails the batch's one Arrow cast: the
    batch's times are then read row by row, and the rest are still taken."""
    fast = [json.dumps({"ts": t, "message": "m"}) for t in FAST_TIMES]
    taken, left = assert_lane_exact([*fast, json.dumps({"ts": "2023-02-30T12:00:00Z"})])
    assert (taken, left) == (len(fast), [len(fast)])


def test_ints_and_floats_for_one_key_across_a_batch(lane_state: str) -> None:
    values: list[object] = [1, 5.0, 2.5, -3, 0.125, 7, 1e-3, 2**40, 3.0]
    docs = [with_time(x=values[i % len(values)], n=i) for i in range(300)]
    assert_lane_exact(docs)
    # Integers alone stay integers: all taken.
    taken, left = assert_lane_exact([with_time(x=i * 7, n=i) for i in range(300)])
    assert (taken, left) == (300, [])


@pytest.mark.parametrize(
    "shapes",
    [
        [{"x": 1}, {}],
        [{"a": 1, "x": 2}, {"a": 3}],
        [{"a": 1, "x": 2}, {"x": 3}, {}],
        [{"a": 1, "m": 2, "x": 3}, {"m": 4}, {"a": 5}, {"x": 6}, {}],
    ],
    ids=lambda shapes: "/".join(",".join(s) or "-" for s in shapes),
)
def test_keys_absent_from_some_entries_are_cut_from_attrs(
    shapes: list[dict[str, int]], lane_state: str
) -> None:
    """Every way a key can be absent where others are present, or alone (first, middle, last
    field of attrs, or all of them): attrs holds only what the entry had."""
    docs = [with_time(**shapes[i % len(shapes)]) for i in range(64)]
    taken, left = assert_lane_exact(docs)
    assert (taken, left) == (len(docs), [])


def test_integral_floats_are_taken_when_their_text_says_float(lane_state: str) -> None:
    """In a column of floats `5` and `5.0` both read as 5.0, yet attrs must keep `5` an int: the
    raw text decides. Written as floats they are taken; as ints, under escaped keys or beyond
    2**53 they go to records.decode."""
    head = '{"ts":"2026-01-01T10:00:00.25Z",'
    said_float = [
        f'{head}"x":5.0,"y":1.5}}',
        f'{head}"x":-0.0}}',
        f'{head}"x":5e0,"y":2.0}}',
        f'{head}"x" : 1E2}}',
        f'{head}"x":\t12.000}}',
        f'{head}"y":3.0,"n":"say \\"x\\":5 here"}}',
        f'{head}"x":9007199254740991.0}}',
    ]
    said_int = [
        f'{head}"x":5,"y":1.5}}',
        f'{head}"x":-0}}',
        f'{head}"x":5.0,"y":2}}',
        f'{head}"\\u0078":5.0}}',
        f'{head}"x":9007199254740992.0}}',
        f'{head}"n":"\\"x\\":5.0","x":5}}',
    ]
    fractions = [f'{head}"x":{i}.5,"y":0.25}}' for i in range(200)]
    taken, left = assert_lane_exact([*said_float, *said_int, *fractions])
    first_int = len(said_float)
    assert left == list(range(first_int, first_int + len(said_int)))
    assert taken == len(said_float) + len(fractions)


@pytest.mark.parametrize("odd", ["1", True, {"k": 1}, [1], "2026-01-01"], ids=doc_id)
def test_one_entry_of_another_type_is_isolated_by_bisection(odd: object, lane_state: str) -> None:
    docs = [with_time(x=i, message=f"m{i}") for i in range(400)]
    docs[137] = with_time(x=odd, message="odd one")
    taken, left = assert_lane_exact(docs)
    assert len(left) <= columnar.MIN_CHUNK, left
    assert taken >= 400 - columnar.MIN_CHUNK


def test_iso_looking_attrs_alone_and_mixed_in_one_batch(lane_state: str) -> None:
    dates = [with_time(d=f"2026-01-{1 + i % 28:02d}", i=i) for i in range(100)]
    taken, left = assert_lane_exact(dates)
    assert (taken, left) == (100, [])
    mixed = [with_time(d=f"2026-01-{1 + i % 28:02d}" if i % 3 else f"day {i}") for i in range(100)]
    assert_lane_exact(mixed)
    stamps = [with_time(d="2026-01-01T10:00:00" if i % 2 else "2026-01-01") for i in range(100)]
    assert_lane_exact(stamps)
    # Once a key is known to hold strings, a number under it is left, not stringified.
    assert "d" in columnar._STRING_FIELDS
    for value in (5, 5.5, True, 0):
        assert assert_lane_exact([with_time(d=value)]) == (0, [0])
    assert_lane_exact([with_time(d="2026-01-01"), with_time(d=5), with_time(d="x")])


# --- generated logs --------------------------------------------------------------------------


def generated_docs(count: int, seed: int, malformed: float = 0.0) -> list[bytes]:
    entries = generate.entries(count, seed=seed, shape="json", now=NOW, malformed=malformed)
    return [as_bytes(fields["data"]) for fields in entries]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generated_logs_are_taken_and_exact(seed: int, lane_state: str) -> None:
    docs = generated_docs(1000, seed)
    taken, left = assert_lane_exact(docs)
    assert taken >= 0.9 * len(docs), f"the lane took only {taken} of {len(docs)}: {left[:10]}"


def test_generated_logs_with_malformed_entries() -> None:
    """The consumer hands the lane every single-field entry starting with `{`: here the
    generator's lone surrogates and 200-deep nesting, which must all be left (dead letters)."""
    docs = [d for d in generated_docs(1000, 3, malformed=0.05) if d[:1] == b"{"]
    taken, left = assert_lane_exact(docs)
    bad = set()
    for i, doc in enumerate(docs):
        try:
            decode(f"{i}-0", [b"data", doc])
        except BadEntry:
            bad.add(i)
    assert len(bad) >= 10
    assert bad <= set(left)
    assert taken >= 0.85 * len(docs)


# --- seeded fuzz -----------------------------------------------------------------------------

FUZZ_KEYS = [
    *("ts", "time", "TS", "@timestamp", "timestamp"),
    *("level", "severity", "Level", "lvl", "priority"),
    *("service", "app", "program", "PROGRAM", "host", "hostname", "HOST"),
    *("message", "msg", "MESSAGE", "log", "trace_id", "traceId", "trace.id"),
    *("user_id", "latency_ms", "path", "status", "ok", "ctx", "tags", "when", "a", "A"),
    *("é", "名前", 'quo"te', "back\\slash", "emoji😀", "a.b", "new\nline", "_ts_raw"),
]
TIME_KEYS = set(ALIASES["ts"])
LEVEL_KEYS = set(ALIASES["level"])
COLUMN_KEYS = [k for c in ("service", "host", "message", "trace_id") for k in ALIASES[c]]
CHARS = (
    "abcxyz0129 _-.:/\"\\'{}[],\x00\x01\x08\t\n\x0c\r\x1f\x7féüß€—\u00a0\u2028\u2029\ufeff名前😀🎉"
)
KINDS = ("str", "int", "float", "bool")


def fuzz_string(rng: random.Random) -> str:
    if rng.random() < 0.05:
        return rng.choice(("", "0", "123", "true", "  spaced  ", "n\u00fcll", "NULL"))
    return "".join(rng.choice(CHARS) for _ in range(rng.randint(0, 16)))


def fuzz_scalar(rng: random.Random, kind: str) -> object:
    if kind == "str":
        return fuzz_string(rng)
    if kind == "int":
        return rng.choice(
            (rng.randint(-9, 9), rng.randint(-(2**63), 2**63 - 1), 10 ** rng.randint(0, 18))
        )
    if kind == "float":
        value = rng.uniform(-1, 1) * 10.0 ** rng.randint(-20, 17)
        return float(round(value)) if rng.random() < 0.02 else value
    return rng.random() < 0.5


def fuzz_time(rng: random.Random, kind: str) -> object:
    second = rng.randint(1_600_000_000, 1_800_000_000)
    if kind == "int":
        return second * rng.choice((1, 1000, 1_000_000))
    if kind == "float":
        return second + rng.random()
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9)))
    return f"{iso}.{digits}" + rng.choice(("Z",) * 20 + ("z", "+00:00", ""))


def fuzz_level(rng: random.Random, kind: str) -> object:
    if kind == "int":
        return rng.choice((0, 3, 5, 7, 8, 10, 30, 50, 60, 99))
    word = rng.choice(("info", "warn", "warning", "error", "debug", "fatal", "notice", "x", ""))
    return rng.choice((word, word.upper(), word.capitalize()))


def fuzz_anomaly(rng: random.Random) -> object:
    """A value the lane must leave (or take exactly) in a batch of otherwise regular docs."""
    return rng.choice(
        (
            None,
            float("nan"),
            float("inf"),
            {"k": fuzz_string(rng)},
            [1, fuzz_string(rng)],
            [],
            {},
            "null",
            "2026-01-01",
            "2026-01-01T10:00:00",
            rng.randint(-9, 9),
            rng.random(),
            5.0,
            True,
            fuzz_string(rng),
            2**64 + rng.randint(0, 9),
        )
    )


def fuzz_doc(rng: random.Random, profile: dict[str, str]) -> dict[str, object]:
    doc: dict[str, object] = {}
    for key in rng.sample(FUZZ_KEYS, rng.randint(1, 9)):
        kind = profile[key]
        if key in TIME_KEYS:
            doc[key] = fuzz_time(rng, kind)
        elif key in LEVEL_KEYS:
            doc[key] = fuzz_level(rng, kind)
        else:
            doc[key] = fuzz_scalar(rng, kind)
    if rng.random() < 0.95 and not TIME_KEYS & doc.keys():
        doc["ts"] = fuzz_time(rng, profile["ts"])
    if rng.random() < 0.015:
        doc[rng.choice(FUZZ_KEYS)] = fuzz_anomaly(rng)
    return doc


def fuzz_text(rng: random.Random, doc: dict[str, object]) -> bytes:
    r = rng.random()
    if r < 0.45:
        try:
            return orjson.dumps(doc)  # NaN and Infinity become null
        except TypeError:  # an int beyond 64 bits
            pass
    if r < 0.995:
        return json.dumps(doc, ensure_ascii=rng.random() < 0.1).encode()
    return json.dumps(doc, indent=1).encode()


def test_fuzz_batches_are_exact() -> None:
    rng = random.Random(20260101)
    taken_total = 0
    for _ in range(6):
        # One producer's batch: each key keeps one type, with rare exceptions the lane must
        # isolate by bisection.
        profile = {key: rng.choice(KINDS) for key in FUZZ_KEYS}
        for key in COLUMN_KEYS:
            profile[key] = "str" if rng.random() < 0.9 else rng.choice(KINDS)
        profile["ts"] = rng.choice(("str", "str", "int"))
        docs = [fuzz_text(rng, fuzz_doc(rng, profile)) for _ in range(500)]
        taken, _ = assert_lane_exact(docs)
        taken_total += taken
    assert taken_total >= 1000, f"the lane took only {taken_total} of 3000 fuzzed docs"


# --- invariants ------------------------------------------------------------------------------


def test_empty_input() -> None:
    table, left = decode_json([], [])
    assert table.schema == arrow_schema()
    assert (table.num_rows, left) == (0, [])


def test_nothing_taken_still_gives_an_empty_table_of_the_schema() -> None:
    docs = [b"{", b'{"a":NaN}', b'{"a":null}', b'{"a":1}{"b":2}', b'{"a":"\\ud800"}']
    table, left = decode_json(synthetic_ids(len(docs)), docs)
    assert table.schema == arrow_schema()
    assert (table.num_rows, left) == (0, [0, 1, 2, 3, 4])


def test_a_thousand_generated_entries_are_at_least_90_percent_taken() -> None:
    docs = generated_docs(1000, 11)
    table, left = decode_json(synthetic_ids(len(docs)), docs)
    assert table.num_rows + len(left) == 1000
    assert table.num_rows >= 900


def test_rows_do_not_depend_on_the_batch_they_came_in() -> None:
    """The same entries, alone or among others in any order, give the same rows."""
    docs = [*generated_docs(200, 5), *ALIAS_DOCS, *LEVEL_DOCS, *TWO_ALIASES]
    ids = synthetic_ids(len(docs))
    raw = [as_bytes(d) for d in docs]
    whole, _ = decode_json(ids, raw)
    order = list(range(len(docs)))
    random.Random(3).shuffle(order)
    shuffled, _ = decode_json([ids[i] for i in order], [raw[i] for i in order])
    first = {r["stream_id"]: r for r in whole.to_pylist()}
    second = {r["stream_id"]: r for r in shuffled.to_pylist()}
    both = first.keys() & second.keys()
    assert len(both) >= 50
    assert all(first[sid] == second[sid] for sid in both)


# --- regressions: contract violations found by this file, now fixed -------------------------------
# Each is a minimal input; the constant above each test says what went wrong before the fix.

COLD_LANE_CRASH = (
    "columnar._rows: with no time alias among a chunk's keys, values['ts'] is a String null "
    "literal, so pl.from_epoch(ts_us) raises InvalidOperationError (casting from string to "
    "datetime) - on a cold lane, i.e. until some ISO time was typed as a timestamp"
)


def test_batch_without_a_time_key_on_a_cold_lane() -> None:
    assert_lane_exact(['{"message":"no time"}', '{"msg":"x","level":"warn"}'])


INVALID_UTF8 = [
    b'{"ts":"2026-01-01T10:00:00.25Z","x":"\xff"}',
    b'{"ts":"2026-01-01T10:00:00.25Z","x":"\xc3"}',
    b'{"ts":"2026-01-01T10:00:00.25Z","\xe9":1}',
    b'{"ts":"2026-01-01T10:00:00.25Z","x":"\xc0\xaf"}',
    b'{"ts":"2026-01-01T10:00:00.25Z","x":"\xed\xa0\x80"}',
]


@pytest.mark.parametrize("bad", INVALID_UTF8, ids=doc_id)
def test_invalid_utf8_is_left_and_the_rest_taken(bad: bytes) -> None:
    taken, left = assert_lane_exact([with_time(message="fine"), bad])
    assert (taken, left) == (1, [1])


ATTRS_WRONG = [
    pytest.param(
        with_time(_ts_source=5),
        id="own _ts_source int",
    ),
    pytest.param(
        with_time(_ts_source=True, message="m"),
        id="own _ts_source bool",
    ),
    pytest.param(
        with_time(_ts_source=1.5),
        id="own _ts_source float",
    ),
    pytest.param(
        with_time(stream_id="from the doc", message="m"),
        id="key stream_id",
    ),
    pytest.param(
        with_time(**{"": "empty key"}),
        id="empty key",
    ),
    pytest.param(
        with_time(**{"": 1, "column_1": 2}),
        id="empty key and column_1",
    ),
    pytest.param(
        with_time(**{"^ts$": 1}),
        id="key ^ts$",
    ),
    pytest.param(
        with_time(**{"^a$": 1}),
        id="key ^a$",
    ),
    pytest.param(
        with_time(**{"*": 1}),
        id="key *",
    ),
]


@pytest.mark.parametrize("doc", ATTRS_WRONG)
def test_keys_the_lane_gets_wrong(doc: str) -> None:
    assert_lane_exact([doc])


FAR_TIMES_REASON = (
    "writer.partition_columns casts µs to float64 with a safe cast, which refuses |µs| > 2**53 "
    "(times before 1684 or after 2255): rows_to_arrow raises ArrowInvalid on records.decode's row, "
    "and decode_json raises on the rows it takes"
)


@pytest.mark.parametrize(
    "doc", [json.dumps({"ts": t}) for t in [*FAR_TIMES, "0001-01-01T00:00:00+01:00"]], ids=doc_id
)
def test_far_times_make_writable_rows(doc: str) -> None:
    rows_to_arrow([decode("1700000000000-0", [b"data", doc.encode()])])
    assert_lane_exact([doc])


DEEP = 1000


@pytest.mark.parametrize("opening", ['{"a":', "["])
def test_very_deep_nesting_is_left_not_a_crash(opening: str) -> None:
    closing = "]" if opening == "[" else "}"
    nested = opening * DEEP + "1" + closing * DEEP
    doc = '{"ts":"2026-01-01T10:00:00.25Z","a":' + nested + "}"
    with pytest.raises(BadEntry):
        decode("1700000000000-0", [b"data", doc.encode()])
    code = (
        "import sys; from ingest.consume.columnar import decode_json; "
        "table, left = decode_json([b'1700000000000-0'], [sys.stdin.buffer.read()]); "
        "print(table.num_rows, left)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=doc.encode(),
        capture_output=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr.decode()[-300:]}"
    assert done.stdout.decode().split() == ["0", "[0]"]
