"""`logs receive`, Loki push and NDJSON: python-logging-loki (JSON, basic auth) and a protobuf
client written to Loki's push.proto (snappy block, wire format encoded here by hand) land
entries with their labels, structured metadata and tenant; NDJSON takes objects and text lines
the way `logs send` does."""

from __future__ import annotations

import gzip
import http.client
import logging

import cramjam
import orjson
import pytest

from tests.helpers import RedisProc
from tests.receiver import TOKEN, Receiver, attrs, entries, post, rows

PUSH = "/loki/api/v1/push"


def test_python_logging_loki_lands_records_with_labels(
    receiver: Receiver, redis_proc: RedisProc
) -> None:
    import logging_loki

    handler = logging_loki.LokiHandler(
        url=receiver.url("loki", PUSH),
        tags={"application": "billing", "host": "vm-3"},
        auth=("tenant-a", TOKEN),
        version="1",
    )
    logger = logging.getLogger("loki-client-test")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.error("charge declined", extra={"tags": {"order": "o-1"}})
    logger.info("charge ok")
    got = rows(redis_proc.client(), receiver.stream)
    assert [(r.message, r.level, r.service, r.host) for r in got] == [
        ("charge declined", "ERROR", "billing", "vm-3"),
        ("charge ok", "INFO", "billing", "vm-3"),
    ]
    assert attrs(got[0])["order"] == "o-1"
    assert attrs(got[0])["logger"] == "loki-client-test"
    assert "_ts_source" not in attrs(got[0])


# -- protobuf, encoded by hand from push.proto -------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _entry(ns: int, line: str, metadata: dict[str, str]) -> bytes:
    timestamp = _field(1, ns // 1_000_000_000) + _field(2, ns % 1_000_000_000)
    pairs = b"".join(
        _field(3, _field(1, k.encode()) + _field(2, v.encode())) for k, v in metadata.items()
    )
    return _field(1, timestamp) + _field(2, line.encode()) + pairs


def push_request(streams: list[tuple[str, list[tuple[int, str, dict[str, str]]]]]) -> bytes:
    """PushRequest{streams: [StreamAdapter{labels, entries: [EntryAdapter{timestamp, line,
    structuredMetadata}]}]}, snappy block compressed as Promtail and Alloy send it."""
    body = b"".join(
        _field(1, _field(1, labels.encode()) + b"".join(_field(2, _entry(*e)) for e in es))
        for labels, es in streams
    )
    return bytes(cramjam.snappy.compress_raw(body))


@pytest.mark.parametrize("stray_encoding", [False, True])
def test_protobuf_snappy_pushes_land_with_labels_metadata_and_tenant(
    receiver: Receiver, redis_proc: RedisProc, stray_encoding: bool
) -> None:
    body = push_request(
        [
            (
                '{job="varlogs", host="web-1", filename="/var/log/app.log", level="warn"}',
                [
                    (
                        1_795_168_800_123_456_789,
                        "disk 91% full",
                        {"trace_id": "t-1", "user": "ann"},
                    ),
                    (1_795_168_801_000_000_000, 'quote " and \\ backslash', {}),
                ],
            ),
            (
                '{service_name="api", note="a \\"quoted\\" label"}',
                [(1_795_168_802_000_000_000, "hi", {})],
            ),
        ]
    )
    headers = {"Content-Type": "application/x-protobuf", "X-Scope-OrgID": "team-a"}
    if stray_encoding:
        headers["Content-Encoding"] = "snappy"
    status, _, raw = post(receiver.url("loki", PUSH), body, headers)
    assert (status, raw) == (204, b"")
    got = rows(redis_proc.client(), receiver.stream)
    assert [(r.ts, r.level, r.service, r.host, r.message, r.trace_id) for r in got] == [
        (1_795_168_800_123_456, "WARN", "varlogs", "web-1", "disk 91% full", "t-1"),
        (1_795_168_801_000_000, "WARN", "varlogs", "web-1", 'quote " and \\ backslash', None),
        (1_795_168_802_000_000, "INFO", "api", "unknown", "hi", None),
    ]
    assert attrs(got[0]) == {
        "job": "varlogs",
        "filename": "/var/log/app.log",
        "user": "ann",
        "tenant": "team-a",
    }
    assert attrs(got[2])["note"] == 'a "quoted" label'


def test_json_pushes_gzip_and_metadata(receiver: Receiver, redis_proc: RedisProc) -> None:
    push = {
        "streams": [
            {
                "stream": {"app": "shop", "instance": "i-9"},
                "values": [
                    ["1795168800000000000", "line one"],
                    ["1795168800000000001", "line two", {"trace_id": "x9"}],
                ],
            }
        ]
    }
    status, _, _ = post(
        receiver.url("loki", PUSH),
        gzip.compress(orjson.dumps(push)),
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert status == 204
    got = rows(redis_proc.client(), receiver.stream)
    assert [(r.service, r.message, r.trace_id) for r in got] == [
        ("shop", "line one", None),
        ("shop", "line two", "x9"),
    ]


def test_lines_a_text_format_reads_keep_their_own_time_and_level(
    receiver: Receiver, redis_proc: RedisProc
) -> None:
    push = {
        "streams": [
            {
                "stream": {"job": "varlogs", "host": "collector-1"},
                "values": [
                    ["1795168800000000000", "<11>Nov 20 09:59:57 web7 sshd[812]: auth failed"],
                    ["1795168800000000001", "plain words"],
                ],
            }
        ]
    }
    status, _, _ = post(receiver.url("loki", PUSH), orjson.dumps(push))
    assert status == 204
    got = rows(redis_proc.client(), receiver.stream)
    assert [(r.ts, r.level, r.host, r.service, r.message) for r in got] == [
        (1_795_168_797_000_000, "ERROR", "web7", "sshd", "auth failed"),
        (1_795_168_800_000_000, "INFO", "collector-1", "varlogs", "plain words"),
    ]
    # What the line displaced is kept.
    assert attrs(got[0])["attr.host"] == "collector-1"


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("application/json", b'{"streams": [{"stream": {}, "values": [["soon", "x"]]}]}'),
        ("application/json", b'{"streams": 5}'),
        ("application/json", b'{"streams": [{"values": [["1", "\xff"]]}]}'),
        ("application/x-protobuf", b"\x05not snappy at all"),
        ("application/x-protobuf", bytes(cramjam.snappy.compress_raw(b"\xff\xff\xff\xff"))),
    ],
)
def test_bad_pushes_are_400_in_plain_text(
    receiver: Receiver, redis_proc: RedisProc, ctype: str, body: bytes
) -> None:
    status, headers, raw = post(receiver.url("loki", PUSH), body, {"Content-Type": ctype})
    assert status == 400 and headers["content-type"].startswith("text/plain")
    assert raw.strip() and b"Traceback" not in raw
    assert rows(redis_proc.client(), receiver.stream) == []


