"""Entry -> row decoding (design §3): shapes, timestamps, levels, attrs, and what is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ingest.errors import BadEntry
from ingest.records import decode, normalize_level, parse_ts

SID = "1763632800000-7"  # 2025-11-20T10:00:00Z
SID_US = 1763632800000 * 1000


def us(text: str) -> int:
    dt = datetime.fromisoformat(text)
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // __import__("datetime").timedelta(
        microseconds=1
    )


def fields(**kv: str) -> list[bytes]:
    out: list[bytes] = []
    for k, v in kv.items():
        out += [k.encode(), v.encode()]
    return out


def test_field_per_column_entry() -> None:
    row = decode(
        SID,
        fields(
            ts="2026-11-20T10:00:00.250Z",
            level="warning",
            service="api",
            host="h1",
            message="slow",
            trace_id="abc",
            user="bob",
        ),
    )
    assert row.ts == us("2026-11-20T10:00:00.250+00:00")
    assert (row.level, row.service, row.host, row.message, row.trace_id) == (
        "WARN",
        "api",
        "h1",
        "slow",
        "abc",
    )
    assert json.loads(row.attrs) == {"user": "bob"}
    assert row.stream_id == SID and row.ingested_at == SID_US


@pytest.mark.parametrize("field_name", ["data", "json", "payload", "msg", "anything"])
def test_single_json_field_under_any_name_is_unpacked_with_types_kept(field_name: str) -> None:
    doc = {
        "time": 1763632800123,
        "level": 50,
        "app": "pay",
        "msg": "boom",
        "latency_ms": 12.5,
        "ok": False,
        "tags": ["a"],
        "ctx": {"k": 1},
    }
    row = decode(SID, [field_name.encode(), json.dumps(doc).encode()])
    assert row.ts == 1763632800123 * 1000
    assert (row.level, row.service, row.message) == ("ERROR", "pay", "boom")
    assert json.loads(row.attrs) == {
        "latency_ms": 12.5,
        "ok": False,
        "tags": ["a"],
        "ctx": {"k": 1},
    }


def test_plain_text_becomes_message_with_stream_time_flagged() -> None:
    row = decode(SID, [b"line", b"GET / 200 in 3ms"])
    assert row.message == "GET / 200 in 3ms"
    assert row.ts == SID_US
    assert json.loads(row.attrs) == {"_ts_source": "stream_id"}
    assert (row.level, row.service, row.host) == ("INFO", "unknown", "unknown")


def test_broken_json_in_a_single_field_is_still_a_log_line() -> None:
    row = decode(SID, [b"data", b'{"msg": "unterminated'])
    assert row.message == '{"msg": "unterminated'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-20T10:00:00Z", "2026-11-20T10:00:00+00:00"),
        ("2026-11-20T12:00:00+02:00", "2026-11-20T10:00:00+00:00"),
        ("2026-11-20T05:00:00.5-05:00", "2026-11-20T10:00:00.5+00:00"),
        ("2026-11-20 10:00:00", "2026-11-20T10:00:00+00:00"),
        ("2026-11-20t10:00:00z", "2026-11-20T10:00:00+00:00"),
        ("1795168800", "2026-11-20T10:00:00+00:00"),
        ("1795168800.25", "2026-11-20T10:00:00.25+00:00"),
        ("1795168800000", "2026-11-20T10:00:00+00:00"),
        ("1795168800000000", "2026-11-20T10:00:00+00:00"),
        ("1795168800000000000", "2026-11-20T10:00:00+00:00"),
    ],
)
def test_timestamp_forms_convert_to_utc_micros(value: str, expected: str) -> None:
    assert parse_ts(value) == us(expected)


def test_numeric_json_timestamps_by_magnitude() -> None:
    for number in (1795168800, 1795168800000, 1795168800000000, 1795168800000000000):
        row = decode(SID, [b"data", json.dumps({"ts": number}).encode()])
        assert row.ts == us("2026-11-20T10:00:00+00:00")


def test_unparseable_timestamp_falls_back_to_stream_id_and_keeps_the_original() -> None:
    row = decode(SID, fields(ts="yesterday-ish", message="x"))
    assert row.ts == SID_US
    assert json.loads(row.attrs) == {"_ts_source": "stream_id", "_ts_raw": "yesterday-ish"}


@pytest.mark.parametrize(
    "raw",
    [
        "²",  # str.isdigit() says yes, int() says no: once crashed the consumer
        "2026-11-20T10:00:00.²Z",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC: no partition can hold it
    ],
)
def test_odd_timestamps_fall_back_to_the_stream_id(raw: str) -> None:
    row = decode(SID, fields(ts=raw, level="²", message="x"))
    assert row.ts == SID_US
    assert row.level == "²"
    assert json.loads(row.attrs) == {"_ts_source": "stream_id", "_ts_raw": raw}


@pytest.mark.parametrize(
    ("raw", "level"),
    [
        ("emerg", "FATAL"),
        ("alert", "FATAL"),
        ("crit", "FATAL"),
        ("err", "ERROR"),
        ("Error", "ERROR"),
        ("warning", "WARN"),
        ("WARN", "WARN"),
        ("notice", "INFO"),
        ("info", "INFO"),
        ("debug", "DEBUG"),
        ("trace", "TRACE"),
        (10, "TRACE"),
        (20, "DEBUG"),
        (30, "INFO"),
        (40, "WARN"),
        (50, "ERROR"),
        (60, "FATAL"),
        (3, "ERROR"),
        ("4", "WARN"),
        ("verbose", "TRACE"),
        ("SEVERE", "ERROR"),
        ("Information", "INFO"),
        (None, "INFO"),
    ],
)
def test_level_normalisation(raw: object, level: str) -> None:
    assert normalize_level(raw) == level


def test_aliases_and_syslog_ng_upper_case_names() -> None:
    row = decode(SID, fields(HOST="web1", PROGRAM="nginx", MESSAGE="hi", PRIORITY="err"))
    assert (row.host, row.service, row.message, row.level) == ("web1", "nginx", "hi", "ERROR")
    row = decode(SID, [b"j", b'{"hostname": "h", "container": "c", "log": "l", "traceId": "t"}'])
    assert (row.host, row.service, row.message, row.trace_id) == ("h", "c", "l", "t")


def test_best_alias_wins_and_the_other_stays_in_attrs() -> None:
    row = decode(SID, fields(message="main", msg="secondary", service="s"))
    assert row.message == "main"
    assert json.loads(row.attrs) == {"msg": "secondary", "_ts_source": "stream_id"}


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ([b"data", b"x" * 2048], "entry too large"),
        ([b"msg", b"\xff\xfe bad"], "invalid UTF-8"),
        ([b"data", b'{"msg": "\\ud800 lone"}'], "lone surrogate"),
        ([b"data", b'{"a":' * 100 + b"1" + b"}" * 100], "nested deeper"),
        ([b"data", b'{"v": NaN}'], "NaN"),
        ([], "payload lost"),
    ],
)
def test_bad_entries_are_refused_with_a_reason(entry: list[bytes], reason: str) -> None:
    with pytest.raises(BadEntry) as info:
        decode(SID, entry, max_bytes=1024, max_depth=64)
    assert reason in info.value.reason


def test_every_row_has_the_same_attrs_type_whatever_the_shape() -> None:
    rows = [
        decode(SID, fields(a="1", message="m")),
        decode(SID, [b"data", b'{"a": 1, "message": "m"}']),
        decode(SID, [b"line", b"m"]),
    ]
    assert all(isinstance(json.loads(r.attrs), dict) for r in rows)
