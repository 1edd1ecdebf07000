"""Ingest throughput: the raw XREADGROUP+XACK ceiling vs `logs ingest --drain`, in one run.

    uv run python bench/ingest.py [--count 300000] [--shapes json,fields]

For each entry shape: prefill a private redis-server (loopback, no persistence) with N
generated entries; read them all with a bare consumer (hiredis, COUNT 10000, raw replies, no
decoding, pipelined XACK) for the ceiling; then run `logs ingest --drain` as a user would over
the same entries (its own group) into a fresh lake. Prints entries/s for both, the ratio and the
ingest process's peak RSS. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest import redis_server  # noqa: E402
from ingest.generate import entries  # noqa: E402
from ingest.producer import xadd_all  # noqa: E402


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = redis_server.free_port()
    proc = subprocess.Popen(
        [
            redis_server.find_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            return proc, port
        except redis.ConnectionError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def ceiling(client: redis.Redis, stream: str, total: int) -> float:
    """Entries/s of XREADGROUP COUNT 10000 + pipelined XACK with no decoding at all."""
    client.xgroup_create(stream, "ceiling", id="0")
    client.set_response_callback("XREADGROUP", lambda r, **kw: r)
    seen = 0
    started = time.perf_counter()
    while seen < total:
        reply = client.execute_command(
            "XREADGROUP", "GROUP", "ceiling", "c", "COUNT", 10000, "STREAMS", stream, ">"
        )
        batch = reply[0][1]
        client.execute_command("XACK", stream, "ceiling", *[e[0] for e in batch])
        seen += len(batch)
    return total / (time.perf_counter() - started)


def run_ingest(port: int, stream: str, data_dir: Path) -> tuple[float, int, str]:
    env = {
        "LOGS_REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "LOGS_STREAM": stream,
        "LOGS_DATA_DIR": str(data_dir),
        "PATH": "/usr/bin:/bin",
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    res = subprocess.run(
        [sys.executable, "-m", "ingest", "-q", "ingest", "--drain", "--consumer", "bench"],
        env=env,
        capture_output=True,
        cwd=ROOT,
    )
    rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    err = res.stderr.decode()
    match = re.search(r"ingested (\d+) entries.* in ([\d.]+) s", err)
    if res.returncode != 0 or not match:
        raise SystemExit(f"ingest failed ({res.returncode}): {err}")
    n, seconds = int(match.group(1)), float(match.group(2))
    return n / seconds, max(rss_kb, before) // 1024, err.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=300_000)
    parser.add_argument("--shapes", default="json,fields")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    proc, port = start_redis(work)
    client = redis.Redis(port=port, protocol=2)  # RESP2, as the consumer speaks
    rows = []
    try:
        for shape in args.shapes.split(","):
            stream = f"bench-{shape}"
            xadd_all(client, stream, entries(args.count, hours=3, seed=1, shape=shape))
            top = ceiling(client, stream, args.count)
            rate, rss, line = run_ingest(port, stream, work / f"data-{shape}")
            rows.append((shape, top, rate, rate / top, rss))
            print(f"{shape}: {line}", file=sys.stderr)
    finally:
        proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    print(f"entries: {args.count} per shape, 3 event hours, one ingest process")
    print(f"{'shape':8} {'ceiling/s':>12} {'ingest/s':>12} {'ratio':>7} {'ingest RSS MB':>14}")
    for shape, top, rate, ratio, rss in rows:
        print(f"{shape:8} {top:12,.0f} {rate:12,.0f} {ratio:7.2f} {rss:14}")


if __name__ == "__main__":
    main()
