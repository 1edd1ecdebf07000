"""compose.yaml and the Dockerfile, without a Docker engine: the compose file validates against
the Compose Specification schema (the copy check-jsonschema ships), and what it runs is a real
`logs` command line with the deployment's shape (AOF Redis with a healthcheck, scalable ingest
with distinct consumer names, one scheduler, a shared data volume)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ingest.cli import app

pytest.importorskip("check_jsonschema", reason="dev dependency check-jsonschema not installed")
from ruamel.yaml import YAML  # noqa: E402 - installed with check-jsonschema

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose.yaml"


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return YAML(typ="safe").load(COMPOSE.read_text())  # type: ignore[no-any-return]


def test_compose_file_matches_the_compose_spec() -> None:
    res = validate(COMPOSE)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ok -- validation done" in res.stdout


def test_the_validator_rejects_a_broken_compose_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("healthcheck:", "healthchek:", 1))
    res = validate(broken)
    assert res.returncode == 1
    assert "'healthchek' was unexpected" in res.stdout


def logs_argv(command: list[str]) -> list[str]:
    """A service's command as the argv after `logs` (through `sh -c "exec logs ..."`)."""
    if command[:2] == ["sh", "-c"]:
        words = shlex.split(command[2].replace("$$(hostname)", "host-1"))
        assert words[:2] == ["exec", "logs"], command
        return words[2:]
    assert command[0] == "logs", command
    return command[1:]


def test_every_service_command_is_a_real_logs_command_line(compose: dict[str, Any]) -> None:
    runner = CliRunner()
    for name in ("ingest", "scheduler"):
        argv = logs_argv(compose["services"][name]["command"])
        res = runner.invoke(app, [*argv, "--help"])  # parses every option before --help
        assert res.exit_code == 0, (name, res.output)
    # The README's one-off: `docker compose run --rm ingest logs sql "..."`.
    assert runner.invoke(app, ["sql", "--help"]).exit_code == 0


def test_redis_keeps_its_data_and_reports_health(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    args = redis["command"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    volume = redis["volumes"][0].split(":")
    assert volume[1] == "/data" and volume[0] in compose["volumes"]
    assert all(p.startswith("127.0.0.1:") for p in redis.get("ports", []))


def test_ingest_scales_with_distinct_consumers_and_shares_the_lake(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    ingest, scheduler = services["ingest"], services["scheduler"]
    # --scale N needs no fixed name and no fixed host port.
    assert "container_name" not in ingest and "ports" not in ingest
    argv = logs_argv(ingest["command"])
    assert argv[argv.index("--consumer") + 1] == "host-1"  # the container's hostname
    assert "$$(hostname)" in ingest["command"][2]
    assert logs_argv(scheduler["command"])[-1] == "schedule"
    for service in (ingest, scheduler):
        env = service["environment"]
        assert env["LOGS_REDIS_URL"] == "redis://redis:6379/0"
        mount = dict(v.split(":")[::-1] for v in service["volumes"])
        assert mount[env["LOGS_DATA_DIR"]] == "lake" and "lake" in compose["volumes"]
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert service["build"] == "." and service["image"] == services["scheduler"]["image"]
    port = ingest["environment"]["LOGS_METRICS_PORT"]
    assert f":{port}/healthz" in " ".join(ingest["healthcheck"]["test"])


def test_the_dockerfile_installs_the_locked_project_and_runs_logs() -> None:
    text = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()]
    instructions = [
        line.split()[0]
        for line in lines
        if line and not line.startswith("#") and line.split()[0].isupper()
    ]
    assert "ENTRYPOINT" not in instructions  # `compose run --rm ingest logs sql ...` works
    assert 'CMD ["logs", "--help"]' in lines
    assert "uv sync --locked --no-dev" in text
    copied = {part for line in lines if line.startswith("COPY") for part in line.split()[1:-1]}
    assert {"pyproject.toml", "uv.lock", "README.md", "ingest", "queries"} <= copied
    for path in copied:
        assert (ROOT / path).exists(), path
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "data"} <= set(ignored)
    assert not copied & set(ignored)


def test_the_lake_is_in_a_pinned_s3_service_and_ingest_shares_no_disk(
    compose: dict[str, Any],
) -> None:
    """The table lives in the bucket: every ingest replica (on any host) and the scheduler
    point at it; the data volume holds only a host's scratch."""
    services = compose["services"]
    s3 = services["s3"]
    image, _, tag = s3["image"].partition(":")
    assert image == "minio/minio" and tag.startswith("RELEASE.")  # pinned, not :latest
    assert all(p.startswith("127.0.0.1:") for p in s3.get("ports", []))
    assert services["s3-bucket"]["depends_on"]["s3"]["condition"] == "service_healthy"
    for name in ("ingest", "scheduler"):
        env = services[name]["environment"]
        assert env["LOGS_LAKE_URI"].startswith("s3://loglake/")
        assert env["AWS_ENDPOINT_URL"] == "http://s3:9000"
        condition = services[name]["depends_on"]["s3-bucket"]["condition"]
        assert condition == "service_completed_successfully"
