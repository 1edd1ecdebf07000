"""`logs receive` under trouble: ingest falling behind (each protocol's retryable answer with
Retry-After), Redis down before and in the middle of a request (retryable, nothing of the
request written, served again once Redis is back), SIGTERM with a request in flight (finished,
exit 0), garbage on the socket (the server keeps serving)."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import redis

from tests.helpers import RedisProc
from tests.receiver import TOKEN, Receiver, module_env, post, rows, running, wait_ready

pytestmark = pytest.mark.slow  # fault loops: `-m "not slow"` skips them for a quick run


def _until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


OTLP_EMPTY_JSON = (
    b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]}]}'
)
# (port, path, content type, body, how the protocol says "retry")
REQUESTS: list[tuple[str, str, str, bytes, Callable[[int, bytes], bool]]] = [
    (
        "otlp",
        "/v1/logs",
        "application/json",
        OTLP_EMPTY_JSON,
        lambda status, body: status in (429, 503) and orjson.loads(body)["code"] in (8, 14),
    ),
    (
        "elastic",
        "/_bulk",
        "application/x-ndjson",
        b'{"index":{}}\n{"msg":"x"}\n',
        lambda status, body: (
            status in (429, 503) and "exception" in orjson.loads(body)["error"]["type"]
        ),
    ),
    (
        "hec",
        "/services/collector/event",
        "application/json",
        b'{"event":"x"}',
        lambda status, body: status == 503 and orjson.loads(body)["code"] == 9,
    ),
    (
        "loki",
        "/loki/api/v1/push",
        "application/json",
        b'{"streams":[{"stream":{"a":"b"},"values":[["1795168800000000000","x"]]}]}',
        lambda status, body: status in (429, 503) and bool(body.strip()),
    ),
    ("loki", "/ingest", "application/x-ndjson", b"x\n", lambda status, body: status in (429, 503)),
]


@pytest.fixture(scope="module")
def receiver(redis_proc: RedisProc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    with running(module_env(redis_proc, tmp_path_factory), LOGS_RECEIVE_MAX_LAG="10") as r:
        yield r


def test_a_backlog_over_the_limit_gets_retryable_answers_until_it_drains(
    receiver: Receiver, redis_proc: RedisProc
) -> None:
    client: redis.Redis = redis_proc.client()
    for i in range(20):
        client.xadd(receiver.stream, {"line": f"queued {i}"})
    # The backlog is read at most twice a second: the refusals start within that.
    _until(lambda: post(receiver.url("loki", "/ingest"), b"x\n")[0] == 429, "the backlog")
    before = client.xlen(receiver.stream)
    for port, path, ctype, body, retryable in REQUESTS:
        status, headers, answer = post(receiver.url(port, path), body, {"Content-Type": ctype})
        assert retryable(status, answer), (path, status, answer)
        assert headers["retry-after"] == "5"
    assert client.xlen(receiver.stream) == before  # nothing of the refused requests
    status, _, answer = post(receiver.url("hec", "/services/collector/health"), None, method="GET")  # type: ignore[arg-type]
    assert (status, orjson.loads(answer)["code"]) == (503, 18)
    client.xtrim(receiver.stream, maxlen=0)
    _until(lambda: post(receiver.url("loki", "/ingest"), b"x\n")[0] == 200, "the backlog to drain")


@pytest.fixture
def outage(
    own_redis: RedisProc, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Receiver, RedisProc]]:
    env = module_env(own_redis, tmp_path_factory)
    with running(env) as r:
        yield r, own_redis


def test_redis_down_gets_retryable_answers_and_service_resumes(
    outage: tuple[Receiver, RedisProc],
) -> None:
    receiver, own = outage
    assert post(receiver.url("loki", "/ingest"), b"before\n")[0] == 200
    own.kill()
    for port, path, ctype, body, retryable in REQUESTS:
        status, headers, answer = post(receiver.url(port, path), body, {"Content-Type": ctype})
        assert retryable(status, answer), (path, status, answer)
        assert headers["retry-after"] == "5"
    status, _, answer = post(receiver.url("otlp", "/healthz"), None, method="GET")  # type: ignore[arg-type]
    assert status == 503 and orjson.loads(answer)["redis"]["ok"] is False
    own.start()
    _until(lambda: post(receiver.url("loki", "/ingest"), b"after\n")[0] == 200, "Redis to be back")
    assert [r.message for r in rows(own.client(), receiver.stream)] == ["before", "after"]


def test_redis_lost_in_the_middle_of_a_request_writes_nothing_of_it(
    outage: tuple[Receiver, RedisProc],
) -> None:
    receiver, own = outage
    assert post(receiver.url("loki", "/ingest"), b"warm-up\n")[0] == 200
    admin = own.client()
    admin.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
    answers: list[Any] = []
    body = b"".join(b'{"msg":"mid %d"}\n' % i for i in range(5000))
    sender = threading.Thread(
        target=lambda: answers.append(post(receiver.url("loki", "/ingest"), body))
    )
    sender.start()
    # The receiver's MULTI ... EXEC is in Redis, held by the pause: now Redis dies.
    _until(lambda: admin.info("clients")["blocked_clients"] >= 1, "the transaction to be held")
    own.kill()
    sender.join(60)
    status, headers, answer = answers[0]
    assert status == 503 and headers["retry-after"] == "5"
    assert "retry" in orjson.loads(answer)["error"]
    own.start()  # from its AOF: everything Redis had acknowledged
    assert [r.message for r in rows(own.client(), receiver.stream)] == ["warm-up"]
    _until(lambda: post(receiver.url("loki", "/ingest"), b"after\n")[0] == 200, "Redis to be back")


def test_sigterm_finishes_the_request_in_flight(
    own_redis: RedisProc, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = module_env(own_redis, tmp_path_factory)
    with running(env) as receiver:
        sock = socket.create_connection(("127.0.0.1", receiver.ports["loki"]))
        sock.sendall(
            b"POST /ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n"
            b"6\r\nfirst\n\r\n"
        )
        # The request has reached the app once it asked Redis about the backlog.
        _until(
            lambda: any(
                c.get("cmd", "").startswith("xinfo") for c in own_redis.client().client_list()
            ),
            "the request to be in the app",
        )
        receiver.proc.send_signal(signal.SIGTERM)
        sock.sendall(b"7\r\nsecond\n\r\n0\r\n\r\n")
        response = sock.recv(65536)
        sock.close()
        assert response.startswith(b"HTTP/1.1 200"), response
        assert receiver.stop() == 0
    assert [r.message for r in rows(own_redis.client(), env["LOGS_STREAM"])] == ["first", "second"]
    assert b"receive: stopped" in receiver.stderr


def test_garbage_on_the_socket_does_not_stop_the_server(receiver: Receiver) -> None:
    for junk in (
        b"HELLO\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"GET / HTTP/1.1\r\nHost",
    ):
        sock = socket.create_connection(("127.0.0.1", receiver.ports["elastic"]))
        sock.sendall(junk)
        sock.shutdown(socket.SHUT_WR)
        sock.recv(65536)
        sock.close()
    wait_ready(receiver)
    assert post(receiver.url("elastic", "/"), None, method="GET")[0] == 200  # type: ignore[arg-type]


def test_a_large_body_refused_for_its_token_still_gets_its_answer(receiver: Receiver) -> None:
    body = b'{"msg":"x"}\n' * 400_000  # ~5 MB, sent in full before urllib reads the answer
    status, _, answer = post(receiver.url("loki", "/ingest"), body, token="wrong")
    assert status == 403 and orjson.loads(answer) == {"error": "invalid token"}
