"""`logs receive` limits: bodies are measured as sent and again while they inflate (gzip, zstd
and snappy bombs refused without being inflated whole), records are counted per request; each
protocol answers 413 in its own form naming the limit, nothing is written, and the server
keeps serving."""

from __future__ import annotations

import gzip
import http.client
from collections.abc import Iterator

import cramjam
import orjson
import pytest
import zstandard
from google.rpc import status_pb2

from tests.helpers import RedisProc
from tests.receiver import TOKEN, Receiver, module_env, post, rows, running

MAX_BODY = 1024 * 1024
MAX_RECORDS = 100
BOMB = gzip.compress(b"\0" * (64 * 1024 * 1024), 9)  # ~64 KB that inflate to 64 MiB


@pytest.fixture(scope="module")
def receiver(redis_proc: RedisProc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    settings = {
        "LOGS_RECEIVE_MAX_BODY": str(MAX_BODY),
        "LOGS_RECEIVE_MAX_RECORDS": str(MAX_RECORDS),
    }
    with running(module_env(redis_proc, tmp_path_factory), **settings) as r:
        yield r


def _still_serving(receiver: Receiver) -> None:
    assert post(receiver.url("loki", "/ingest"), b'{"msg":"after"}')[0] == 200


# (path, port, content type, how the protocol says 413)
def _otlp(body: bytes) -> str:
    return status_pb2.Status.FromString(body).message


def _elastic(body: bytes) -> str:
    return orjson.loads(body)["error"]["reason"]  # type: ignore[no-any-return]


def _hec(body: bytes) -> str:
    return orjson.loads(body)["text"]  # type: ignore[no-any-return]


def _loki(body: bytes) -> str:
    return body.decode()


def _ndjson(body: bytes) -> str:
    return orjson.loads(body)["error"]  # type: ignore[no-any-return]


PROTOCOLS = [
    ("otlp", "/v1/logs", "application/x-protobuf", _otlp),
    ("elastic", "/_bulk", "application/x-ndjson", _elastic),
    ("hec", "/services/collector/event", "application/json", _hec),
    ("loki", "/loki/api/v1/push", "application/json", _loki),
    ("loki", "/ingest", "application/x-ndjson", _ndjson),
]


@pytest.mark.parametrize(("port", "path", "ctype", "reason"), PROTOCOLS)
def test_a_gzip_bomb_is_refused_while_inflating(
    receiver: Receiver, redis_proc: RedisProc, port: str, path: str, ctype: str, reason: object
) -> None:
    status, headers, body = post(
        receiver.url(port, path), BOMB, {"Content-Type": ctype, "Content-Encoding": "gzip"}
    )
    assert status == 413
    assert f"receive_max_body ({MAX_BODY} bytes)" in reason(body)  # type: ignore[operator]
    assert rows(redis_proc.client(), receiver.stream) == []
    _still_serving(receiver)


def test_zstd_and_snappy_bombs_too(receiver: Receiver, redis_proc: RedisProc) -> None:
    zstd_bomb = zstandard.ZstdCompressor(level=19).compress(b"\0" * (64 * 1024 * 1024))
    status, _, body = post(
        receiver.url("otlp", "/v1/logs"),
        zstd_bomb,
        {"Content-Type": "application/x-protobuf", "Content-Encoding": "zstd"},
    )
    assert status == 413 and "receive_max_body" in _otlp(body)
    # A snappy block names its inflated size first: refused before inflating.
    snappy_bomb = bytes(cramjam.snappy.compress_raw(b"\0" * (8 * 1024 * 1024)))
    assert len(snappy_bomb) < MAX_BODY
    status, _, body = post(
        receiver.url("loki", "/loki/api/v1/push"),
        snappy_bomb,
        {"Content-Type": "application/x-protobuf"},
    )
    assert status == 413 and "receive_max_body" in _loki(body)
    assert rows(redis_proc.client(), receiver.stream) == []


@pytest.mark.parametrize(("port", "path", "ctype", "reason"), PROTOCOLS)
def test_a_50_mb_body_is_refused(
    receiver: Receiver, redis_proc: RedisProc, port: str, path: str, ctype: str, reason: object
) -> None:
    status, _, body = post(
        receiver.url(port, path), b"x" * (50 * 1024 * 1024), {"Content-Type": ctype}
    )
    assert status == 413 and "receive_max_body" in reason(body)  # type: ignore[operator]
    assert rows(redis_proc.client(), receiver.stream) == []
    _still_serving(receiver)


def test_a_chunked_body_without_a_length_is_cut_at_the_limit(
    receiver: Receiver, redis_proc: RedisProc
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", receiver.ports["loki"], timeout=60)

    def chunks() -> Iterator[bytes]:
        for _ in range(50):
            yield b'{"msg":"' + b"y" * (1024 * 1024) + b'"}\n'

    conn.request(
        "POST",
        "/ingest",
        body=chunks(),
        headers={"Authorization": f"Bearer {TOKEN}"},
        encode_chunked=True,
    )
    response = conn.getresponse()
    assert response.status == 413
    assert "receive_max_body" in orjson.loads(response.read())["error"]
    conn.close()
    assert rows(redis_proc.client(), receiver.stream) == []
    _still_serving(receiver)


def _too_many(port: str) -> bytes:
    n = MAX_RECORDS + 1
    if port == "otlp":
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

        request = logs_service_pb2.ExportLogsServiceRequest()
        records = request.resource_logs.add().scope_logs.add().log_records
        for i in range(n):
            records.add().body.string_value = f"r{i}"
        return request.SerializeToString()
    if port == "elastic":
        return b'{"index":{}}\n{"msg":"r"}\n' * n
    if port == "hec":
        return b'{"event":"r"}' * n
    if port == "loki":
        values = [[str(1_795_168_800_000_000_000 + i), "r"] for i in range(n)]
        return orjson.dumps({"streams": [{"stream": {"a": "b"}, "values": values}]})
    return b'{"msg":"r"}\n' * n


@pytest.mark.parametrize(("port", "path", "ctype", "reason"), PROTOCOLS)
def test_too_many_records_are_refused_naming_the_limit(
    receiver: Receiver, redis_proc: RedisProc, port: str, path: str, ctype: str, reason: object
) -> None:
    body = _too_many(port if path != "/ingest" else "ndjson")
    status, _, answer = post(receiver.url(port, path), body, {"Content-Type": ctype})
    assert status == 413
    assert f"receive_max_records is {MAX_RECORDS}" in reason(answer)  # type: ignore[operator]
    assert rows(redis_proc.client(), receiver.stream) == []
    _still_serving(receiver)
