"""Ingest throughput: the raw XREADGROUP+XACK ceiling vs `logs ingest --drain`, in one run.

    uv run python bench/ingest.py [--count 500000] [--shapes json,fields,text] [--repeat 1]
                                  [--vs ../other-checkout] [--lake s3]

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

CPU per entry (this process or `logs ingest`, plus redis-server's own) is printed too: it
moves far less than wall time on a shared machine, so it is the figure to compare commits by.

`--vs DIR` compares commits in one run: DIR is another checkout (with its own `uv sync`), whose
`logs ingest` drains the same entries right after this checkout's, pair by pair.

`--lake s3` drains the same entries twice per run, into a local directory and into a bucket on
a local S3 server (moto in server mode, tests/s3server.py), and prints the bucket's rate as a
share of the directory's: the cost of object storage for one ingest process.

Shapes: `json` (one field holding a JSON object), `fields` (a field per column), `text` (one
plain-text field: RFC 3164 syslog, NCSA combined access logs and `time LEVEL service: message`
lines, 4:3:3, read by the text formats).
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ceiling(
    client: redis.Redis, server: int, stream: str, total: int, group: str
) -> tuple[float, float]:
    """Entries/s of XREADGROUP COUNT 10000 + pipelined XACK with no decoding at all, and the CPU
    seconds it took here and in redis-server (pid `server`)."""
    client.set_response_callback("XREADGROUP", lambda r, **kw: r)
    seen = 0
    cpu = time.process_time() + cpu_seconds(server)
    started = time.perf_counter()
    while seen < total:
        reply = client.execute_command(
            "XREADGROUP", "GROUP", group, "c", "COUNT", 10000, "STREAMS", stream, ">"
        )
        batch = reply[0][1]
        client.execute_command("XACK", stream, group, *[e[0] for e in batch])
        seen += len(batch)
    rate = total / (time.perf_counter() - started)
    return rate, time.process_time() + cpu_seconds(server) - cpu


def run_ingest(
    port: int,
    server: int,
    stream: str,
    group: str,
    data_dir: Path,
    checkout: Path = ROOT,
    extra_env: dict[str, str] | None = None,
) -> tuple[int, float, float, int, str]:
    """`logs ingest --drain` in a process of its own: entries, seconds (as it reports them), CPU
    seconds (its own and redis-server's, pid `server`), its peak RSS (MB), its last line."""
    env = {
        "LOGS_REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "LOGS_STREAM": stream,
        "LOGS_GROUP": group,
        "LOGS_DATA_DIR": str(data_dir),
        "PATH": "/usr/bin:/bin",
        **(extra_env or {}),
    }
    redis_cpu = cpu_seconds(server)
    with tempfile.TemporaryFile() as err_file:
        python = sys.executable if checkout == ROOT else str(checkout / ".venv/bin/python")
        proc = subprocess.Popen(
            [python, "-m", "ingest", "-q", "ingest", "--drain", "--consumer", "bench"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err_file,
            cwd=checkout,
        )
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not all children's
        cpu = usage.ru_utime + usage.ru_stime + cpu_seconds(server) - redis_cpu
        proc.returncode = os.waitstatus_to_exitcode(status)
        err_file.seek(0)
        err = err_file.read().decode()
    match = re.search(r"ingested (\d+) entries.* in ([\d.]+) s", err)
    if proc.returncode != 0 or not match:
        raise SystemExit(f"ingest failed ({proc.returncode}): {err}")
    n, seconds = int(match.group(1)), float(match.group(2))
    return n, seconds, cpu, usage.ru_maxrss // 1024, err.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=500_000)
    parser.add_argument("--shapes", default="json,fields,text")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--vs", type=Path, help="another checkout to alternate with")
    parser.add_argument("--lake", choices=["dir", "s3"], default="dir")
    args = parser.parse_args()
    sides = [("this", ROOT)] + ([("vs", args.vs.resolve())] if args.vs else [])
    if args.lake == "s3":
        sides.append(("s3", ROOT))
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    s3 = None
    if args.lake == "s3":
        from tests import s3server

        s3 = s3server.start()
    proc, port = start_redis(work)
    client = redis.Redis(port=port, protocol=2)  # RESP2, as the consumer speaks
    rows = []
    try:
        empty = [
            run_ingest(port, proc.pid, "bench-empty", f"e{r}", work / f"empty-{r}")
            for r in range(3)
        ]
        startup = statistics.median(seconds for _, seconds, _, _, _ in empty)
        for shape in args.shapes.split(","):
            stream = f"bench-{shape}"
            xadd_all(client, stream, entries(args.count, hours=3, seed=1, shape=shape))
            # Every group exists before the first read, so no run trims entries a later one
            # still has to read.
            for r in range(args.repeat):
                client.xgroup_create(stream, f"ceiling{r}", id="0")
                for side, _ in sides:
                    client.xgroup_create(stream, f"ingest{r}{side}", id="0")
            for r in range(args.repeat):
                top, top_cpu = ceiling(client, proc.pid, stream, args.count, f"ceiling{r}")
                for side, checkout in sides:
                    lake_env = None
                    if side == "s3" and s3 is not None:
                        lake_env = {
                            **s3.env(),
                            "LOGS_LAKE_URI": f"s3://{s3.new_bucket()}/lake",
                        }
                    n, seconds, cpu, rss, line = run_ingest(
                        port,
                        proc.pid,
                        stream,
                        f"ingest{r}{side}",
                        work / f"data-{shape}-{r}-{side}",
                        checkout,
                        lake_env,
                    )
                    steady = n / (seconds - startup) / top
                    per_entry = (top_cpu / args.count * 1e6, cpu / n * 1e6)
                    label = shape if side == "this" else f"{shape} {side}"
                    rows.append(
                        (label, top, n / seconds, n / seconds / top, steady, rss, *per_entry)
                    )
                    print(f"{label}: {line}", file=sys.stderr)
    finally:
        proc.kill()
        if s3 is not None:
            s3.kill()
        shutil.rmtree(work, ignore_errors=True)
    print(f"entries: {args.count} per shape, 3 event hours, one ingest process")
    print(f"start-up of a drain over an empty stream: {startup:.2f} s (median of 3)")
    print("CPU µs/entry, Redis's included: the ceiling's loop; `logs ingest`, start-up included")
    print(
        f"{'shape':9} {'ceiling/s':>10} {'ingest/s':>10} {'ratio':>6} {'less start-up':>14} "
        f"{'ingest RSS MB':>14} {'CPU ceiling':>12} {'CPU ingest':>11}"
    )
    for shape, top, rate, ratio, steady, rss, top_us, us in rows:
        print(
            f"{shape:9} {top:10,.0f} {rate:10,.0f} {ratio:6.2f} {steady:14.2f} {rss:14} "
            f"{top_us:12.1f} {us:11.1f}"
        )
    if args.lake == "s3":
        local = {row[0]: row[2] for row in rows if not row[0].endswith(" s3")}
        for row in rows:
            if row[0].endswith(" s3"):
                base = row[0].removesuffix(" s3")
                print(f"{base}: bucket/directory ingest rate {row[2] / local[base]:.2f}")
    if args.repeat > 1 or args.vs:
        labels = dict.fromkeys(row[0] for row in rows)
        for label in labels:
            ratios = [row[3] for row in rows if row[0] == label]
            steadies = [row[4] for row in rows if row[0] == label]
            cpus = [row[7] for row in rows if row[0] == label]
            print(
                f"{label}: median ratio {statistics.median(ratios):.2f}, less start-up "
                f"{statistics.median(steadies):.2f}, CPU {statistics.median(cpus):.2f} µs/entry, "
                f"of {len(ratios)} runs"
            )


if __name__ == "__main__":
    main()
