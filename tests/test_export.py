"""`logs export`: plain Parquet of the deduplicated rows, equal row for row to `logs sql` over
the same window, as one file or a hive-partitioned directory."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import polars as pl
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from ingest.cli import app
from ingest.lake.writer import LakeWriter
from ingest.records import decode

runner = CliRunner()
START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=8)


def items(n: int, first: int = 0) -> list[tuple[str, list[bytes]]]:
    out = []
    for i in range(first, first + n):
        doc = {
            "ts": (START + timedelta(minutes=9 * i)).isoformat(),
            "level": ("INFO", "WARN", "ERROR")[i % 3],
            "service": f"svc{i % 4}",
            "message": f"event {i}",
            "latency_ms": i,
        }
        out.append((f"{1_795_000_000_000 + i}-0", [b"data", orjson.dumps(doc)]))
    return out


@pytest.fixture
def lake(env: dict[str, str], data_dir: Path) -> list[tuple[str, list[bytes]]]:
    rows = items(50)
    writer = LakeWriter(data_dir)
    writer.commit([decode(i, f) for i, f in rows])
    writer.commit([decode(i, f) for i, f in rows[10:20]])  # a redelivery: duplicates on disk
    return rows


def sorted_rows(path: Path, hive: bool = False) -> list[tuple[object, ...]]:
    source = (
        f"read_parquet('{path}/**/*.parquet', hive_partitioning=true, "
        "hive_types={'date': varchar, 'hour': varchar})"
        if hive
        else f"read_parquet('{path}')"
    )
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cols = "ts, level, service, host, message, trace_id, attrs, stream_id, ingested_at, date, hour"
    return con.execute(f"select {cols} from {source} order by stream_id").fetchall()


def test_export_of_a_range_equals_logs_sql_over_that_range(
    lake: list[tuple[str, list[bytes]]], tmp_path: Path
) -> None:
    since, until = (
        (START + timedelta(hours=2, minutes=30)).isoformat(),
        (START + timedelta(hours=5)).isoformat(),
    )
    exported, queried = tmp_path / "export.parquet", tmp_path / "sql.parquet"
    result = runner.invoke(app, ["export", "--since", since, "--until", until, "-o", str(exported)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert re.fullmatch(
        r"exported 17 rows \(3 hours\) to .*export\.parquet: [\d.]+ KiB in "
        r"[\d.]+ s\n",
        result.stderr,
    ), result.stderr
    sql = runner.invoke(
        app, ["sql", "select * from logs", "--since", since, "--until", until, "-o", str(queried)]
    )
    assert sql.exit_code == 0, sql.stderr
    rows = sorted_rows(exported)
    assert rows == sorted_rows(queried)
    assert len(rows) == len({r[7] for r in rows}) == 17  # deduplicated
    lo, hi = datetime.fromisoformat(since), datetime.fromisoformat(until)
    assert all(lo <= r[0] < hi for r in rows)


def test_export_is_plain_zstd_parquet_with_microsecond_utc_timestamps(
    lake: list[tuple[str, list[bytes]]], tmp_path: Path
) -> None:
    out = tmp_path / "all.parquet"
    assert runner.invoke(app, ["export", "--all", "-o", str(out)]).exit_code == 0
    meta = pq.ParquetFile(out)
    ts = meta.schema_arrow.field("ts").type
    assert (ts.unit, str(ts.tz)) == ("us", "UTC")
    assert meta.metadata.row_group(0).column(0).compression == "ZSTD"
    frame = pl.read_parquet(out)  # opens as-is elsewhere
    assert frame.height == 50 and frame["stream_id"].n_unique() == 50
    # Rows come out sorted by time within each hour, hours in order.
    assert frame["ts"].is_sorted()


def test_export_to_a_directory_is_a_hive_dataset(
    lake: list[tuple[str, list[bytes]]], tmp_path: Path
) -> None:
    out = tmp_path / "dataset"
    result = runner.invoke(app, ["export", "--all", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    parts = sorted(p.relative_to(out).parts[:2] for p in out.rglob("*.parquet"))
    assert len(parts) == 8
    assert all(
        re.fullmatch(r"date=\d{4}-\d\d-\d\d", d) and re.fullmatch(r"hour=\d\d", h) for d, h in parts
    )
    whole = tmp_path / "whole.parquet"
    runner.invoke(app, ["export", "--all", "-o", str(whole)])
    assert sorted_rows(out, hive=True) == sorted_rows(whole)
    assert "date" not in pq.read_schema(next(out.rglob("*.parquet"))).names
    again = runner.invoke(app, ["export", "--all", "-o", str(out)])
    assert again.exit_code == 2 and "not an empty directory" in again.stderr


def test_where_and_columns(lake: list[tuple[str, list[bytes]]], tmp_path: Path) -> None:
    out = tmp_path / "errors.parquet"
    result = runner.invoke(
        app,
        [
            "export",
            "--all",
            "--where",
            "level = 'ERROR'",
            "--columns",
            "ts,stream_id,message",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.stderr
    table = pq.read_table(out)
    assert table.column_names == ["ts", "stream_id", "message"]
    expected = sorted(i for n, (i, _) in enumerate(lake) if n % 3 == 2)
    assert sorted(table.column("stream_id").to_pylist()) == expected
    bad = runner.invoke(app, ["export", "--all", "--columns", "ts,nope", "-o", str(out)])
    assert bad.exit_code == 2 and "unknown column 'nope'" in bad.stderr
    bad_sql = runner.invoke(app, ["export", "--all", "--where", "levle = 1", "-o", str(out)])
    assert bad_sql.exit_code == 1 and "Binder Error" in bad_sql.stderr


def test_export_needs_a_window_and_an_empty_window_gives_an_empty_file(
    lake: list[tuple[str, list[bytes]]], tmp_path: Path
) -> None:
    out = tmp_path / "x.parquet"
    missing = runner.invoke(app, ["export", "-o", str(out)])
    assert missing.exit_code == 2 and "--since" in missing.stderr
    both = runner.invoke(app, ["export", "--all", "--since", "1h", "-o", str(out)])
    assert both.exit_code == 2
    bad = runner.invoke(app, ["export", "--since", "soon", "-o", str(out)])
    assert bad.exit_code == 2 and 'logs: error: --since "soon"' in bad.stderr
    assert not out.exists()
    future = runner.invoke(app, ["export", "--since", "2099-01-01", "-o", str(out)])
    assert future.exit_code == 0, future.stderr
    assert "exported 0 rows (0 hours)" in future.stderr
    assert pq.read_table(out).num_rows == 0
    assert "ts" in pq.read_schema(out).names
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
