"""`logs receive`, Splunk HEC: a client built to Docker's `splunk` logging driver (OPTIONS
check, `Splunk` token, envelopes written back to back, `time` as "%f" seconds, gzip, the inline
and json formats) lands every line once; HEC's own codes for tokens and bad data; `/raw`."""

from __future__ import annotations

import gzip
import json
from typing import Any

import orjson
import pytest

from tests.helpers import RedisProc
from tests.receiver import TOKEN, Receiver, attrs, entries, post, rows

EVENT_URL = "/services/collector/event/1.0"


def docker_driver_post(
    receiver: Receiver, messages: list[dict[str, Any]], compress: bool = False
) -> tuple[int, dict[str, Any]]:
    """What moby's daemon/logger/splunk does: OPTIONS once, then each message json.Marshal'ed
    (compact, no separator), `Authorization: Splunk <token>`, optionally gzip."""
    status, _, _ = post(receiver.url("hec", EVENT_URL), None, method="OPTIONS", token=None)  # type: ignore[arg-type]
    assert status == 200
    body = b"".join(json.dumps(m, separators=(",", ":")).encode() for m in messages)
    headers = {"Authorization": f"Splunk {TOKEN}"}
    if compress:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    status, _, raw = post(receiver.url("hec", EVENT_URL), body, headers, token=None)
    return status, orjson.loads(raw)


def message(i: int, line: Any, *, fmt: str = "inline") -> dict[str, Any]:
    return {
        "event": {"line": line, "source": "stderr" if i % 2 else "stdout", "tag": "web-1"},
        "time": f"{1_795_168_800 + i / 1000:f}",
        "host": "docker-host",
    }


@pytest.mark.parametrize("compress", [False, True])
def test_docker_splunk_driver_lines_land_once_with_their_columns(
    receiver: Receiver, redis_proc: RedisProc, compress: bool
) -> None:
    messages = [message(i, f"GET /items/{i} 200") for i in range(1000)]
    status, answer = docker_driver_post(receiver, messages, compress)
    assert (status, answer) == (200, {"text": "Success", "code": 0})
    got = rows(redis_proc.client(), receiver.stream)
    assert [r.message for r in got] == [f"GET /items/{i} 200" for i in range(1000)]
    assert [r.ts for r in got[:3]] == [
        1_795_168_800_000_000,
        1_795_168_800_001_000,
        1_795_168_800_002_000,
    ]
    assert {(r.host, r.service) for r in got} == {("docker-host", "web-1")}
    assert attrs(got[1]) == {"stream": "stderr"}


def test_the_json_format_keeps_the_lines_own_fields(
    receiver: Receiver, redis_proc: RedisProc
) -> None:
    line = {"level": "error", "msg": "db timeout", "trace_id": "ab12", "ms": 812}
    messages = [message(0, line, fmt="json")]
    messages[0]["event"]["attrs"] = {"com.example.team": "payments"}
    messages[0]["sourcetype"] = "docker:json"
    assert docker_driver_post(receiver, messages)[0] == 200
    (row,) = rows(redis_proc.client(), receiver.stream)
    assert (row.level, row.message, row.trace_id, row.service) == (
        "ERROR",
        "db timeout",
        "ab12",
        "web-1",
    )
    assert attrs(row) == {
        "ms": 812,
        "stream": "stdout",
        "com.example.team": "payments",
        "sourcetype": "docker:json",
    }


def test_plain_envelopes_with_fields(receiver: Receiver, redis_proc: RedisProc) -> None:
    body = (
        b'{"time": 1795168800.5, "host": "h", "source": "app.log", "index": "main",'
        b' "event": "disk full", "fields": {"dc": "eu-1"}}\n'
        b'{"event": {"message": "object event", "severity": "warning"}}'
    )
    status, _, raw = post(
        receiver.url("hec", "/services/collector"),
        body,
        {"Authorization": f"Splunk {TOKEN}"},
        token=None,
    )
    assert (status, orjson.loads(raw)["code"]) == (200, 0)
    first, second = rows(redis_proc.client(), receiver.stream)
    assert (first.ts, first.host, first.message) == (1_795_168_800_500_000, "h", "disk full")
    assert attrs(first) == {"source": "app.log", "index": "main", "dc": "eu-1"}
    assert (second.message, second.level) == ("object event", "WARN")