def test_a_json_push_without_a_content_type_is_read_as_json(
    receiver: Receiver, redis_proc: RedisProc
) -> None:
    push = {"streams": [{"stream": {"app": "x"}, "values": [["1795168800000000000", "no type"]]}]}
    conn = http.client.HTTPConnection("127.0.0.1", receiver.ports["loki"], timeout=30)
    conn.request(
        "POST", PUSH, body=orjson.dumps(push), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert conn.getresponse().status == 204
    conn.close()
    assert [r.message for r in rows(redis_proc.client(), receiver.stream)] == ["no type"]


def test_a_wrong_token_is_401_or_403(receiver: Receiver) -> None:
    body = orjson.dumps({"streams": []})
    headers = {"Content-Type": "application/json"}
    assert post(receiver.url("loki", PUSH), body, headers, token=None)[0] == 401
    assert post(receiver.url("loki", PUSH), body, headers, token="nope")[0] == 403


# -- NDJSON ---------------------------------------------------------------------------------


def test_ndjson_objects_pass_through_and_text_lines_stay_text(
    receiver: Receiver, redis_proc: RedisProc
) -> None:
    body = (
        b'{"ts":"2026-11-20T10:00:00Z","level":"error","msg":"json one","k":1}\n'
        b'plain text line\n\n  {"msg":"two"}  \n'
    )
    status, _, raw = post(receiver.url("loki", "/ingest"), body)
    assert (status, orjson.loads(raw)) == (200, {"accepted": 3})
    raw_entries = [fields for _, fields in entries(redis_proc.client(), receiver.stream)]
    assert raw_entries[0] == [b"data", body.split(b"\n")[0]]  # the object line, byte for byte
    assert raw_entries[1] == [b"line", b"plain text line"]
    got = rows(redis_proc.client(), receiver.stream)
    assert [(r.level, r.message) for r in got] == [
        ("ERROR", "json one"),
        ("INFO", "plain text line"),
        ("INFO", "two"),
    ]


def test_ndjson_defaults_from_the_query_and_json_arrays(
    receiver: Receiver, redis_proc: RedisProc
) -> None:
    body = b'[{"msg":"a"},{"msg":"b","service":"own"},"text"]'
    assert post(receiver.url("otlp", "/ingest?service=batch&host=h1"), body)[0] == 200
    got = rows(redis_proc.client(), receiver.stream)
    assert [(r.service, r.host, r.message) for r in got] == [
        ("batch", "h1", "a"),
        ("own", "h1", "b"),
        ("batch", "h1", "text"),
    ]


def test_ndjson_invalid_utf8_refuses_the_whole_request(
    receiver: Receiver, redis_proc: RedisProc
) -> None:
    status, _, raw = post(receiver.url("loki", "/ingest"), b'{"msg":"ok"}\nbad \xff line\n')
    assert status == 400
    assert orjson.loads(raw) == {"error": "line 2: invalid UTF-8 at byte 4"}
    assert rows(redis_proc.client(), receiver.stream) == []
