"""`logs receive` throughput and latency against the raw ceiling of pipelined XADDs.

    uv run python bench/receive.py [--formats otlp-proto,otlp-json,bulk] [--requests 300]
                                   [--clients 8] [--stack uvicorn|granian] [--with-ingest]

For each format: build batches of 1,000 realistic records (bench data from `ingest.generate`)
as the shippers send them (an OTLP ExportLogsServiceRequest in protobuf or JSON, an
Elasticsearch `_bulk` body); compute the stream entries the receiver makes of them (with the
receiver's own code), and XADD those from this one process as fast as it can (the ceiling:
redis-py's pipeline, and hand-packed RESP with hiredis replies, 1,000 per round trip). Then
start a real receiver (`logs receive`, or the same ASGI app under granian) against a private
redis-server, and drive it with --clients keep-alive connections posting pre-built requests as
fast as it answers (closed loop): records/s, request latency, the receiver's CPU per record
and peak RSS. Then an open loop at half that rate for --seconds, latency measured from each
request's scheduled start (no coordinated omission): p50/p99. With --with-ingest a `logs
ingest` consumer runs beside the open loop; its lag is printed after the load stops.

Figures, not pass/fail; everything runs on this machine's cores (load generator included).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import receive_bodies as payload  # noqa: E402
from bench.ingest import cpu_seconds, start_redis  # noqa: E402
from bench.receive_bodies import bodies, ceiling_raw, ceiling_redispy, stream_entries  # noqa: E402
from bench.receive_load import closed_loop, open_loop, pct, raw_request  # noqa: E402
from ingest import redis_server  # noqa: E402

# -- the receiver ---------------------------------------------------------------------------------


def start_receiver(stack: str, redis_port: int, stream: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LOGS_")},
        "LOGS_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "LOGS_STREAM": stream,
        "LOGS_RECEIVE_TOKENS": payload.TOKEN,
        "LOGS_RECEIVE_HOST": "127.0.0.1",
        "LOGS_RECEIVE_MAX_LAG": str(10**9),
    }
    if stack == "granian":
        argv = [
            sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--loop", "uvloop", "--no-ws", "--log-level", "warning",
            "ingest.receive.app:from_env",
        ]  # fmt: skip
    else:
        env.update(
            LOGS_RECEIVE_OTLP_PORT=str(port),
            LOGS_RECEIVE_ELASTIC_PORT="0",
            LOGS_RECEIVE_HEC_PORT="0",
            LOGS_RECEIVE_LOKI_PORT="0",
        )
        argv = [sys.executable, "-m", "ingest", "-q", "receive"]
    proc = subprocess.Popen(argv, env=env, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{stack} receiver did not start")


def server_pid(proc: subprocess.Popen[bytes], stack: str) -> int:
    """The process doing the work: granian serves from a worker child."""
    if stack != "granian":
        return proc.pid
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == proc.pid:
                return int(entry)
    return proc.pid


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--formats", default="otlp-proto,otlp-json,bulk")
    parser.add_argument("--requests", type=int, default=300, help="batches per closed-loop run")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="open-loop duration")
    parser.add_argument("--stack", default="uvicorn", choices=("uvicorn", "granian"))
    parser.add_argument("--with-ingest", action="store_true")
    parser.add_argument("--distinct", type=int, default=20, help="distinct batches to cycle")
    parser.add_argument(
        "--batch", type=int, default=1000, help="records per request (small: HTTP overhead)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the receiver during the closed loop"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="open-loop records/s (default: half the closed loop's)",
    )
    args = parser.parse_args()
    payload.BATCH = args.batch

    import uvloop

    folder = Path(tempfile.mkdtemp(prefix="bench-receive-"))
    redis_proc, redis_port = start_redis(folder)
    client = redis.Redis(port=redis_port)
    print(
        f"redis-server {client.info()['redis_version']}, {os.cpu_count()} cores, stack {args.stack}"
    )
    try:
        for fmt in args.formats.split(","):
            made = bodies(fmt, args.distinct)
            batches = [stream_entries(*b) for b in made]
            cycled = [batches[i % len(batches)] for i in range(args.requests)]
            # Best of two for each: the ceiling moves with whatever else the machine is doing.
            slow = max(ceiling_redispy(redis_port, "ceiling", cycled) for _ in range(2))
            fast, fast_cpu = max(ceiling_raw(redis_port, "ceiling", cycled) for _ in range(2))
            client.delete("ceiling")
            size = sum(len(b[2]) for b in made) / len(made)
            entry_size = sum(len(e) for bt in batches for e in bt) / (payload.BATCH * len(batches))
            print(
                f"\n{fmt}: {len(made)} distinct bodies of {payload.BATCH} records, "
                f"{size / 1024:.0f} KiB each; entries {entry_size:.0f} B"
            )
            print(
                f"  ceiling: redis-py pipeline {slow:,.0f}/s; hand-packed {fast:,.0f}/s "
                f"({fast_cpu:.1f} µs CPU/record here)"
            )
            stream = f"bench-{fmt}"
            port = redis_server.free_port()
            proc = start_receiver(args.stack, redis_port, stream, port)
            pid = server_pid(proc, args.stack)
            requests = [raw_request(port, *made[i % len(made)]) for i in range(args.requests)]
            try:
                # Warm-up (imports, the first Redis connection), then the closed loop.
                uvloop.run(closed_loop(port, requests[:4], 2))
                cpu0 = cpu_seconds(pid) + cpu_seconds(redis_proc.pid)
                cpu_receiver0 = cpu_seconds(pid)
                spy = _py_spy(pid, folder / f"{fmt}.txt") if args.profile else None
                rate, lat, failures = uvloop.run(closed_loop(port, requests, args.clients))
                if spy is not None:
                    _py_spy_report(spy, folder / f"{fmt}.txt")
                records = args.requests * payload.BATCH
                receiver_cpu = (cpu_seconds(pid) - cpu_receiver0) / records * 1e6
                both_cpu = (cpu_seconds(pid) + cpu_seconds(redis_proc.pid) - cpu0) / records * 1e6
                print(
                    f"  receiver, {args.clients} clients: {rate:,.0f} records/s = "
                    f"{rate / fast:.2f} x ceiling; request p50 {pct(lat, 0.5):.1f} ms, "
                    f"p99 {pct(lat, 0.99):.1f} ms; {receiver_cpu:.1f} µs CPU/record "
                    f"(+redis {both_cpu - receiver_cpu:.1f}); failures {failures}"
                )
                ingest = None
                if args.with_ingest:
                    env = {
                        **{k: v for k, v in os.environ.items() if not k.startswith("LOGS_")},
                        "LOGS_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                        "LOGS_STREAM": stream,
                        "LOGS_DATA_DIR": str(folder / f"lake-{fmt}"),
                    }
                    client.delete(stream)
                    ingest_metrics = redis_server.free_port()
                    ingest = subprocess.Popen(
                        [sys.executable, "-m", "ingest", "-q", "ingest", "--metrics-port",
                         str(ingest_metrics)],
                        env=env,
                        cwd=ROOT,
                        stderr=subprocess.DEVNULL,
                    )  # fmt: skip
                    time.sleep(3)  # its start-up, outside the measured window
                half = args.rate or rate / 2
                lat, count, failures = uvloop.run(
                    open_loop(port, requests, half, args.seconds, args.clients * 2)
                )
                print(
                    f"  open loop at {half:,.0f} records/s for {args.seconds:.0f} s: "
                    f"p50 {pct(lat, 0.5):.1f} ms, p99 {pct(lat, 0.99):.1f} ms, "
                    f"max {pct(lat, 1.0):.1f} ms; failures {failures}"
                )
                if ingest is not None:
                    written = (count - failures) * payload.BATCH
                    behind = [written - _ingested(ingest_metrics)]
                    stop = time.monotonic() + 60
                    while behind[-1] > 0 and time.monotonic() < stop:
                        time.sleep(0.25)
                        behind.append(written - _ingested(ingest_metrics))
                    caught = (
                        f"caught up {(len(behind) - 1) * 0.25:.2f} s later"
                        if behind[-1] <= 0
                        else f"still {behind[-1]:,} behind 60 s later"
                    )
                    print(
                        f"  logs ingest beside it: {behind[0]:,} entries not yet committed when "
                        f"the load stopped; {caught}"
                    )
                    ingest.send_signal(signal.SIGTERM)
                    ingest.wait(60)
                print(f"  receiver peak RSS {peak_rss_mb(pid):.0f} MB")
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
                client.delete(stream)
    finally:
        redis_proc.kill()


def _py_spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    spy = subprocess.Popen(
        [
            "py-spy",
            "record",
            "-p",
            str(pid),
            "-r",
            "200",
            "-f",
            "raw",
            "-o",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # attached before the load starts
    return spy


def _py_spy_report(spy: subprocess.Popen[bytes], out: Path) -> None:
    """Self time per function from py-spy's collapsed stacks: where the receiver's CPU goes."""
    spy.send_signal(signal.SIGINT)
    spy.wait(30)
    own: dict[str, int] = {}
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        total += n
        leaf = frames[-1]
        own[leaf] = own.get(leaf, 0) + n
    http = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        leaf = stack.split(";")[-1]
        if any(
            part in leaf for part in ("uvicorn", "httptools", "asyncio", "ingest/receive/app.py")
        ):
            http += int(count)
    print(
        f"  profile ({total} samples, self time; HTTP server, event loop and routing "
        f"{100 * http / max(total, 1):.1f} %):"
    )
    for name, n in sorted(own.items(), key=lambda kv: -kv[1])[:15]:
        print(f"    {100 * n / total:5.1f} %  {name}")


def _ingested(port: int) -> int:
    """`loglake_entries_ingested_total` of the ingest process (committed to the lake)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as res:
        for line in res.read().decode().splitlines():
            if line.startswith("loglake_entries_ingested_total "):
                return int(float(line.split()[1]))
    return 0


if __name__ == "__main__":
    main()
