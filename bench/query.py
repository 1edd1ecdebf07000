"""Query latency: whole-process `logs sql` vs a bare `python -c "import duckdb; ..."` over the
same files, in one run.

    uv run python bench/query.py [--rows 10000000] [--hours 10] [--repeat 5] [--keep DIR]
    uv run python bench/query.py --lake s3 [--rows 2000000] [--hours 10] [--repeat 5]
    uv run python bench/query.py --startup [--rounds 31] [--vs DIR] [--bytecode] [--keep DIR]

Builds three lakes of generated rows (DuckDB generates them, deltalake commits them, no
Redis): *compacted* (one sorted file per hour, recorded as compacted), *uncompacted* (ten
ingest-like commits, every hour gets a file per commit, stream-id ranges disjoint) and
*redelivered* (the same plus one overlapping commit, so every hour must be deduplicated).
For each lake and query, times `python -m ingest sql ... -F csv` and the raw DuckDB process
over the snapshot's file list (no dedup), alternating, and prints medians and ratios.
Figures, not pass/fail.

`--lake s3` builds the compacted lake twice, in a directory and in a bucket on a local S3
server (moto in server mode), and times `logs sql` over each for a count, a 1-hour group-by and
a 10-minute window (`--since/--until`), reading the bucket through a counting proxy
(bench/s3proxy.py): requests and response bytes per query, and the share of the table's bytes.
`--startup` measures what a short query pays before DuckDB works: `select count(*) from logs`
on a small lake (10k rows, 1 hour, 10 commits) and on 200k rows over 4 hours, as `logs sql`
would print it (the table), against the bare DuckDB process; `logs --version` and `logs
--help` against `python -c pass`. Every round runs each command once, in a rotated order, and
the medians and their ratios are printed with the load average. `--vs DIR` adds another
checkout's code (e.g. the one before a change), run by this interpreter and its packages, to
the same rounds. `--bytecode` runs everything with compiled bytecode cached (a private
PYTHONPYCACHEPREFIX, warmed first), as an installed package runs (the Docker image compiles
it); without it, the environment decides (PYTHONDONTWRITEBYTECODE=1 recompiles every module
of every process, typer's and duckdb's included).

Figures (2026-12-06, 2 cores, load 0.5-1.2, 21 rounds, --vs the checkout before, b087645),
with cli/fast.py answering `logs sql`, --version and --help before Typer is imported:
select count(*), nothing cached (fresh clone, PYTHONDONTWRITEBYTECODE=1): 0.231 s vs bare
0.196 s (1.18x; before 0.537 s, 2.73x); 200k rows over 4 hours 0.229 / 0.193 s (1.18x; before
2.68x). Bytecode cached: 0.149 / 0.134 s (1.12x; before 2.07x), 200k rows 1.13x (before
2.04x). logs --version 0.031 s nothing cached / 0.027 s cached (before 0.158 / 0.109), logs
--help 0.028 / 0.025 s (before 0.142 / 0.091). Through Typer (before cli/fast.py): 1.48x
nothing cached, 1.29-1.31x cached.
"""

from __future__ import annotations

import argparse
import os
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

from ingest.generate import SERVICES  # noqa: E402
from ingest.lake import layout  # noqa: E402
from ingest.lake.location import Lake  # noqa: E402
from ingest.lake.schema import arrow_schema  # noqa: E402

COMMITS = 10


def generate_sql(first: int, count: int, start: datetime, hours: int, order: str) -> str:
    """`count` rows from row number `first`: ~50 entries per stream-id millisecond, event
    times uniform over `hours` hours, gen-like levels, services, messages and latency."""
    services = "[" + ", ".join(f"'{s}'" for s in SERVICES) + "]"
    epoch = start.timestamp()
    return f"""
    WITH base AS (
        -- Hash-based, not random(): a redelivered entry must decode to the same row.
        SELECT i, hash(i) AS h, (hash(i, 'level') % 1000000) / 1e6 AS r,
               (hash(i, 'ts') % 1000000) / 1e6 AS t,
               round(exp((hash(i, 'latency') % 1000000) / 1e6 * 6), 2) AS latency
        FROM range({first}, {first + count}) AS r(i)
    ), rows AS (
        SELECT
            to_timestamp({epoch} + t * {hours * 3600}) AS ts,
            CASE WHEN r < 0.12 THEN 'DEBUG' WHEN r < 0.86 THEN 'INFO' WHEN r < 0.95 THEN 'WARN'
                 WHEN r < 0.998 THEN 'ERROR' ELSE 'FATAL' END AS level,
            {services}[(h % 20)::BIGINT + 1] AS service,
            'ip-10-0-' || ((h >> 8) % 5) || '-' || ((h >> 8) % 50 + 10) AS host,
            CASE WHEN r >= 0.95 AND r < 0.998
                 THEN 'GET /v1/orders 500 upstream payments timed out after '
                      || latency::INT || 'ms'
                 ELSE ['GET', 'POST', 'PUT'][((h >> 16) % 3)::BIGINT + 1] || ' /v1/items/'
                      || (h % 99999) || ' 200 ' || latency::INT || 'ms' END AS message,
            substr(md5(i::VARCHAR), 1, 16) AS trace_id,
            '{{"latency_ms":' || latency || ',"user_id":' || (h % 20000) || '}}' AS attrs,
            (1795000000000 + i // 50) || '-' || (i % 50) AS stream_id,
            to_timestamp((1795000000000 + i // 50) / 1000.0) AS ingested_at
        FROM base
    )
    SELECT *, strftime(ts, '%Y-%m-%d') AS date, strftime(ts, '%H') AS hour FROM rows {order}
    """


