"""`logs receive`, Elasticsearch `_bulk`: the official Python client (its bulk helper, its
product and version checks, basic auth and API keys) lands every document once, with `_id` and
`_index` kept; per-item errors come back in request order; the handshake answers what Logstash,
Filebeat and the Collector probe."""

from __future__ import annotations

import orjson
import pytest
from elasticsearch import AuthenticationException, AuthorizationException, Elasticsearch, helpers

from tests.helpers import RedisProc
from tests.receiver import TOKEN, Receiver, attrs, entries, post, rows


def client(receiver: Receiver, **auth: object) -> Elasticsearch:
    return Elasticsearch(
        receiver.url("elastic"), **(auth or {"basic_auth": ("elastic", TOKEN)}), max_retries=0
    )


def test_the_bulk_helper_lands_every_document_once(
    receiver: Receiver, redis_proc: RedisProc
) -> None:
    es = client(receiver)
    assert es.info()["version"]["number"] == "8.17.0"
    actions = [
        {
            "_index": "app-logs",
            "_id": f"doc-{i}",
            "_source": {
                "@timestamp": f"2026-11-20T10:00:{i % 60:02d}.250Z",
                "level": "error" if i % 10 == 0 else "info",
                "service": "billing",
                "host": "db-2",
                "message": f"invoice {i} sent",
                "trace_id": f"{i:032x}",
                "customer": {"tier": "gold"},
            },
        }
        for i in range(1500)
    ]
    ok, errors = helpers.bulk(es, actions, chunk_size=500)
    assert (ok, errors) == (1500, [])
    got = rows(redis_proc.client(), receiver.stream)
    assert [r.message for r in got] == [f"invoice {i} sent" for i in range(1500)]
    row = got[10]
    assert row.ts == 1_795_168_810_250_000
    assert (row.level, row.service, row.host, row.trace_id) == (
        "ERROR",
        "billing",
        "db-2",
        f"{10:032x}",
    )
    assert attrs(row) == {"_id": "doc-10", "_index": "app-logs", "customer": {"tier": "gold"}}
    assert got[11].level == "INFO"


def test_api_keys_are_accepted_and_bad_credentials_refused(receiver: Receiver) -> None:
    assert client(receiver, api_key=("key-id", TOKEN)).info()["tagline"]
    assert client(receiver, api_key=TOKEN).info()["tagline"]
    with pytest.raises(AuthorizationException):
        client(receiver, basic_auth=("elastic", "wrong")).info()
    with pytest.raises(AuthenticationException):
        Elasticsearch(receiver.url("elastic"), max_retries=0).info()


def test_bad_documents_and_other_actions_are_per_item_errors_in_request_order(
    receiver: Receiver, redis_proc: RedisProc
) -> None:
    body = b"\n".join(
        [
            b'{"index":{"_index":"a","_id":"1"}}',
            b'{"message":"first"}',
            b"",  # a blank line between pairs, as some shippers write
            b'{"create":{"_index":"a","_type":"_doc"}}',  # ES 6 clients still send _type
            b"this is not json",
            b'{"delete":{"_index":"a","_id":"9"}}',
            b'{"create":{}}',
            b'["an array, not a document"]',
            b'{"update":{"_id":"1"}}',
            b'{"doc":{"x":1}}',
            b'{"index":{}}',
            b'{"message":"last","bad":"\xff"}',
            b'{"index":{}}',
            b'{"message":"really last"}',
            b"",
        ]
    )
    status, headers, raw = post(
        receiver.url("elastic", "/logs-x/_bulk"), body, {"Content-Type": "application/x-ndjson"}
    )
    assert status == 200 and headers["x-elastic-product"] == "Elasticsearch"
    answer = orjson.loads(raw)
    assert answer["errors"] is True
    items = [
        (action, item["status"]) for entry in answer["items"] for action, item in entry.items()
    ]
    assert items == [
        ("index", 201),
        ("create", 400),
        ("delete", 400),
        ("create", 400),
        ("update", 400),
        ("index", 400),
        ("index", 201),
    ]
    assert answer["items"][0]["index"]["_id"] == "1"
    assert answer["items"][1]["create"]["error"]["type"] == "document_parsing_exception"
    written = entries(redis_proc.client(), receiver.stream)
    assert answer["items"][6]["index"]["_id"] == written[1][0]  # the stream id stands for _id
    got = rows(redis_proc.client(), receiver.stream)
    assert [r.message for r in got] == ["first", "really last"]
    assert attrs(got[1]) == {"_index": "logs-x", "_ts_source": "stream_id"}


