"""`bench/query.py --lake s3`: the same compacted lake in a directory and in a bucket on a local
S3 server (moto in server mode), `logs sql` timed over each, the bucket read through a counting
proxy: requests and bytes per query, and the share of the table's bytes a query read."""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.query import build, timed  # noqa: E402
from bench.s3proxy import CountingProxy  # noqa: E402
from ingest.lake.location import Lake  # noqa: E402
from tests import s3server  # noqa: E402


def queries(start: datetime) -> list[tuple[str, str, list[str]]]:
    hour = start + timedelta(hours=4)
    window = hour + timedelta(minutes=20)
    iso = "%Y-%m-%dT%H:%M:%SZ"
    return [
        ("count", "select count(*) from logs", []),
        (
            "1-hour group-by",
            f"select service, level, count(*) from logs where date = '{hour:%Y-%m-%d}' and "
            f"hour = '{hour:%H}' group by all order by all",
            [],
        ),
        (
            "10-minute window",
            "select level, count(*), max(ts) from logs group by all order by all",
            [
                "--since",
                window.strftime(iso),
                "--until",
                (window + timedelta(minutes=10)).strftime(iso),
            ],
        ),
    ]


def table_bytes(lake: Lake) -> int:
    from deltalake import DeltaTable

    table = DeltaTable(lake.table_uri(), storage_options=lake.storage_options)
    return int(sum(table.get_add_actions(flatten=True).column("size_bytes").to_pylist()))


def main(args: argparse.Namespace) -> None:
    import os

    work = Path(tempfile.mkdtemp(prefix="bench-query-s3-"))
    server = s3server.start()
    proxy = CountingProxy(server.port)
    start = datetime(2026, 11, 20, tzinfo=UTC)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LOGS_", "AWS_"))}
    results = []
    try:
        bucket = server.new_bucket()
        direct = {**base, **server.env()}
        os.environ.update(server.env())  # the build writes straight to the server
        lake = Lake(f"s3://{bucket}/lake", work)
        began = time.perf_counter()
        build(work / "dir", "compacted", args.rows, args.hours, start)
        build(work / "s3", "compacted", args.rows, args.hours, start, lake=lake)
        print(f"built both lakes in {time.perf_counter() - began:.0f} s", file=sys.stderr)
        total = table_bytes(lake)
        local_env = {**base, "LOGS_DATA_DIR": str(work / "dir")}
        s3_env = {
            **direct,
            "AWS_ENDPOINT_URL": proxy.endpoint,
            "LOGS_LAKE_URI": lake.uri,
            "LOGS_DATA_DIR": str(work / "s3-host"),
        }
        for name, sql, flags in queries(start):
            cmd = [sys.executable, "-m", "ingest", "sql", sql, "-F", "csv", *flags]
            out_local = timed(cmd, local_env)[1]
            proxy.counts.reset()
            out_s3 = timed(cmd, s3_env)[1]
            requests, nbytes = proxy.counts.requests, proxy.counts.bytes_in
            if out_local != out_s3:
                raise SystemExit(f"{name}: answers differ:\n{out_local!r}\n{out_s3!r}")
            local_s, s3_s = [], []
            for _ in range(args.repeat):
                local_s.append(timed(cmd, local_env)[0])
                s3_s.append(timed(cmd, s3_env)[0])
            results.append(
                (name, statistics.median(local_s), statistics.median(s3_s), requests, nbytes)
            )
            print(f"  {name}: {results[-1]}", file=sys.stderr)
    finally:
        proxy.close()
        server.kill()
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"\n{args.rows:,} rows over {args.hours} hours, compacted (one sorted file per hour), "
        f"table {total / 1e6:.1f} MB; median of {args.repeat} runs of `logs sql` (whole process)\n"
    )
    print("| query | directory | bucket (local S3) | requests | bytes read | share of table |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, local, remote, requests, nbytes in results:
        print(
            f"| {name} | {local:.2f} s | {remote:.2f} s | {requests} | "
            f"{nbytes / 1e6:.2f} MB | {100 * nbytes / total:.1f} % |"
        )


if __name__ == "__main__":
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "query.py"), "--lake", "s3", *sys.argv[1:]]
    )
