"""Ingest throughput: the raw XREADGROUP+XACK ceiling vs `logs ingest --drain`, in one run.

    uv run python bench/ingest.py [--count 300000] [--shapes json,fields] [--repeat 1]

For each entry shape: prefill a private redis-server (loopback, no persistence) with N
generated entries; read them all with a bare consumer (hiredis, COUNT 10000, raw replies, no
decoding, pipelined XACK) for the ceiling; then run `logs ingest --drain` as a user would over
the same entries (its own group) into a fresh lake. Prints entries/s for both, the ratio and the
ingest process's peak RSS. With --repeat, ceiling and ingest alternate over the same entries
(each pair in groups of its own) and the median ratio is printed too: the ceiling alone moves
±20 % between runs on a shared VM. Figures, not pass/fail.

A drain's time includes a fixed start-up (imports, opening the lake, the final empty read),
measured here as `logs ingest --drain` over an empty stream; "ratio less start-up" divides the
entries by the drain's time minus that, the rate a long-running consumer holds.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
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


def ceiling(client: redis.Redis, stream: str, total: int, group: str) -> float:
    """Entries/s of XREADGROUP COUNT 10000 + pipelined XACK with no decoding at all."""
    client.set_response_callback("XREADGROUP", lambda r, **kw: r)
    seen = 0
    started = time.perf_counter()
    while seen < total:
        reply = client.execute_command(
            "XREADGROUP", "GROUP", group, "c", "COUNT", 10000, "STREAMS", stream, ">"
        )
        batch = reply[0][1]
        client.execute_command("XACK", stream, group, *[e[0] for e in batch])
        seen += len(batch)
    return total / (time.perf_counter() - started)


def run_ingest(port: int, stream: str, group: str, data_dir: Path) -> tuple[int, float, int, str]:
    """`logs ingest --drain` in a process of its own: entries, seconds (as it reports them), its
    peak RSS (MB), its last line."""
    env = {
        "LOGS_REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "LOGS_STREAM": stream,
        "LOGS_GROUP": group,
        "LOGS_DATA_DIR": str(data_dir),
        "PATH": "/usr/bin:/bin",
    }
    with tempfile.TemporaryFile() as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ingest", "-q", "ingest", "--drain", "--consumer", "bench"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err_file,
            cwd=ROOT,
        )
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not all children's
        proc.returncode = os.waitstatus_to_exitcode(status)
        err_file.seek(0)
        err = err_file.read().decode()
    match = re.search(r"ingested (\d+) entries.* in ([\d.]+) s", err)
    if proc.returncode != 0 or not match:
        raise SystemExit(f"ingest failed ({proc.returncode}): {err}")
    n, seconds = int(match.group(1)), float(match.group(2))
    return n, seconds, usage.ru_maxrss // 1024, err.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=300_000)
    parser.add_argument("--shapes", default="json,fields")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    proc, port = start_redis(work)
    client = redis.Redis(port=port, protocol=2)  # RESP2, as the consumer speaks
    rows = []
    try:
        empty = [run_ingest(port, "bench-empty", f"e{r}", work / f"empty-{r}") for r in range(3)]
        startup = statistics.median(seconds for _, seconds, _, _ in empty)
        for shape in args.shapes.split(","):
            stream = f"bench-{shape}"
            xadd_all(client, stream, entries(args.count, hours=3, seed=1, shape=shape))
            # Every group exists before the first read, so no run trims entries a later one
            # still has to read.
            for r in range(args.repeat):
                client.xgroup_create(stream, f"ceiling{r}", id="0")
                client.xgroup_create(stream, f"ingest{r}", id="0")
            for r in range(args.repeat):
                top = ceiling(client, stream, args.count, f"ceiling{r}")
                n, seconds, rss, line = run_ingest(
                    port, stream, f"ingest{r}", work / f"data-{shape}-{r}"
                )
                steady = n / (seconds - startup) / top
                rows.append((shape, top, n / seconds, n / seconds / top, steady, rss))
                print(f"{shape}: {line}", file=sys.stderr)
    finally:
        proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    print(f"entries: {args.count} per shape, 3 event hours, one ingest process")
    print(f"start-up of a drain over an empty stream: {startup:.2f} s (median of 3)")
    print(
        f"{'shape':8} {'ceiling/s':>12} {'ingest/s':>12} {'ratio':>7} "
        f"{'ratio less start-up':>20} {'ingest RSS MB':>14}"
    )
    for shape, top, rate, ratio, steady, rss in rows:
        print(f"{shape:8} {top:12,.0f} {rate:12,.0f} {ratio:7.2f} {steady:20.2f} {rss:14}")
    if args.repeat > 1:
        for shape in args.shapes.split(","):
            ratios = [row[3] for row in rows if row[0] == shape]
            steadies = [row[4] for row in rows if row[0] == shape]
            print(
                f"{shape}: median ratio {statistics.median(ratios):.2f}, less start-up "
                f"{statistics.median(steadies):.2f}, of {len(ratios)} runs"
            )


if __name__ == "__main__":
    main()