def build(
    data_dir: Path, variant: str, rows: int, hours: int, start: datetime, lake: Lake | None = None
) -> None:
    import duckdb
    from deltalake import write_deltalake

    from ingest.lake.writer import open_table

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    schema = arrow_schema()
    where = layout.table_path(data_dir) if lake is None else lake.table_uri()
    table = open_table(where, schema=schema, lake=lake)

    def commit(sql: str) -> None:
        data = con.sql(sql).to_arrow_table().cast(schema)
        write_deltalake(table, data, mode="append", partition_by=layout.PARTITION_COLUMNS)

    if variant == "compacted":
        # Per hour, all its rows sorted by ts, in one file (what compaction writes).
        staged = generate_sql(0, rows, start, hours, "")
        con.execute(f"CREATE TABLE staged AS {staged}")
        for date, hour in con.execute(
            "SELECT DISTINCT date, hour FROM staged ORDER BY 1, 2"
        ).fetchall():
            commit(f"SELECT * FROM staged WHERE date = '{date}' AND hour = '{hour}' ORDER BY ts")
        return  # one file per hour: clean without any record
    per_commit = rows // COMMITS
    for c in range(COMMITS):
        commit(generate_sql(c * per_commit, per_commit, start, hours, ""))
    if variant == "redelivered":
        # A consumer crashed after committing: its batch comes again (0.5% of the rows).
        commit(generate_sql(rows // 2, rows // 200, start, hours, ""))


def lake_files(data_dir: Path) -> list[str]:
    from deltalake import DeltaTable

    return sorted(DeltaTable(str(layout.table_path(data_dir))).file_uris())


def queries(start: datetime) -> list[tuple[str, str, list[str]]]:
    """(name, SQL, extra `logs sql` flags)."""
    hour = start + timedelta(hours=4)
    date_s, hour_s = hour.strftime("%Y-%m-%d"), hour.strftime("%H")
    return [
        ("count", "select count(*) from logs", []),
        (
            "1-hour group-by",
            f"select service, level, count(*) from logs where date = '{date_s}' and "
            f"hour = '{hour_s}' group by all order by all",
            [],
        ),
        (
            "p95 per service",
            "select service, quantile_cont((attrs->>'$.latency_ms')::double, 0.95) as p95 "
            "from logs group by 1 order by 1",
            [],
        ),
        ("message ILIKE scan", "select count(*) from logs where message ilike '%timed out%'", []),
    ]


def raw_program(files: list[str], sql: str) -> str:
    view = (
        "create view logs as select * from read_parquet("
        + repr(files)
        + ", hive_partitioning=true, hive_types={'date': varchar, 'hour': varchar})"
    )
    return f"import duckdb; duckdb.sql({view!r}); print(duckdb.sql({sql!r}).fetchall())"


def timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, bytes]:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, cwd=cwd)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed: {done.stderr.decode()[-2000:]}")
    return elapsed, done.stdout


STARTUP_LAKES = (("small", 10_000, 1), ("200k rows, 4 hours", 200_000, 4))


def rounds(
    commands: dict[str, tuple[list[str], Path | None]], env: dict[str, str], n: int
) -> dict[str, float]:
    """Median seconds of each command over `n` rounds; each round runs every command once,
    the order rotated so none always runs first (or right after another)."""
    names = list(commands)
    times: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm the page cache (and the bytecode cache, if any)
        timed(commands[name][0], env, commands[name][1])
    for r in range(n):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            cmd, cwd = commands[name]
            times[name].append(timed(cmd, env, cwd)[0])
    return {name: statistics.median(t) for name, t in times.items()}


