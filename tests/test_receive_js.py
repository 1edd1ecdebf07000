"""`logs receive`, OTLP/HTTP from another language: the OpenTelemetry JS SDK's log exporters
(`@opentelemetry/exporter-logs-otlp-proto` and `-http`, the JSON one), set up as their README
shows or by the OTEL_EXPORTER_OTLP_LOGS_* variables alone, run by node (tests/otel_js_logs.cjs)
against a real receiver. Every record lands once with its time, level, service, host, message,
trace id and attributes; a wrong token is one failed export the SDK does not retry; a 429 while
ingest is behind is waited out (Retry-After) and the batch lands once.

The SDK is installed on first use with npm into a cache outside the repo
(`~/.cache/loglake/node-otel-<version>`, or under $XDG_CACHE_HOME): ~2 s and 28 MB. Skipped,
saying why, without node 18.19+/20.6+ and npm, or when npm cannot install it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import RedisProc
from tests.receiver import TOKEN, Receiver, attrs, module_env, rows, running

# The newest release line that runs on node 20 (0.300+ / 3.x want node 22.15).
OTEL_JS = {
    "@opentelemetry/api": "1.9.0",
    "@opentelemetry/api-logs": "0.223.1",
    "@opentelemetry/sdk-logs": "0.223.1",
    "@opentelemetry/exporter-logs-otlp-http": "0.223.1",
    "@opentelemetry/exporter-logs-otlp-proto": "0.223.1",
    "@opentelemetry/resources": "2.12.1",
    "@opentelemetry/sdk-trace-base": "2.12.1",
}
SCRIPT = Path(__file__).with_name("otel_js_logs.cjs")
RETRIES = 300


def _cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "loglake" / f"node-otel-{OTEL_JS['@opentelemetry/sdk-logs']}"


def _node_ok() -> str | None:
    """Why node cannot run the SDK, or None."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return "node and npm are not installed (the OpenTelemetry JS SDK needs both)"
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
    major, minor = (int(x) for x in version.strip().lstrip("v").split(".")[:2])
    if (major, minor) < (18, 19) or (major == 20 and minor < 6) or major == 19:
        return f"node {version.strip()} is too old for the OpenTelemetry JS SDK (18.19+, 20.6+)"
    return None


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """The SDK's node_modules, installed on first use (into a temporary sibling, then renamed
    into place: two runs at once never see half an install)."""
    reason = _node_ok()
    if reason:
        pytest.skip(reason)
    target = _cache()
    if not (target / "node_modules" / ".loglake-complete").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".node-otel-", dir=target.parent))
        (work / "package.json").write_text(
            json.dumps({"name": "loglake-otel-js", "private": True, "dependencies": OTEL_JS})
        )
        done = subprocess.run(
            [
                "npm",
                "install",
                "--prefix",
                str(work),
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--no-update-notifier",
            ],  # fmt: skip
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            shutil.rmtree(work, ignore_errors=True)
            pytest.skip(f"npm could not install the OpenTelemetry JS SDK: {done.stderr[-500:]}")
        (work / "node_modules" / ".loglake-complete").touch()
        try:
            work.rename(target)
        except OSError:  # another run installed it first
            shutil.rmtree(work, ignore_errors=True)
    return target / "node_modules"


def _run_sdk(
    node_modules: Path, receiver: Receiver, kind: str, compression: str, config: str
) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["NODE_PATH"] = str(node_modules)
    url = receiver.url("otlp", "/v1/logs")
    if config == "env":  # the README's "any OpenTelemetry SDK, by environment"
        env |= {
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": url,
            "OTEL_EXPORTER_OTLP_LOGS_HEADERS": f"Authorization=Bearer {TOKEN}",
            "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION": compression,
        }
        url = "env"
    done = subprocess.run(
        ["node", str(SCRIPT), kind, url, TOKEN, compression, str(RETRIES)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0 and not done.stderr, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("kind", "compression", "config"),
    [
        ("proto", "gzip", "code"),
        ("proto", "none", "code"),
        ("http", "gzip", "code"),
        ("http", "none", "code"),
        ("proto", "gzip", "env"),
        ("http", "none", "env"),
    ],
)
def test_the_js_sdk_exporter_lands_every_record_once_with_its_columns(
    node_modules: Path,
    receiver: Receiver,
    redis_proc: RedisProc,
    kind: str,
    compression: str,
    config: str,
) -> None:
    sdk = _run_sdk(node_modules, receiver, kind, compression, config)
    # The exporter saw every batch accepted (ExportResultCode.SUCCESS is 0).
    assert sdk["results"] and all(r["code"] == 0 for r in sdk["results"]), sdk["results"]
    assert sum(r["records"] for r in sdk["results"]) == RETRIES + 2

    got = rows(redis_proc.client(), receiver.stream)
    emitted = sdk["emitted"]
    assert len(got) == len(emitted) == RETRIES + 2
    for row, record in zip(got, emitted, strict=True):
        seconds, nanos = record["hrTime"]
        assert row.ts == (seconds * 1_000_000_000 + nanos) // 1000
        assert (row.service, row.host) == ("checkout", "web-7")
    first, second = got[0], got[1]
    assert (first.level, first.message) == ("ERROR", "payment of order 42 failed")
    assert first.trace_id == sdk["traceId"] and len(first.trace_id) == 32
    extra = attrs(first)
    assert extra["span_id"] == sdk["spanId"] and extra["trace_flags"] == 1
    assert extra["order_id"] == 42 and extra["amount"] == 9.5 and extra["retried"] is False
    assert extra["user.tags"] == ["vip", "eu"]
    assert extra["scope.name"] == "shop.payments" and extra["scope.version"] == "1.4.2"
    # No severityText: the level comes from the number; a map body is kept as JSON text.
    assert second.level == "INFO" and second.ts == 1_795_168_800_123_456
    assert json.loads(second.message) == {"event": "cart", "items": 3, "ok": True}
    assert [r.message for r in got[2:]] == [f"retrying {i}" for i in range(RETRIES)]
    assert {r.level for r in got[2:]} == {"WARN"}
    assert all(r.trace_id is None for r in got[1:])


def test_a_wrong_token_is_a_failed_export_and_nothing_lands(
    node_modules: Path, receiver: Receiver, redis_proc: RedisProc
) -> None:
    done = subprocess.run(
        ["node", str(SCRIPT), "proto", receiver.url("otlp", "/v1/logs"), "wrong", "none", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NODE_PATH": str(node_modules)},
    )
    sdk = json.loads(done.stdout)
    # Not retried: one failed export (ExportResultCode.FAILED is 1) of all five records; the
    # SDK's diag line carries the status and the google.rpc.Status the receiver answered.
    assert [(r["records"], r["code"]) for r in sdk["results"]] == [(5, 1)]
    assert '"code":"403"' in done.stderr and "invalid token" in done.stderr
    assert rows(redis_proc.client(), receiver.stream) == []


def test_the_exporter_waits_out_backpressure_and_lands_once(
    node_modules: Path, redis_proc: RedisProc, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """While ingest is behind the receiver answers 429 with Retry-After (5 s); the SDK's
    retrying transport waits that long and sends the batch again, which lands once."""
    env = module_env(redis_proc, tmp_path_factory)
    client = redis_proc.client()
    for i in range(5):
        client.xadd(env["LOGS_STREAM"], {"message": f"backlog {i}"})
    with running(env, LOGS_RECEIVE_MAX_LAG="2") as busy:
        sdk = subprocess.Popen(
            ["node", str(SCRIPT), "proto", busy.url("otlp", "/v1/logs"), TOKEN, "gzip", "3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "NODE_PATH": str(node_modules)},
        )
        try:
            deadline = time.monotonic() + 30
            refused = 'loglake_receive_requests_total{code="429",protocol="otlp"}'
            while refused not in _metrics(busy):
                assert sdk.poll() is None, sdk.communicate()
                assert time.monotonic() < deadline, "the exporter was not refused"
                time.sleep(0.05)
            client.xtrim(env["LOGS_STREAM"], maxlen=0)  # ingest caught up
            out, err = sdk.communicate(timeout=60)
        finally:
            if sdk.poll() is None:
                sdk.kill()
                sdk.wait()
    assert sdk.returncode == 0 and not err, err
    result = json.loads(out)
    assert [(r["records"], r["code"]) for r in result["results"]] == [(5, 0)]
    got = rows(client, env["LOGS_STREAM"])
    assert [r.message for r in got] == [
        "payment of order 42 failed",
        '{"event":"cart","items":3,"ok":true}',
        *(f"retrying {i}" for i in range(3)),
    ]


def _metrics(receiver: Receiver) -> str:
    with urllib.request.urlopen(receiver.url("otlp", "/metrics"), timeout=10) as res:
        return res.read().decode()  # type: ignore[no-any-return]
