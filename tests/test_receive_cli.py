"""`logs receive` from the command line: bind rules and their errors, tokens never shown,
metrics on the receiver's ports and beside ingest's, `logs up --receive`, the compose service,
and a record of every protocol through `logs ingest --drain` into the table."""

from __future__ import annotations

import signal
import socket
import time
import urllib.request
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from ingest import config
from ingest.cli import app
from ingest.receive import server
from ingest.redis_server import free_port
from tests.helpers import RedisProc, lake_rows, run_logs, spawn_logs
from tests.receiver import TOKEN, Receiver, post, running


def test_without_tokens_an_address_beyond_loopback_is_refused(env: dict[str, str]) -> None:
    res = run_logs(["receive", "--host", "0.0.0.0"], env, timeout=60)
    assert res.returncode == 2
    err = res.stderr.decode()
    assert err.startswith("logs: error: refusing to listen on 0.0.0.0 without receive_tokens")
    assert "LOGS_RECEIVE_ALLOW_OPEN" in err and "Traceback" not in err


def test_the_bind_plan() -> None:
    def plan(**values: str) -> server.Plan:
        return server.plan(
            config.load(env={f"LOGS_{k.upper()}": v for k, v in values.items()}).settings
        )

    assert plan().host == "127.0.0.1"
    assert plan(receive_tokens="a,b").host == "0.0.0.0"
    assert plan(receive_host="::1").host == "::1"
    opened = plan(receive_host="0.0.0.0", receive_allow_open="true")
    assert opened.open_without_tokens
    assert plan(receive_hec_port="0").ports == {
        4318: ["OTLP/HTTP"],
        9200: ["Elasticsearch _bulk"],
        3100: ["Loki push, NDJSON"],
    }


def test_a_port_in_use_is_one_clear_error(env: dict[str, str]) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        res = run_logs(
            [
                "receive",
                "--otlp-port",
                str(port),
                "--elastic-port",
                "0",
                "--hec-port",
                "0",
                "--loki-port",
                "0",
            ],
            env,
            timeout=60,
        )
    finally:
        taken.close()
    assert res.returncode == 2
    assert res.stderr.decode().startswith(f"logs: error: cannot listen on 127.0.0.1:{port}")


def test_tokens_are_never_shown(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGS_RECEIVE_TOKENS", "very-secret-1,very-secret-2")
    res = CliRunner().invoke(app, ["config", "-F", "json"])
    assert res.exit_code == 0
    shown = orjson.loads(res.stdout)["receive_tokens"]
    assert shown == {"value": "***", "source": "env LOGS_RECEIVE_TOKENS"}
    assert "very-secret" not in res.output


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=30) as res:
        text = res.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_on_every_port_and_beside_the_ingest_gauges(
    redis_proc: RedisProc, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.receiver import module_env

    metrics_port = free_port()
    with running(
        module_env(redis_proc, tmp_path_factory), LOGS_METRICS_PORT=str(metrics_port)
    ) as r:
        assert post(r.url("loki", "/ingest"), b"a\nb\nc\n")[0] == 200
        assert post(r.url("loki", "/ingest"), b"a\n", token="bad")[0] == 403
        for url in (r.url("hec", "/metrics"), f"http://127.0.0.1:{metrics_port}/metrics"):
            seen = _scrape(url)
            assert (
                seen[("loglake_receive_requests_total", (("code", "200"), ("protocol", "ndjson")))]
                == 1
            )
            assert (
                seen[("loglake_receive_requests_total", (("code", "403"), ("protocol", "ndjson")))]
                == 1
            )
            assert seen[("loglake_receive_records_total", (("protocol", "ndjson"),))] == 3
            assert seen[("loglake_receive_bytes_total", (("protocol", "ndjson"),))] == 6
            assert (
                seen[("loglake_receive_request_duration_seconds_count", (("protocol", "ndjson"),))]
                == 2
            )
        assert seen[("loglake_redis_up", ())] == 1  # the ingest endpoint's Redis gauges
        assert seen[("loglake_stream_length", ())] == 3
    # One access-log line for the refused request, none for the accepted one.
    lines = [
        line for line in r.stderr.decode().splitlines() if "receive: " in line and " from " in line
    ]
    assert len(lines) == 1 and "403 POST /ingest" in lines[0] and "invalid token" in lines[0]


def test_every_protocol_lands_in_the_table(
    receiver: Receiver, redis_proc: RedisProc, tmp_path: Path
) -> None:
    headers = {"Content-Type": "application/json"}
    otlp = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "o"}}]
                },
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": "1795168800000000000",
                                "body": {"stringValue": "via otlp"},
                            }
                        ]
                    }
                ],
            }
        ]
    }
    assert post(receiver.url("otlp", "/v1/logs"), orjson.dumps(otlp), headers)[0] == 200
    bulk = (
        b'{"index":{}}\n{"@timestamp":"2026-11-20T10:00:00Z","message":"via bulk","service":"e"}\n'
    )
    assert post(receiver.url("elastic", "/_bulk"), bulk)[0] == 200
    assert (
        post(receiver.url("hec", "/services/collector"), b'{"time":1795168800,"event":"via hec"}')[
            0
        ]
        == 200
    )
    loki = {"streams": [{"stream": {"app": "l"}, "values": [["1795168800000000000", "via loki"]]}]}
    assert post(receiver.url("loki", "/loki/api/v1/push"), orjson.dumps(loki), headers)[0] == 204
    assert (
        post(receiver.url("loki", "/ingest"), b'{"ts":1795168800,"msg":"via ndjson"}\n')[0] == 200
    )
    env = {
        "LOGS_REDIS_URL": redis_proc.url,
        "LOGS_STREAM": receiver.stream,
        "LOGS_DATA_DIR": str(tmp_path),
    }
    res = run_logs(["ingest", "--drain"], env)
    assert res.returncode == 0, res.stderr
    got = lake_rows(tmp_path, "select message, epoch_us(ts), level from t order by message")
    assert got == [
        (f"via {name}", 1_795_168_800_000_000, "INFO")
        for name in ("bulk", "hec", "loki", "ndjson", "otlp")
    ]