def startup(args: argparse.Namespace, root: Path, env: dict[str, str]) -> None:
    start = datetime(2026, 11, 20, tzinfo=UTC)
    if args.bytecode:
        env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    mode = (
        "compiled bytecode cached"
        if args.bytecode
        else (
            "PYTHONDONTWRITEBYTECODE=1, nothing cached"
            if env.get("PYTHONDONTWRITEBYTECODE")
            else "the environment's bytecode caching"
        )
    )

    def logs(*argv: str) -> dict[str, tuple[list[str], Path | None]]:
        out = {"logs": ([sys.executable, "-m", "ingest", *argv], ROOT)}
        if args.vs:
            out["logs (--vs)"] = ([sys.executable, "-m", "ingest", *argv], args.vs.resolve())
        return out

    load = [os.getloadavg()[0]]
    table: list[tuple[str, dict[str, float], str]] = []
    for name, n, hours in STARTUP_LAKES:
        data_dir = root / f"startup-{n}"
        if not (layout.table_path(data_dir) / "_delta_log").exists():
            build(data_dir, "uncompacted", n, hours, start)
        files = lake_files(data_dir)
        sql = "select count(*) from logs"
        commands = {
            **logs("sql", sql),
            "raw duckdb": ([sys.executable, "-c", raw_program(files, sql)], None),
        }
        run_env = {**env, "LOGS_DATA_DIR": str(data_dir)}
        table.append(
            (f"`select count(*)`, {name}", rounds(commands, run_env, args.rounds), "raw duckdb")
        )
        load.append(os.getloadavg()[0])
    for flag in ("--version", "--help"):
        commands = {**logs(flag), "python -c pass": ([sys.executable, "-c", "pass"], None)}
        table.append((f"`logs {flag}`", rounds(commands, env, args.rounds), "python -c pass"))
        load.append(os.getloadavg()[0])
    print(
        f"\nstart-up, median of {args.rounds} rotated rounds, {mode}; "
        f"load average {min(load):.1f}-{max(load):.1f} on {os.cpu_count()} cores\n"
    )
    columns = ["logs", *(["logs (--vs)"] if args.vs else [])]
    print(
        "| what | "
        + " | ".join(columns)
        + " | baseline | "
        + " | ".join(f"{c} / baseline" for c in columns)
        + " |"
    )
    print("|---|" + "---:|" * (2 * len(columns) + 1))
    for what, medians, baseline in table:
        cells = [f"{medians[c]:.3f} s" for c in columns]
        ratios = [f"{medians[c] / medians[baseline]:.2f}" for c in columns]
        print(
            f"| {what} | "
            + " | ".join(cells)
            + f" | {medians[baseline]:.3f} s ({baseline}) | "
            + " | ".join(ratios)
            + " |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--hours", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--variants", default="compacted,uncompacted,redelivered")
    parser.add_argument("--keep", type=Path, help="build (or reuse) the lakes here")
    parser.add_argument("--lake", choices=["dir", "s3"], default="dir")
    parser.add_argument("--startup", action="store_true", help="time start-up (see above)")
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--vs", type=Path, help="another checkout, timed in the same rounds")
    parser.add_argument("--bytecode", action="store_true", help="with cached bytecode")
    args = parser.parse_args()
    if args.lake == "s3":
        from bench.query_s3 import main as s3_main

        s3_main(args)
        return

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-query-"))
    start = datetime(2026, 11, 20, tzinfo=UTC)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGS_")}
    if args.startup:
        try:
            startup(args, root, env)
        finally:
            if args.keep is None:
                shutil.rmtree(root, ignore_errors=True)
        return
    results: list[tuple[str, str, float, float]] = []
    try:
        for variant in args.variants.split(","):
            data_dir = root / variant
            built = (layout.table_path(data_dir) / "_delta_log").exists()
            if not built or not lake_files(data_dir):
                began = time.perf_counter()
                build(data_dir, variant, args.rows, args.hours, start)
                print(
                    f"built {variant}: {args.rows:,} rows in {time.perf_counter() - began:.0f} s",
                    file=sys.stderr,
                )
            files = lake_files(data_dir)
            print(f"{variant}: {len(files)} files", file=sys.stderr)
            run_env = {**env, "LOGS_DATA_DIR": str(data_dir)}
            for name, sql, flags in queries(start):
                ours_cmd = [sys.executable, "-m", "ingest", "sql", sql, "-F", "csv", *flags]
                raw_cmd = [sys.executable, "-c", raw_program(files, sql)]
                timed(ours_cmd, run_env)  # warm the page cache and .pyc files
                timed(raw_cmd, run_env)
                ours, raw = [], []
                for _ in range(args.repeat):
                    ours.append(timed(ours_cmd, run_env)[0])
                    raw.append(timed(raw_cmd, run_env)[0])
                results.append((variant, name, statistics.median(ours), statistics.median(raw)))
                print(
                    f"  {name}: logs sql {results[-1][2]:.3f} s, raw {results[-1][3]:.3f} s",
                    file=sys.stderr,
                )
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)

    print(
        f"\n{args.rows:,} rows over {args.hours} hours; median of {args.repeat} runs, "
        "whole process incl. interpreter start\n"
    )
    print("| lake | query | logs sql | raw duckdb | ratio |")
    print("|---|---|---:|---:|---:|")
    for variant, name, ours_s, raw_s in results:
        print(f"| {variant} | {name} | {ours_s:.2f} s | {raw_s:.2f} s | {ours_s / raw_s:.2f} |")


if __name__ == "__main__":
    main()