@pytest.mark.parametrize(
    ("authorization", "status", "answer"),
    [
        (None, 401, {"text": "Token is required", "code": 2}),
        (TOKEN, 401, {"text": "Invalid authorization", "code": 3}),
        ("Splunk wrong", 403, {"text": "Invalid token", "code": 4}),
    ],
)
def test_tokens_are_checked_with_hec_codes(
    receiver: Receiver,
    redis_proc: RedisProc,
    authorization: str | None,
    status: int,
    answer: dict[str, Any],
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    got, _, raw = post(receiver.url("hec", EVENT_URL), b'{"event":"x"}', headers, token=None)
    assert (got, orjson.loads(raw)) == (status, answer)
    assert rows(redis_proc.client(), receiver.stream) == []


@pytest.mark.parametrize(
    ("body", "answer"),
    [
        (
            b'{"event":"ok"}{"time":1}',
            {"text": "Event field is required", "code": 12, "invalid-event-number": 1},
        ),
        (
            b'{"event":"ok"}{"event":""}',
            {"text": "Event field cannot be blank", "code": 13, "invalid-event-number": 1},
        ),
        (
            b'{"event":"ok"} garbage',
            {"text": "Invalid data format", "code": 6, "invalid-event-number": 1},
        ),
        (b'{"event":"\xff"}', {"text": "Invalid data format: invalid UTF-8 at byte 10", "code": 6}),
        (b"", {"text": "No data", "code": 5}),
    ],
)
def test_bad_events_refuse_the_request_with_its_number(
    receiver: Receiver, redis_proc: RedisProc, body: bytes, answer: dict[str, Any]
) -> None:
    status, _, raw = post(
        receiver.url("hec", EVENT_URL), body, {"Authorization": f"Splunk {TOKEN}"}
    )
    assert (status, orjson.loads(raw)) == (400, answer)
    assert rows(redis_proc.client(), receiver.stream) == []


def test_an_event_string_holding_the_boundary_is_read_whole(
    receiver: Receiver, redis_proc: RedisProc
) -> None:
    body = b'{"event":"a}{b"}{"event":"c} {d"}'
    assert post(receiver.url("hec", EVENT_URL), body)[0] == 200
    assert [r.message for r in rows(redis_proc.client(), receiver.stream)] == ["a}{b", "c} {d"]


def test_raw_lines_with_and_without_metadata(receiver: Receiver, redis_proc: RedisProc) -> None:
    body = b"first line\r\nsecond line\n\n"
    assert (
        post(receiver.url("hec", "/services/collector/raw?host=h9&sourcetype=syslog"), body)[0]
        == 200
    )
    assert post(receiver.url("hec", "/services/collector/raw"), b"bare line\n")[0] == 200
    got = entries(redis_proc.client(), receiver.stream)
    assert got[2][1] == [b"line", b"bare line"]  # the text formats of the decoder read it
    decoded = rows(redis_proc.client(), receiver.stream)
    assert [(r.message, r.host) for r in decoded[:2]] == [
        ("first line", "h9"),
        ("second line", "h9"),
    ]
    assert attrs(decoded[0])["sourcetype"] == "syslog"


def test_health_and_options_need_no_token(receiver: Receiver) -> None:
    status, _, raw = post(
        receiver.url("hec", "/services/collector/health"), None, method="GET", token=None
    )  # type: ignore[arg-type]
    assert (status, orjson.loads(raw)) == (200, {"text": "HEC is healthy", "code": 17})


def test_indexer_acknowledgement_with_a_channel(receiver: Receiver, redis_proc: RedisProc) -> None:
    headers = {"Authorization": f"Splunk {TOKEN}", "X-Splunk-Request-Channel": "0aeeac95-ac74"}
    first = orjson.loads(post(receiver.url("hec", EVENT_URL), b'{"event":"a"}', headers)[2])
    second = orjson.loads(post(receiver.url("hec", EVENT_URL), b'{"event":"b"}', headers)[2])
    assert first["code"] == 0 and second["ackId"] != first["ackId"]
    query = orjson.dumps({"acks": [first["ackId"], second["ackId"]]})
    status, _, raw = post(receiver.url("hec", "/services/collector/ack"), query, headers)
    assert (status, orjson.loads(raw)) == (
        200,
        {"acks": {str(first["ackId"]): True, str(second["ackId"]): True}},
    )
    assert [r.message for r in rows(redis_proc.client(), receiver.stream)] == ["a", "b"]


def test_docker_lines_are_read_by_the_text_formats(
    receiver: Receiver, redis_proc: RedisProc
) -> None:
    lines = [
        "2026-11-20 09:59:58,500 ERROR [main] c.e.Pay - card declined",
        '10.0.0.7 - - [20/Nov/2026:09:59:59 +0000] "POST /pay HTTP/1.1" 502 12 "-" "curl/8"',
        "no format here",
    ]
    status, _ = docker_driver_post(receiver, [message(i, line) for i, line in enumerate(lines)])
    assert status == 200
    got = rows(redis_proc.client(), receiver.stream)
    # The line's own time and level; the driver's time where the line has none.
    assert [(r.ts, r.level) for r in got] == [
        (1_795_168_798_500_000, "ERROR"),
        (1_795_168_799_000_000, "ERROR"),
        (1_795_168_800_002_000, "INFO"),
    ]
    assert got[0].message == "[main] c.e.Pay - card declined"
    assert attrs(got[1])["status"] == 502 and attrs(got[1])["_format"] == "combined"
    assert {r.host for r in got} == {"docker-host"} and {r.service for r in got} == {"web-1"}
