"""Compaction speed and memory: one hour of N rows in ~F ingest-like files, compacted in a child
process; reports rows/s and the child's peak RSS (its own rusage from wait4).

    uv run python bench/compact.py [--rows 2000000 --rows 10000000] [--files 200]
                                   [--layout ordered|random] [--redeliver 0.02] [--naive]
                                   [--keep DIR]

The hour is built from rows `logs gen` produces (decoded by ingest's decoder), re-stamped with
fresh stream ids and event times, committed like ingest does (snappy, one commit per file);
every file also repeats a share of the previous file's rows (a redelivery after a crash).
`--naive` also runs a plain Polars `unique().sort().sink_parquet()` over the same files, for
comparison. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.lake import layout  # noqa: E402

DATE, HOUR = "2024-05-01", "10"
POOL = 20_000


def build(
    data_dir: Path, rows: int, files: int, redeliver: float, layout_: str, seed: int = 0
) -> float:
    """Commit the hour; returns seconds spent.

    `ordered`: like live ingest, commit k holds the events of its own stretch of the hour, with
    a few seconds of jitter and 1% of rows up to a minute late. `random`: every commit spans
    the whole hour (a backfill; the worst case: every file has to be split).
    """
    import pyarrow as pa
    from deltalake import write_deltalake

    from ingest import generate, records
    from ingest.lake.schema import arrow_schema
    from ingest.lake.writer import open_table

    started = time.monotonic()
    decoded = [
        records.decode(f"1700000000000-{i}", [b"data", fields["data"]])
        for i, fields in enumerate(generate.entries(POOL, seed=seed, now=1.7e9))
    ]
    level, service, host, message, trace, attrs = (
        pa.array(column, pa.string()) for column in list(zip(*decoded, strict=True))[1:7]
    )
    schema = arrow_schema()
    table = open_table(layout.table_path(data_dir))
    start = layout.micros(layout.hour_start(DATE, HOUR))
    rng = random.Random(seed)
    per = rows // files
    previous = None
    for number in range(files):
        pick = pa.array([rng.randrange(POOL) for _ in range(per)])
        if layout_ == "random":
            ts = [start + rng.randrange(3_600_000_000) for _ in range(per)]
        else:
            span = 3_600_000_000 // files
            base = start + number * span
            ts = [
                base
                + rng.randrange(span)
                + rng.randrange(-2_000_000, 2_000_000)
                - (rng.randrange(60_000_000) if rng.random() < 0.01 else 0)
                for _ in range(per)
            ]
            ts = [min(max(t, start), start + 3_599_999_999) for t in ts]
        ms = [t // 1000 for t in ts]
        ids = pa.array([f"{m}-{number * per + i}" for i, m in enumerate(ms)], pa.string())
        batch = pa.Table.from_arrays(
            [
                pa.array(ts, pa.timestamp("us", tz="UTC")),
                level.take(pick),
                service.take(pick),
                host.take(pick),
                message.take(pick),
                trace.take(pick),
                attrs.take(pick),
                ids,
                pa.array([m * 1000 for m in ms], pa.timestamp("us", tz="UTC")),
                pa.array([DATE] * per, pa.string()),
                pa.array([HOUR] * per, pa.string()),
            ],
            schema=schema,
        )
        commit = batch
        if previous is not None and redeliver:
            commit = pa.concat_tables([batch, previous.slice(0, int(per * redeliver))])
        write_deltalake(table, commit, mode="append", partition_by=layout.PARTITION_COLUMNS)
        previous = batch
    return time.monotonic() - started


def child(data_dir: Path, naive: bool) -> dict[str, object]:
    """Runs in the measured process."""
    from ingest.lake import state as lakestate
    from ingest.upkeep import compact

    if naive:
        import polars as pl

        hour = lakestate.snapshot(data_dir)[f"{DATE}/{HOUR}"]
        root = layout.table_path(data_dir)
        started = time.monotonic()
        out = data_dir / "naive.parquet"
        (
            pl.scan_parquet([str(root / f) for f in hour.files], hive_partitioning=False)
            .unique(subset="stream_id")
            .sort("ts")
            .sink_parquet(out, compression="zstd")
        )
        rows = pl.scan_parquet(out).select(pl.len()).collect().item()
        return {"seconds": time.monotonic() - started, "rows_out": rows}
    report = compact.compact(data_dir, target_file_size=128 << 20, grace=0)
    (hour,) = report.hours
    return {
        "seconds": report.seconds,
        "rows_in": hour.rows_before,
        "rows_out": hour.rows_after,
        "files_in": hour.files_before,
        "files_out": hour.files_after,
    }


def measure(data_dir: Path, naive: bool) -> dict[str, object]:
    args = [sys.executable, __file__, "--child", str(data_dir)] + (["--naive"] if naive else [])
    proc = subprocess.Popen(args, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child failed with {proc.returncode}")
    result: dict[str, object] = json.loads(output)
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows",
        type=int,
        action="append",
        help="rows in the hour (repeatable; default 2M and 10M)",
    )
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument(
        "--redeliver", type=float, default=0.02, help="share of each file repeated in the next one"
    )
    parser.add_argument(
        "--layout",
        choices=["ordered", "random"],
        default="ordered",
        help="event times per commit: live-like (default) or spread out",
    )
    parser.add_argument("--naive", action="store_true", help="also time plain Polars")
    parser.add_argument("--keep", type=Path, help="build under this dir and keep it")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.naive)))
        return
    for rows in args.rows or [2_000_000, 10_000_000]:
        base = args.keep or Path(tempfile.mkdtemp(prefix="bench-compact-"))
        data_dir = base / f"rows-{rows}"
        shutil.rmtree(data_dir, ignore_errors=True)
        build(data_dir, rows, args.files, args.redeliver, args.layout)
        runs = [("loglake", False)] + ([("naive polars", True)] if args.naive else [])
        for name, naive in runs:
            if naive:
                shutil.rmtree(data_dir, ignore_errors=True)
                build(data_dir, rows, args.files, args.redeliver, args.layout)
            r = measure(data_dir, naive)
            seconds = float(r["seconds"])  # type: ignore[arg-type]
            rows_out = int(r["rows_out"])  # type: ignore[call-overload]
            print(
                f"{name:13s} {rows:>11,} rows in {args.files} {args.layout} files: "
                f"{seconds:6.1f} s, {rows_out / seconds:>9,.0f} rows/s "
                f"(CPU {float(r['cpu_s']):.1f} s), peak RSS "  # type: ignore[arg-type]
                f"{float(r['peak_rss_mb']):,.0f} MB"  # type: ignore[arg-type]
                + (f", {r['files_in']} -> {r['files_out']} files" if not naive else ""),
                flush=True,
            )
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
