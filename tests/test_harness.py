"""The test run itself stays quiet: nothing is reported leaked at interpreter exit."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT


def test_an_in_process_consumer_leaves_no_leak_report_at_exit() -> None:
    """The tests that run the consumer in pytest's own process freeze the heap; conftest's
    `_heap_unfrozen` gives it back, or DuckDB's nanobind prints leaked instances at exit."""
    test = (
        "tests/test_ingest.py::"
        "test_ingest_collects_cycles_on_its_own_schedule_then_gives_the_collector_back"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        cwd=ROOT,
        capture_output=True,
        timeout=300,
    )
    output = (done.stdout + done.stderr).decode()
    assert done.returncode == 0, output
    assert "1 passed" in output
    assert "nanobind" not in output and "leaked" not in output
