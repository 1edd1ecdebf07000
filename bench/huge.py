"""Peak memory of `logs ingest --drain` when huge entries hide among normal ones: a private
redis-server, N normal JSON entries, K entries of S MiB each (in runs of R), then the whole
`logs ingest --drain` process under `/usr/bin/time -v`; the same stream without the huge
entries for comparison. Figures, not pass/fail.

    uv run python bench/huge.py [--normal 30000] [--huge 3] [--mib 64] [--run 1]

Huge entries are over `max_entry_bytes` (1 MiB by default), so they become dead letters
(whole, nothing cut); what is measured is what holding them costs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import start_redis  # noqa: E402


def fill(client, normal: int, huge: int, mib: int, run: int) -> None:  # type: ignore[no-untyped-def]
    big = b"x" * (mib * 1024 * 1024)
    spots = {normal * (i + 1) // (huge + 1) for i in range(huge // run)} if huge else set()
    pipe = client.pipeline(transaction=False)
    for i in range(normal):
        pipe.xadd("logs", {"data": json.dumps({"message": f"normal {i}", "service": "s"})})
        if i in spots:
            pipe.execute()
            for _ in range(run):
                client.xadd("logs", {"message": big})
        if len(pipe) >= 5000:
            pipe.execute()
    pipe.execute()


def measure(normal: int, huge: int, mib: int, run: int) -> tuple[float, float, int]:
    """(peak RSS MB, seconds, dead letters) of one drain."""
    with tempfile.TemporaryDirectory() as tmp:
        rp = start_redis(Path(tmp) / "redis", appendonly=False)
        try:
            client = rp.client()
            fill(client, normal, huge, mib, run)
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("LOGS_")},
                "LOGS_REDIS_URL": rp.url,
                "LOGS_STREAM": "logs",
                "LOGS_DATA_DIR": str(Path(tmp) / "data"),
            }
            started = time.perf_counter()
            res = subprocess.run(
                ["/usr/bin/time", "-v", sys.executable, "-m", "ingest", "ingest", "--drain"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            took = time.perf_counter() - started
            rss = next(
                int(line.split()[-1])
                for line in res.stderr.splitlines()
                if "Maximum resident set size" in line
            )
            return rss / 1024, took, int(client.xlen("logs:dlq"))
        finally:
            rp.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--normal", type=int, default=30_000)
    parser.add_argument("--huge", type=int, default=3)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--run", type=int, default=1, help="huge entries in a row")
    a = parser.parse_args()
    base = measure(a.normal, 0, a.mib, 1)
    with_huge = measure(a.normal, a.huge, a.mib, a.run)
    print(f"{a.normal:,} normal entries:           peak RSS {base[0]:6.0f} MB  {base[1]:.1f} s")
    print(
        f"+ {a.huge} x {a.mib} MiB (runs of {a.run}):  peak RSS {with_huge[0]:6.0f} MB  "
        f"{with_huge[1]:.1f} s  ({with_huge[2]} dead letters)"
    )


if __name__ == "__main__":
    main()