def test_a_malformed_action_line_refuses_the_whole_request(
    receiver: Receiver, redis_proc: RedisProc
) -> None:
    body = b'{"index":{}}\n{"message":"a"}\n{"frobnicate":{}}\n{"message":"b"}\n'
    status, _, raw = post(receiver.url("elastic", "/_bulk"), body)
    assert status == 400
    error = orjson.loads(raw)["error"]
    assert error["type"] == "illegal_argument_exception"
    assert "Malformed action/metadata line [3]" in error["reason"]
    assert rows(redis_proc.client(), receiver.stream) == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("HEAD", "/"),
        ("GET", "/_license"),
        ("GET", "/_ilm/policy/filebeat"),
        ("HEAD", "/_index_template/logs"),
        ("PUT", "/_index_template/logs"),
        ("GET", "/_nodes/http"),
        ("GET", "/_logstash/pipeline/main"),
        ("GET", "/_cluster/health"),
        ("GET", "/_cat/health"),
        ("HEAD", "/_cat/health"),
        ("GET", "/_cat/health?format=json"),
        ("GET", "/_xpack"),
    ],
)
def test_the_probes_shippers_make_get_empty_successes(
    receiver: Receiver, method: str, path: str
) -> None:
    status, headers, body = post(
        receiver.url("elastic", path),
        b"{}" if method == "PUT" else None,
        method=method,  # type: ignore[arg-type]
    )
    assert status == 200
    assert headers["x-elastic-product"] == "Elasticsearch"


def test_single_document_endpoints(receiver: Receiver, redis_proc: RedisProc) -> None:
    status, _, body = post(
        receiver.url("elastic", "/app/_doc/abc"),
        b'{"message":"one","level":"warn"}',
        {"Content-Type": "application/json"},
        method="PUT",
    )
    assert status == 201 and orjson.loads(body)["_id"] == "abc"
    (row,) = rows(redis_proc.client(), receiver.stream)
    assert (row.message, row.level) == ("one", "WARN")
    assert attrs(row)["_id"] == "abc"


def test_filter_path_trims_the_items_as_logstash_asks(
    receiver: Receiver, redis_proc: RedisProc
) -> None:
    body = b'{"index":{}}\n{"message":"a"}\n{"index":{}}\nnope\n'
    status, _, raw = post(
        receiver.url("elastic", "/_bulk?filter_path=errors,items.*.error,items.*.status"), body
    )
    assert status == 200
    items = orjson.loads(raw)["items"]
    assert items[0] == {"index": {"status": 201}}
    assert set(items[1]["index"]) == {"status", "error"}


def test_every_answer_says_it_is_elasticsearch(receiver: Receiver) -> None:
    status, headers, _ = post(receiver.url("elastic", "/_cat/indices"), None, method="GET")  # type: ignore[arg-type]
    assert status == 404 and headers["x-elastic-product"] == "Elasticsearch"


def test_a_document_nested_past_max_json_depth_is_a_per_item_error(
    receiver: Receiver, redis_proc: RedisProc
) -> None:
    deep: object = {"leaf": 1}
    for _ in range(70):
        deep = {"x": deep}
    body = b'{"index":{}}\n' + orjson.dumps({"deep": deep}) + b'\n{"index":{}}\n{"message":"ok"}\n'
    status, _, raw = post(receiver.url("elastic", "/_bulk"), body)
    items = orjson.loads(raw)["items"]
    assert status == 200 and [i["index"]["status"] for i in items] == [400, 201]
    assert "max_json_depth (64)" in items[0]["index"]["error"]["reason"]
    assert [r.message for r in rows(redis_proc.client(), receiver.stream)] == ["ok"]