def test_logs_up_runs_the_receiver_beside_ingest(env: dict[str, str], data_dir: Path) -> None:
    ports = {name: str(free_port()) for name in ("OTLP", "ELASTIC", "HEC", "LOKI")}
    full = {
        **env,
        "LOGS_RECEIVE_TOKENS": TOKEN,
        "LOGS_RECEIVE_HOST": "127.0.0.1",
        **{f"LOGS_RECEIVE_{name}_PORT": port for name, port in ports.items()},
    }
    up = spawn_logs(["up", "--consumers", "1", "--no-scheduler", "--receive"], full)
    try:
        url = f"http://127.0.0.1:{ports['LOKI']}/ingest"
        deadline = time.monotonic() + 60
        while True:
            try:
                if post(url, b'{"msg":"through up"}\n')[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the receiver did not start under logs up"
            time.sleep(0.1)
        deadline = time.monotonic() + 60
        while not (data_dir / "lake/logs/_delta_log").exists() or not lake_rows(data_dir):
            assert time.monotonic() < deadline, "the record did not reach the table"
            time.sleep(0.1)
    finally:
        up.send_signal(signal.SIGINT)
        _, err = up.communicate(timeout=60)
    assert up.returncode == 0, err
    assert b"+ receive" in err and b"Traceback" not in err
    assert [r[0] for r in lake_rows(data_dir, "select message from t")] == ["through up"]


def test_the_compose_receiver_runs_a_real_command_line() -> None:
    from ruamel.yaml import YAML

    compose = YAML(typ="safe").load((Path(__file__).parent.parent / "compose.yaml").read_text())
    service = compose["services"]["receiver"]
    assert service["command"][0] == "logs"
    res = CliRunner().invoke(app, [*service["command"][1:], "--help"])
    assert res.exit_code == 0, res.output
    assert all(p.startswith("127.0.0.1:") for p in service["ports"])
    assert "LOGS_RECEIVE_TOKENS" in service["environment"]


def test_tokens_from_a_toml_array(tmp_path: Path) -> None:
    conf = tmp_path / "logs.toml"
    conf.write_text('[receive]\nreceive_tokens = ["one", "two"]\n')
    settings = config.load(config_file=str(conf), env={}).settings
    from ingest.receive.auth import parse_tokens

    assert parse_tokens(settings.receive_tokens) == (b"one", b"two")
