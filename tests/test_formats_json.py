"""Known JSON schemas map to the columns (design §3), dotted and nested, the same in both decode
lanes: journald, OpenTelemetry records and OTLP/JSON batches, ECS, Serilog CLEF, structlog,
python-json-logger, bunyan, Google Cloud, syslog-ng's macro names, Docker json-file."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import orjson
import pytest

from ingest.consume.columnar import decode_json
from ingest.errors import BadEntry
from ingest.records import decode, decode_rows
from tests.lane_contract import assert_contract, synthetic_ids

SID = "1795168800000-0"  # 2026-11-20T10:00:00Z


def us(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1_000_000)


def row_of(doc: dict[str, object] | str) -> tuple[object, ...]:
    raw = doc if isinstance(doc, str) else json.dumps(doc)
    row = decode(SID, [b"data", raw.encode()])
    return row


def attrs(row: object) -> dict[str, object]:
    return json.loads(row.attrs)  # type: ignore[attr-defined]


def test_journald_export_fields() -> None:
    row = row_of(
        {
            "__REALTIME_TIMESTAMP": "1795168800123456",
            "PRIORITY": "3",
            "_HOSTNAME": "web1",
            "SYSLOG_IDENTIFIER": "sshd",
            "_COMM": "sshd-session",
            "MESSAGE": "Accepted publickey for root",
            "_PID": "812",
        }
    )
    assert row.ts == 1795168800123456
    assert (row.level, row.host, row.service) == ("ERROR", "web1", "sshd")
    assert row.message == "Accepted publickey for root"
    assert attrs(row) == {"_COMM": "sshd-session", "_PID": "812"}


def test_journald_binary_message_is_text_not_an_array() -> None:
    row = row_of({"__REALTIME_TIMESTAMP": "1795168800000000", "MESSAGE": [104, 105, 255]})
    assert row.message == "hi\\xff"


def test_journald_source_time_wins_over_the_journal_time() -> None:
    row = row_of(
        {
            "__REALTIME_TIMESTAMP": "1795168800999999",
            "_SOURCE_REALTIME_TIMESTAMP": "1795168800000001",
            "MESSAGE": "m",
        }
    )
    assert row.ts == 1795168800000001


def test_opentelemetry_record_in_otlp_json_form() -> None:
    record = {
        "timeUnixNano": "1795168800123456789",
        "observedTimeUnixNano": "1795168801000000000",
        "severityNumber": 17,
        "severityText": "",
        "body": {"stringValue": "payment failed"},
        "attributes": [
            {"key": "order_id", "value": {"intValue": "42"}},
            {"key": "retry", "value": {"boolValue": True}},
            {"key": "level", "value": {"stringValue": "an attribute called level"}},
        ],
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "resource": {
            "attributes": [
                {"key": "service.name", "value": {"stringValue": "billing"}},
                {"key": "host.name", "value": {"stringValue": "pay-1"}},
                {"key": "service.version", "value": {"stringValue": "1.4"}},
            ]
        },
    }
    row = row_of(record)
    assert row.ts == 1795168800123456
    assert (row.level, row.service, row.host) == ("ERROR", "billing", "pay-1")
    assert row.message == "payment failed"
    assert row.trace_id == "5b8efff798038103d269b633813fc60c"
    assert attrs(row) == {
        "order_id": 42,
        "retry": True,
        "attr.level": "an attribute called level",
        "span_id": "eee19b7ec3c1b174",
        "service.version": "1.4",
    }


def test_opentelemetry_record_without_time_takes_the_observed_time_and_kv_bodies() -> None:
    row = row_of(
        {
            "observedTimeUnixNano": 1795168801000000000,
            "severityText": "Warning",
            "body": {"kvlistValue": {"values": [{"key": "a", "value": {"intValue": 1}}]}},
        }
    )
    assert row.ts == 1795168801000000
    assert row.level == "WARN"
    assert json.loads(row.message) == {"a": 1}
    assert row.service == "unknown"


def test_otlp_json_batch_is_one_row_per_record_with_distinct_ids() -> None:
    def record(n: int) -> dict[str, object]:
        return {"timeUnixNano": str(1795168800000000000 + n), "body": {"stringValue": f"r{n}"}}

    batch = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]
                },
                "scopeLogs": [
                    {"scope": {"name": "lib", "version": "2"}, "logRecords": [record(0), record(1)]}
                ],
            },
            {"scopeLogs": [{"logRecords": [record(2)]}]},
        ]
    }
    rows = decode_rows(SID, [b"data", orjson.dumps(batch)])
    assert [r.message for r in rows] == ["r0", "r1", "r2"]
    assert [r.stream_id for r in rows] == [f"{SID}#0", f"{SID}#1", f"{SID}#2"]
    assert [r.service for r in rows] == ["api", "api", "unknown"]
    assert attrs(rows[0])["scope.name"] == "lib"
    assert {r.ingested_at for r in rows} == {1795168800000000}
    with pytest.raises(ValueError, match="holds 3 records"):
        decode(SID, [b"data", orjson.dumps(batch)])
    with pytest.raises(BadEntry, match="no log records"):
        decode_rows(SID, [b"data", b'{"resourceLogs": []}'])


@pytest.mark.parametrize(
    "doc",
    [
        {
            "@timestamp": "2026-11-21T09:00:00.5Z",
            "log.level": "warn",
            "service.name": "auth",
            "host.name": "h1",
            "trace.id": "abc",
            "message": "m",
            "event.dataset": "auth.log",
        },
        {
            "@timestamp": "2026-11-21T09:00:00.5Z",
            "log": {"level": "warn"},
            "service": {"name": "auth"},
            "host": {"name": "h1"},
            "trace": {"id": "abc"},
            "message": "m",
            "event": {"dataset": "auth.log"},
        },
    ],
    ids=["dotted", "nested"],
)
def test_ecs_dotted_and_nested(doc: dict[str, object]) -> None:
    row = row_of(doc)
    assert row.ts == us("2026-11-21T09:00:00.5+00:00")
    assert (row.level, row.service, row.host, row.trace_id, row.message) == (
        "WARN",
        "auth",
        "h1",
        "abc",
        "m",
    )
    extra = attrs(row)
    assert extra.get("event.dataset") == "auth.log" or extra.get("event") == {"dataset": "auth.log"}


def test_ecs_nested_level_beside_a_plain_message() -> None:
    row = row_of({"log": {"level": "error", "logger": "x"}, "message": "m"})
    assert (row.level, row.message) == ("ERROR", "m")
    assert attrs(row)["log.logger"] == "x"


def test_nested_objects_never_land_stringified_in_a_column() -> None:
    row = row_of({"message": {"text": "obj"}, "service": {"version": "1"}, "msg": "plain"})
    assert row.message == "plain"
    assert row.service == "unknown"
    assert attrs(row)["message"] == {"text": "obj"}
    assert attrs(row)["service.version"] == "1"


def test_serilog_clef_renders_its_template() -> None:
    row = row_of(
        {
            "@t": "2026-11-21T09:00:00.1234567Z",
            "@mt": "User {UserId} signed in from {@Ip} ({Elapsed:0.00} ms) {{literal}}",
            "@l": "Warning",
            "@tr": "t1",
            "UserId": 7,
            "Ip": {"v": 4},
            "Elapsed": 3.5,
        }
    )
    assert row.ts == us("2026-11-21T09:00:00.123456+00:00")
    assert (row.level, row.trace_id) == ("WARN", "t1")
    assert row.message == 'User 7 signed in from {"v":4} (3.5 ms) {literal}'


def test_clef_without_level_is_information() -> None:
    assert row_of({"@t": "2026-11-21T09:00:00Z", "@m": "hi"}).level == "INFO"


def test_structlog_python_json_logger_bunyan_gcp_syslog_ng() -> None:
    structlog = row_of(
        {"event": "user logged in", "level": "info", "timestamp": "2026-11-21T09:00:00Z"}
    )
    assert (structlog.message, structlog.level) == ("user logged in", "INFO")

    pjl = row_of(
        {
            "asctime": "2026-11-21 09:00:00,250",
            "levelname": "ERROR",
            "name": "app.db",
            "message": "x",
        }
    )
    assert pjl.ts == us("2026-11-21T09:00:00.250+00:00")
    assert (pjl.level, pjl.service) == ("ERROR", "app.db")

    bunyan = row_of(
        {
            "v": 0,
            "level": 50,
            "name": "myapp",
            "hostname": "b1",
            "pid": 3,
            "time": "2026-11-21T09:00:00Z",
            "msg": "m",
        }
    )
    assert (bunyan.level, bunyan.service, bunyan.host) == ("ERROR", "myapp", "b1")

    not_a_logger = row_of({"name": "bob", "msg": "hello"})
    assert not_a_logger.service == "unknown"
    assert attrs(not_a_logger)["name"] == "bob"

    gcp = row_of(
        {
            "severity": "CRITICAL",
            "message": "down",
            "logging.googleapis.com/trace": "projects/p1/traces/0af7651916cd43dd",
            "timestampSeconds": 1795168800,
            "timestampNanos": 5000000,
        }
    )
    assert (gcp.level, gcp.trace_id) == ("FATAL", "0af7651916cd43dd")
    assert gcp.ts == 1795168800005000

    syslog_ng = row_of(
        {
            "ISODATE": "2026-11-21T09:00:00+01:00",
            "HOST": "r1",
            "PROGRAM": "cron",
            "PID": "9",
            "MESSAGE": "ok",
        }
    )
    assert syslog_ng.ts == us("2026-11-21T08:00:00+00:00")
    assert (syslog_ng.host, syslog_ng.service, syslog_ng.message) == ("r1", "cron", "ok")


def test_mongodb_log4j2_and_fluent_bit_dates() -> None:
    mongo = row_of(
        {"t": {"$date": "2026-11-21T09:00:00.123+00:00"}, "s": "W", "c": "NETWORK", "msg": "slow"}
    )
    assert (mongo.ts, mongo.level, mongo.service) == (
        us("2026-11-21T09:00:00.123+00:00"),
        "WARN",
        "NETWORK",
    )
    log4j2 = row_of(
        {
            "instant": {"epochSecond": 1795168800, "nanoOfSecond": 5000000},
            "level": "WARN",
            "message": "m",
        }
    )
    assert log4j2.ts == 1795168800005000
    assert row_of({"date": 1795168800.5, "log": "fluent bit"}).ts == 1795168800500000


def test_docker_json_file_drops_the_newline_and_reads_what_log_holds() -> None:
    plain = row_of({"log": "hello\n", "stream": "stdout", "time": "2026-11-21T09:00:00.5Z"})
    assert (plain.message, plain.ts) == ("hello", us("2026-11-21T09:00:00.5+00:00"))
    assert attrs(plain) == {"stream": "stdout", "_format": "docker"}

    inner_json = row_of(
        {
            "log": '{"level":"error","msg":"boom","ts":"2026-11-21T08:59:59Z"}\n',
            "stream": "stderr",
            "time": "2026-11-21T09:00:00Z",
        }
    )
    assert (inner_json.level, inner_json.message) == ("ERROR", "boom")
    assert inner_json.ts == us("2026-11-21T08:59:59+00:00")
    assert attrs(inner_json)["_format"] == "docker/json"

    inner_text = row_of(
        {
            "log": "2026-11-21 08:59:58,100 WARN [main] disk low\n",
            "stream": "stdout",
            "time": "2026-11-21T09:00:00Z",
        }
    )
    assert (inner_text.level, inner_text.message) == ("WARN", "[main] disk low")
    assert inner_text.ts == us("2026-11-21T08:59:58.1+00:00")


def test_ansi_codes_are_cut_from_columns() -> None:
    row = row_of({"level": "\u001b[31mERROR\u001b[0m", "msg": "\u001b[1mbold\u001b[0m", "ts": 1})
    assert (row.level, row.message) == ("ERROR", "bold")


SCHEMA_DOCS = [
    {"__REALTIME_TIMESTAMP": "1795168800123456", "PRIORITY": "3", "MESSAGE": "m"},
    {
        "@timestamp": "2026-11-21T09:00:00Z",
        "log.level": "warn",
        "service.name": "s",
        "message": "m",
    },
    {"@t": "2026-11-21T09:00:00Z", "@m": "m", "@l": "Error"},
    {"@t": "2026-11-21T09:00:00Z", "@mt": "m {X}", "X": 1},
    {"ts": "2026-11-21T09:00:00Z", "event": "e"},
    {"ts": "2026-11-21T09:00:00Z", "levelname": "INFO", "name": "n", "message": "m"},
    {"ts": "2026-11-21T09:00:00Z", "name": "n", "message": "m"},
    {"ts": "2026-11-21T09:00:00Z", "v": 0, "name": "n", "msg": "m"},
    {"ts": "2026-11-21T09:00:00Z", "log": "x\n", "stream": "stdout"},
    {"ts": "2026-11-21T09:00:00Z", "log": "x", "other": "y"},
    {"ts": "2026-11-21T09:00:00Z", "severityNumber": 9, "body": "m"},
    {
        "ts": "2026-11-21T09:00:00Z",
        "logging.googleapis.com/trace": "projects/p/traces/t",
        "msg": "m",
    },
    {"ts": "2026-11-21T09:00:00Z", "message": "\u001b[31mred\u001b[0m"},
    {"ts": "2026-11-21T09:00:00Z", "host.hostname": "h", "_HOSTNAME": "j", "message": "m"},
    {"t": "2026-11-21T09:00:00Z", "s": "I", "c": "x", "msg": "m"},
    {"date": "2026-11-21T09:00:00Z", "timeMillis": 1795168800000, "message": "m"},
]


def test_both_lanes_agree_on_schema_documents() -> None:
    raw = [orjson.dumps(d) for d in SCHEMA_DOCS] * 3
    ids = synthetic_ids(len(raw))
    table, left = decode_json(ids, raw)
    taken = assert_contract(table, left, ids, [[b"data", r] for r in raw])
    assert taken > 0 and left


def test_naive_times_are_read_in_the_timezone_setting() -> None:
    from ingest.formats.registry import Formats

    row = decode(
        SID,
        [b"data", b'{"ts": "2026-07-01 12:00:00", "message": "m"}'],
        formats=Formats(timezone="Europe/Berlin"),
    )
    assert row.ts == int(datetime(2026, 7, 1, 10, tzinfo=UTC).timestamp() * 1_000_000)
