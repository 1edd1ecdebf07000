"""`logs demo`, the README's first command, end to end on a fresh data dir."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import lake_rows, run_logs


def test_demo_runs_twice_and_prints_real_answers(tmp_path: Path) -> None:
    env = {"LOGS_DATA_DIR": str(tmp_path / "data")}
    try:
        first = run_logs(["demo", "--count", "5000"], env, timeout=300)
        assert first.returncode == 0, first.stderr
        out, err = first.stdout.decode(), first.stderr.decode()
        for title in ("Errors per service", "p95 latency of the api service", "slowest traces"):
            assert title in out
        assert out.count(" rows") >= 3 and "│ api " in out
        assert "Traceback" not in err
        assert "dead-lettered" in err and "demo finished" in err and "logs sql" in err
        (rows,) = lake_rows(tmp_path / "data", "select count(distinct stream_id) from t")
        assert 4900 <= rows[0] <= 5000  # all but the few malformed entries

        second = run_logs(["demo", "--count", "5000"], env, timeout=300)
        assert second.returncode == 0, second.stderr
        (rows,) = lake_rows(tmp_path / "data", "select count(distinct stream_id) from t")
        assert 9800 <= rows[0] <= 10000
    finally:
        assert run_logs(["down"], env).returncode == 0
