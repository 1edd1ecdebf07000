"""`logs sql` / `logs schema` / `from queries import connect` against a real lake and Redis:
counts stay exact under duplicates, --live sees Redis, every format parses back, and errors
come out as `logs: error:` lines with the right exit code."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
import redis
from typer.testing import CliRunner

from ingest.cli import app
from ingest.config import load
from ingest.lake.writer import LakeWriter
from ingest.records import decode
from queries import lake
from queries.session import open_session
from queries.timerange import window
from tests.helpers import RedisProc, lake_rows, run_logs

runner = CliRunner()
NOW = datetime.now(UTC).replace(microsecond=0)


def logs(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), input=input)


def entry(i: int, ts: datetime, level: str = "INFO", service: str = "api") -> list[bytes]:
    doc = {
        "ts": ts.isoformat(),
        "level": level,
        "service": service,
        "host": f"h{i % 3}",
        "message": f"request {i} done",
        "latency_ms": i % 97,
        "user": {"id": i},
    }
    return [b"data", orjson.dumps(doc)]


def stream_id(i: int, base_ms: int = 1_795_000_000_000) -> str:
    return f"{base_ms + i}-0"


def commit(data_dir: Path, items: list[tuple[str, list[bytes]]]) -> None:
    """One Delta commit of decoded entries, exactly as ingest writes them."""
    LakeWriter(data_dir).commit([decode(i, f) for i, f in items])


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def count(*extra: str) -> int:
    result = logs("sql", "select count(*) from logs", "-F", "csv", *extra)
    assert result.exit_code == 0, result.stderr
    return int(csv_rows(result.stdout)[1][0])


@pytest.fixture
def ingested(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> list[tuple[str, list[bytes]]]:
    """600 generated entries through Redis and `logs ingest --drain`; returns the entries."""
    assert run_logs(["gen", "--count", "600", "--hours", "3"], env).returncode == 0
    raw = redis_proc.client().xrange(stream)
    entries = [(i.decode(), [x for kv in f.items() for x in kv]) for i, f in raw]
    done = run_logs(["ingest", "--drain"], env)
    assert done.returncode == 0, done.stderr
    return entries


# -- exact counts ----------------------------------------------------------------------------


def test_count_is_exact_after_ingest_and_after_a_crash_left_duplicates(
    ingested: list[tuple[str, list[bytes]]], data_dir: Path
) -> None:
    assert count() == 600
    # Crash between commit and ack: the redelivered entries are committed a second time.
    commit(data_dir, ingested[:250])
    commit(data_dir, ingested[100:300])
    assert len(lake_rows(data_dir)) == 600 + 250 + 200  # the duplicates are physically there
    result = logs("sql", "select count(*), count(distinct stream_id) from logs", "-F", "csv")
    assert result.exit_code == 0, result.stderr
    assert csv_rows(result.stdout)[1] == ["600", "600"]
    twice = logs("sql", "select stream_id from logs group by 1 having count(*) > 1", "-F", "csv")
    assert twice.stdout == "stream_id\n"
    ids = logs("sql", "select stream_id from logs", "-F", "csv")
    assert sorted(r[0] for r in csv_rows(ids.stdout)[1:]) == sorted(i for i, _ in ingested)


def test_only_hours_that_may_hold_duplicates_are_deduplicated(
    env: dict[str, str], data_dir: Path
) -> None:
    hour = NOW.replace(minute=0, second=0) - timedelta(hours=5)
    first = [(stream_id(i), entry(i, hour + timedelta(seconds=i))) for i in range(10)]
    later = [(stream_id(100 + i), entry(i, hour + timedelta(seconds=i))) for i in range(10)]
    commit(data_dir, first)
    commit(data_dir, later)  # same hour, disjoint stream-id ranges: provably no duplicate
    (only,) = lake.logs_snapshot(data_dir).hours.values()
    assert len(only.paths) == 2 and not only.needs_dedup
    before = set(only.paths)
    commit(data_dir, first[3:5])  # a redelivery overlaps the first file, not the second
    (only,) = lake.logs_snapshot(data_dir).hours.values()
    (redelivery,) = set(only.paths) - before
    assert len(only.dedup_paths) == 2 and redelivery in only.dedup_paths
    assert count() == 20


def test_overlap_of_stream_id_ranges_is_judged_conservatively() -> None:
    def file(
        name: str, low: str | None, high: str | None
    ) -> tuple[str, int, int, str | None, str | None]:
        return (name, 1, 1, low, high)

    a = file("a", "1795000000000-0", "1795000000005-9")
    b = file("b", "1795000000006-0", "1795000000010-0")
    c = file("c", "1795000000010-3", "1795000000012-0")  # shares millisecond ...010 with b
    d = file("d", "1795000000020-10", "1795000000020-9")  # lexicographic min/max, one ms
    assert lake._overlapping([a, b, c, d]) == {"b", "c"}
    assert lake._overlapping([a, d]) == set()
    truncated = file("e", "1795000000030-1", "1795000000031-123456789012345678")
    assert lake._overlapping([a, truncated]) == {"a", "e"}  # a cut statistic proves nothing
    assert lake._overlapping([a, file("f", None, None)]) == {"a", "f"}
    # Compaction output sorted by ts: its files overlap each other but share no id.
    c1 = file("c1", "1795000000000-0", "1795000000050-0")
    c2 = file("c2", "1795000000001-0", "1795000000049-0")
    late = file("late", "1795000000100-0", "1795000000101-0")
    assert lake._overlapping([c1, c2, late], frozenset({"c1", "c2"})) == set()
    assert lake._overlapping([c1, c2, late]) == {"c1", "c2"}
    redelivered = file("r", "1795000000010-0", "1795000000011-0")
    assert lake._overlapping([c1, c2, redelivered], frozenset({"c1", "c2"})) == {"c1", "c2", "r"}


def test_counts_stay_exact_across_compaction_and_late_appends(
    env: dict[str, str], data_dir: Path
) -> None:
    from ingest.upkeep import compact

    hour = NOW.replace(minute=0, second=0) - timedelta(hours=30)
    items = [(stream_id(i), entry(i, hour + timedelta(seconds=i))) for i in range(300)]
    for part in range(0, 300, 100):
        commit(data_dir, items[part : part + 100])
    commit(data_dir, items[50:60])  # a redelivery
    assert count() == 300
    compact.compact(data_dir, target_file_size=1 << 10, grace=0)  # tiny files: several per hour
    (compacted,) = lake.logs_snapshot(data_dir).hours.values()
    assert len(compacted.paths) > 1 and not compacted.needs_dedup
    late = [(stream_id(1000 + i), entry(1000 + i, hour + timedelta(minutes=30))) for i in range(5)]
    commit(data_dir, late)  # newer ids: still provably unique
    (after,) = lake.logs_snapshot(data_dir).hours.values()
    assert len(after.paths) == len(compacted.paths) + 1
    assert not after.needs_dedup and count() == 305
    commit(data_dir, items[10:12])  # a redelivery into the compacted range
    (dirty,) = lake.logs_snapshot(data_dir).hours.values()
    assert dirty.needs_dedup and count() == 305


def test_empty_lake_answers_zero_rows(env: dict[str, str], data_dir: Path) -> None:
    assert not data_dir.exists()
    assert count() == 0
    for view in ("logs", "rollups_hourly", "rollups_daily"):
        result = logs("sql", f"select * from {view}")
        assert result.exit_code == 0, result.stderr
        assert result.stdout.rstrip().endswith("┘") and result.stderr == "0 rows\n"
    assert not data_dir.exists()  # a query never creates anything


# -- --live ----------------------------------------------------------------------------------


def test_live_adds_entries_still_in_redis_once(
    ingested: list[tuple[str, list[bytes]]],
    env: dict[str, str],
    redis_proc: RedisProc,
    stream: str,
    data_dir: Path,
) -> None:
    client = redis_proc.client()
    recent = datetime.now(UTC) - timedelta(minutes=1)  # `--since 10m` below counts from now
    added = [
        client.xadd(stream, dict(zip(*[iter(entry(i, recent, service="late"))] * 2, strict=True)))
        for i in range(40)
    ]
    assert count() == 600
    assert count("--live") == 640
    # 15 delivered to a consumer (pending), 5 of them even committed before a crash (no ack).
    reply = client.xreadgroup("lake", "crashed", {stream: ">"}, count=15)
    pending = [(i.decode(), [x for kv in f.items() for x in kv]) for i, f in reply[0][1]]
    commit(data_dir, pending[:5])
    assert count() == 605
    assert count("--live") == 640
    distinct = logs("sql", "select count(distinct stream_id) from logs", "-F", "csv", "--live")
    assert csv_rows(distinct.stdout)[1] == ["640"]
    late = "select stream_id from logs where service = $s"
    live_ids = logs("sql", late, "-p", "s", "late", "-F", "csv", "--live")
    assert sorted(r[0] for r in csv_rows(live_ids.stdout)[1:]) == sorted(i.decode() for i in added)
    # The window applies to live rows too.
    for flag, expected in (("--since", 40), ("--until", 0)):
        windowed = logs("sql", late, "-p", "s", "late", "-F", "csv", "--live", flag, "10m")
        assert len(csv_rows(windowed.stdout)) - 1 == expected


def test_live_and_dead_letters_need_redis_plain_queries_do_not(
    env: dict[str, str], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(data_dir, [(stream_id(1), entry(1, NOW))])
    monkeypatch.setenv("LOGS_REDIS_URL", "redis://127.0.0.1:1/0")
    assert count() == 1
    for args in (["select count(*) from logs", "--live"], ["select * from dead_letters"]):
        result = logs("sql", *args)
        assert result.exit_code == 3
        assert result.stderr.startswith("logs: error: cannot reach Redis at redis://127.0.0.1:1")
        assert result.stdout == ""


@pytest.mark.parametrize(
    "sql",
    [
        "select count(*) from logs -- not dead_letters",
        "select count(*) from logs /* dead_letters */",
        "select 'dead_letters' as word, count(*) from logs",
        "with dead_letters as (select 1 as x) select count(*) from logs, dead_letters",
        "select count(*) as dead_letters from logs l join logs r using (stream_id)",
        "select count(*) from logs dead_letters",
    ],
)
def test_dead_letters_in_a_comment_literal_or_cte_does_not_read_redis(
    env: dict[str, str], data_dir: Path, monkeypatch: pytest.MonkeyPatch, sql: str
) -> None:
    commit(data_dir, [(stream_id(1), entry(1, NOW))])
    monkeypatch.setenv("LOGS_REDIS_URL", "redis://127.0.0.1:1/0")  # any Redis read fails
    result = logs("sql", sql, "-F", "csv")
    assert result.exit_code == 0, result.stderr
    assert csv_rows(result.stdout)[1][-1] == "1"


@pytest.mark.parametrize(
    "sql",
    [
        "select count(*) from dead_letters",
        'select count(*) from "Dead_Letters"',
        "select * from logs where stream_id in (select stream_id from main.dead_letters)",
        # USING joins defeat get_table_names (placeholder tables); the tokenizer still sees it.
        "select count(*) from logs join dead_letters using (stream_id)",
    ],
)
def test_a_real_dead_letters_reference_reads_redis(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, sql: str
) -> None:
    monkeypatch.setenv("LOGS_REDIS_URL", "redis://127.0.0.1:1/0")
    result = logs("sql", sql)
    assert result.exit_code == 3, result.stderr
    assert result.stderr.startswith("logs: error: cannot reach Redis")


def test_notebook_dead_letters_is_an_error_unless_loaded(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    import duckdb

    from queries import connect

    redis_proc.client().xadd(f"{stream}:dlq", {"reason": "bad", "stream_id": "1-0", "x": "y"})
    con = connect(data_dir)
    try:
        assert [r[0] for r in con.sql("describe dead_letters").fetchall()][:2] == [
            "dlq_id",
            "stream_id",
        ]
        with pytest.raises(duckdb.InvalidInputException, match=r"connect\(dead_letters=True\)"):
            con.sql("select count(*) from dead_letters").fetchall()
    finally:
        con.close()
    loaded = connect(data_dir, dead_letters=True)
    try:
        assert loaded.sql("select count(*) from dead_letters").fetchall() == [(1,)]
    finally:
        loaded.close()


def test_dead_letters_view_reads_the_dlq_stream(
    env: dict[str, str], redis_proc: RedisProc, stream: str
) -> None:
    client = redis_proc.client()
    client.xadd(
        f"{stream}:dlq",
        {
            "reason": "invalid UTF-8 at byte 0",
            "stream_id": "5-0",
            "failed_at": "1795000000123",
            "data": b"\xff oops",
            "orig:reason": "theirs",
        },
    )
    result = logs("sql", "select * from dead_letters", "-F", "jsonl")
    assert result.exit_code == 0, result.stderr
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["reason"] == "invalid UTF-8 at byte 0"
    assert row["stream_id"] == "5-0"
    assert row["failed_at"] == "2026-11-18T11:06:40.123000Z"
    assert row["fields"] == {"data": "\ufffd oops", "reason": "theirs"}


# -- --since / --until -------------------------------------------------------------------------


def test_since_until_restrict_rows_and_prune_hour_partitions(
    env: dict[str, str], data_dir: Path
) -> None:
    start = NOW.replace(minute=0, second=0) - timedelta(hours=6)
    items = [(stream_id(i), entry(i, start + timedelta(minutes=10 * i))) for i in range(36)]
    commit(data_dir, items)
    since, until = start + timedelta(hours=2, minutes=5), start + timedelta(hours=4)
    expected = [
        i for n, (i, _) in enumerate(items) if since <= start + timedelta(minutes=10 * n) < until
    ]
    result = logs(
        "sql",
        "select stream_id from logs order by ts",
        "-F",
        "csv",
        "--since",
        since.isoformat(),
        "--until",
        until.isoformat(),
    )
    assert result.exit_code == 0, result.stderr
    assert [r[0] for r in csv_rows(result.stdout)[1:]] == expected
    session = open_session(load().settings, window=window(since, until), views={"logs"})
    hours = [(h.files.date, h.files.hour) for h in session.hours]
    assert hours == [
        (t.strftime("%Y-%m-%d"), t.strftime("%H"))
        for t in (start + timedelta(hours=2), start + timedelta(hours=3))
    ]
    # The view only lists the files of those hours.
    plan = session.con.execute("explain select count(*) from logs").fetchall()
    assert str(plan).count("hour=") <= 2 * len(hours)
    cut = NOW - timedelta(hours=1, minutes=30)
    assert count("--since", cut.isoformat()) == len(
        [n for n in range(36) if start + timedelta(minutes=10 * n) >= cut]
    )


def test_date_hour_predicates_prune_files_in_clean_and_deduplicated_hours(
    env: dict[str, str], data_dir: Path
) -> None:
    start = NOW.replace(minute=0, second=0) - timedelta(hours=6)
    items = [(stream_id(i), entry(i, start + timedelta(minutes=30 * i))) for i in range(8)]
    commit(data_dir, items)
    commit(data_dir, items[:4])  # hours 0 and 1 now hold duplicates, hours 2 and 3 do not
    target = start + timedelta(hours=1)
    sql = (
        f"explain analyze select count(*) from logs where date = '{target:%Y-%m-%d}' "
        f"and hour = '{target:%H}'"
    )
    result = logs("sql", sql, "-F", "csv")
    assert result.exit_code == 0, result.stderr
    scans = re.findall(r"Scanning Files: (\d+)/(\d+)", result.stdout)
    assert sorted(scans) == [("0", "2"), ("2", "4")]  # clean branch: 2 files, dirty: 4
    assert count() == 8


def test_bad_since_is_a_usage_error(env: dict[str, str]) -> None:
    result = logs("sql", "select 1", "--since", "1x")
    assert result.exit_code == 2
    assert result.stderr.startswith('logs: error: --since "1x": expected 90s, 15m, 1h')
    assert result.stdout == ""


# -- output formats ----------------------------------------------------------------------------

QUERY = (
    "select stream_id, ts, level, service, host, message, trace_id, attrs, date, hour "
    "from logs order by stream_id"
)


@pytest.fixture
def small_lake(env: dict[str, str], data_dir: Path) -> list[tuple[object, ...]]:
    # Times from the test's own start, not the module's import: `since="1h"` below counts
    # them against the clock, and a slow run reaches this test minutes after the import.
    now = datetime.now(UTC).replace(microsecond=0)
    items = [
        (stream_id(i), entry(i, now - timedelta(minutes=7 * i), ("INFO", "ERROR")[i % 2]))
        for i in range(55)
    ]
    commit(data_dir, items)
    commit(data_dir, items[:5])  # duplicates must not show in any format
    rows = lake_rows(
        data_dir,
        "select distinct stream_id, ts, level, service, host, message, "
        "trace_id, attrs, date, hour from t order by stream_id",
    )
    assert len(rows) == 55
    return rows


def _expected_text(rows: list[tuple[object, ...]]) -> list[list[str]]:
    def text(v: object) -> str:
        if v is None:
            return ""
        if isinstance(v, datetime):
            return v.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
        return str(v)

    return [[text(v) for v in row] for row in rows]


def test_csv_and_tsv_parse_back_to_the_same_rows(small_lake: list[tuple[object, ...]]) -> None:
    header = QUERY.split(" from")[0].removeprefix("select ").split(", ")
    result = logs("sql", QUERY, "-F", "csv")
    assert result.exit_code == 0, result.stderr
    parsed = csv_rows(result.stdout)
    assert parsed[0] == header
    assert parsed[1:] == _expected_text(small_lake)
    tsv = logs("sql", QUERY, "-F", "tsv")
    assert tsv.exit_code == 0, tsv.stderr
    # No quoting in TSV: the JSON of attrs comes through with its quotes as they are.
    unescape = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}
    lines = [
        [re.sub(r"\\[\\tnr]", lambda m: unescape[m.group()], cell) for cell in ln.split("\t")]
        for ln in tsv.stdout.splitlines()
    ]
    assert lines[0] == header and lines[1:] == _expected_text(small_lake)
    headless = logs("sql", QUERY, "-F", "csv", "--no-header")
    assert csv_rows(headless.stdout) == _expected_text(small_lake)


def test_json_and_jsonl_nest_attrs_and_use_rfc3339_utc(
    small_lake: list[tuple[object, ...]],
) -> None:
    as_json = logs("sql", QUERY, "-F", "json")
    as_jsonl = logs("sql", QUERY, "-F", "jsonl")
    assert as_json.exit_code == as_jsonl.exit_code == 0
    array = json.loads(as_json.stdout)
    lines = [json.loads(line) for line in as_jsonl.stdout.splitlines()]
    assert array == lines and len(lines) == 55
    for got, want in zip(lines, small_lake, strict=True):
        assert got["stream_id"] == want[0]
        assert got["ts"].endswith("Z")
        assert datetime.fromisoformat(got["ts"]) == want[1]
        assert got["attrs"] == json.loads(str(want[7]))  # an object, not an escaped string
        assert isinstance(got["attrs"]["user"], dict)
        assert [got[k] for k in ("level", "service", "host", "message", "date", "hour")] == [
            want[2],
            want[3],
            want[4],
            want[5],
            want[8],
            want[9],
        ]
    empty = logs("sql", "select * from logs where false", "-F", "json")
    assert json.loads(empty.stdout) == []


def test_parquet_to_a_file_and_to_a_pipe(
    small_lake: list[tuple[object, ...]], tmp_path: Path, env: dict[str, str]
) -> None:
    out = tmp_path / "rows.parquet"
    result = logs("sql", QUERY, "-o", str(out))  # format from the extension
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and "wrote 55 rows" in result.stderr
    table = pq.read_table(out)
    assert table.schema.field("ts").type.unit == "us"
    assert str(table.schema.field("ts").type.tz) == "UTC"
    assert [tuple(r.values()) for r in table.to_pylist()] == small_lake
    assert pq.ParquetFile(out).metadata.row_group(0).column(0).compression == "ZSTD"
    piped = run_logs(["sql", QUERY, "-F", "parquet"], env)
    assert piped.returncode == 0, piped.stderr
    assert pq.read_table(io.BytesIO(piped.stdout)).num_rows == 55
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rows")]  # no temp left


def test_parquet_refuses_a_terminal(
    small_lake: list[tuple[object, ...]], env: dict[str, str]
) -> None:
    import pty

    leader, follower = pty.openpty()
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("LOGS_")}, **env}
    proc = subprocess.run(
        [sys.executable, "-m", "ingest", "sql", "select 1", "-F", "parquet"],
        stdout=follower,
        stderr=subprocess.PIPE,
        env=full,
        timeout=60,
    )
    os.close(follower)
    os.close(leader)
    assert proc.returncode == 2
    assert b"not writing it to a terminal" in proc.stderr


def test_table_caps_rows_with_an_exact_footer(small_lake: list[tuple[object, ...]]) -> None:
    result = logs("sql", "select stream_id, level from logs order by stream_id")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert result.stderr == "55 rows (40 shown)\n"  # the footer is not a row: stderr
    shown = [ln for ln in lines if ln.startswith("│ 1795")]
    assert len(shown) == 40
    assert shown[0].split()[1] == small_lake[0][0] and shown[-1].split()[1] == small_lake[-1][0]
    assert "varchar" in lines[2]
    everything = logs("sql", "select stream_id from logs", "--max-rows", "-1")
    assert everything.stderr == "55 rows\n"
    assert sum(1 for ln in everything.stdout.splitlines() if ln.startswith("│ 1795")) == 55
    few = logs("sql", "select 1 as one")
    assert few.stderr == "1 row\n"


def test_table_fits_a_terminal_by_shrinking_then_hiding_columns() -> None:
    from queries.render import _frame, _layout

    assert _layout([27, 5, 50], None) == ([0, 1, 2], [27, 5, 50])
    assert _layout([27, 5, 50], 200) == ([0, 1, 2], [27, 5, 50])
    keep, widths = _layout([27, 5, 50], 60)
    assert keep == [0, 1, 2] and _frame(widths) <= 60 and widths[1] == 5
    keep, widths = _layout([27] * 11, 80)
    assert 1 < len(keep) < 11 and _frame(widths) + 4 <= 80  # 4 = the `…` column


def test_markdown_and_vertical(small_lake: list[tuple[object, ...]]) -> None:
    md = logs("sql", "select stream_id, level from logs order by stream_id", "-F", "markdown")
    lines = md.stdout.splitlines()
    assert lines[:2] == ["| stream_id | level |", "|---|---|"]
    assert len(lines) == 2 + 55 and lines[2] == f"| {small_lake[0][0]} | {small_lake[0][2]} |"
    vertical = logs(
        "sql", "select stream_id, level from logs order by stream_id limit 2", "-F", "vertical"
    )
    lines = vertical.stdout.splitlines()
    assert lines[0].startswith("-[ RECORD 1 ]-") and lines[3].startswith("-[ RECORD 2 ]-")
    assert lines[1:3] == [f"stream_id | {small_lake[0][0]}", f"level     | {small_lake[0][2]}"]


def test_format_from_env_and_conflicts(
    small_lake: list[tuple[object, ...]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOGS_FORMAT", "jsonl")
    assert json.loads(logs("sql", "select 1 as x").stdout) == {"x": 1}
    assert logs("sql", "select 1 as x", "-F", "csv").stdout == "x\n1\n"
    clash = logs("sql", "select 1", "-F", "csv", "-o", str(tmp_path / "a.json"))
    assert clash.exit_code == 2 and "contradicts" in clash.stderr
    assert not (tmp_path / "a.json").exists()


def test_head_closing_the_pipe_exits_quietly(
    small_lake: list[tuple[object, ...]], env: dict[str, str]
) -> None:
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("LOGS_")}, **env}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ingest",
            "sql",
            "select l.*, r.range from logs l, range(2000) r",
            "-F",
            "jsonl",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=full,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does
    assert proc.wait(60) == 0
    assert json.loads(first)["stream_id"]
    assert proc.stderr.read() == b""


def test_ctrl_c_stops_a_running_query_with_130(env: dict[str, str]) -> None:
    import signal

    full = {**{k: v for k, v in os.environ.items() if not k.startswith("LOGS_")}, **env}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ingest",
            "sql",
            "select count(*) from range(100000000000) t(x) where x % 7 = 3",
            "-F",
            "csv",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=full,
        # A shell's background job ignores SIGINT; a user's terminal does not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    maps = Path(f"/proc/{proc.pid}/maps")
    deadline = time.monotonic() + 60
    while "_duckdb" not in maps.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)  # past building the views: inside the query (it would run for minutes)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert (out, err) == (b"", b"interrupted\n")


# -- input: stdin, --file, parameters ----------------------------------------------------------


def test_sql_from_stdin_and_file_with_bound_parameters(
    small_lake: list[tuple[object, ...]], tmp_path: Path
) -> None:
    query = "select count(*) from logs where level = $level and service = $svc"
    from_stdin = logs(
        "sql", "-", "-p", "level", "ERROR", "-p", "svc", "api", "-F", "csv", input=query
    )
    assert from_stdin.exit_code == 0, from_stdin.stderr
    assert csv_rows(from_stdin.stdout)[1] == ["27"]
    path = tmp_path / "q.sql"
    path.write_text(query)
    from_file = logs(
        "sql", "--file", str(path), "-p", "level", "INFO", "-p", "svc", "api", "-F", "csv"
    )
    assert csv_rows(from_file.stdout)[1] == ["28"]
    # A value is bound, never spliced: this is just a level nobody has.
    injected = logs("sql", query, "-p", "level", "x' or 1=1 --", "-p", "svc", "api", "-F", "csv")
    assert csv_rows(injected.stdout)[1] == ["0"]
    missing = logs("sql", query, "-F", "csv")
    assert missing.exit_code == 1 and "logs: error:" in missing.stderr
    both = logs("sql", "select 1", "--file", str(path))
    assert both.exit_code == 2
    nothing = logs("sql")
    assert nothing.exit_code == 2 and "no SQL given" in nothing.stderr


# -- errors ------------------------------------------------------------------------------------


def test_bad_sql_shows_duckdb_message_with_caret_and_one_hint(env: dict[str, str]) -> None:
    result = logs("sql", "select * form logs")
    assert result.exit_code == 1
    assert result.stdout == ""
    err = result.stderr.splitlines()
    assert err[0] == 'logs: error: Parser Error: syntax error at or near "logs"'
    assert "LINE 1: select * form logs" in err and any(ln.strip() == "^^^^" for ln in err)
    hints = [ln for ln in err if ln.startswith("hint:")]
    assert len(hints) == 1 and "logs, rollups_hourly, rollups_daily and dead_letters" in hints[0]
    assert "Traceback" not in result.stderr


def test_unknown_view_and_column(env: dict[str, str]) -> None:
    view = logs("sql", "select * from nope")
    assert view.exit_code == 1
    assert view.stderr.startswith("logs: error: Catalog Error: Table with name nope does not")
    assert "pg_" not in view.stderr and "hint: views are logs" in view.stderr
    column = logs("sql", "select nosuch from logs")
    assert column.exit_code == 1
    assert column.stderr.startswith('logs: error: Binder Error: Referenced column "nosuch"')


def test_a_damaged_or_missing_lake_file_is_exit_3(env: dict[str, str], data_dir: Path) -> None:
    start = NOW.replace(minute=0, second=0) - timedelta(hours=3)
    commit(data_dir, [(stream_id(i), entry(i, start + timedelta(hours=i))) for i in range(3)])
    files = sorted((data_dir / "lake" / "logs").rglob("*.parquet"))
    files[1].write_bytes(b"PAR1 not really")
    result = logs("sql", "select * from logs", "-F", "csv")
    assert result.exit_code == 3, result.stderr
    assert result.stderr.startswith("logs: error: ") and "hint:" in result.stderr
    assert str(files[1].name) in result.stderr
    files[1].unlink()  # deleted behind the Delta log's back (not by vacuum)
    gone = logs("sql", "select * from logs", "-F", "csv")
    assert gone.exit_code == 3 and "run it again" in gone.stderr


def test_schema_lists_views_columns_and_types(env: dict[str, str]) -> None:
    result = logs("schema", "-F", "csv")
    assert result.exit_code == 0, result.stderr
    rows = csv_rows(result.stdout)
    assert rows[0] == ["view", "column", "type"]
    assert rows[1] == ["logs", "ts", "TIMESTAMP WITH TIME ZONE"]
    assert {r[0] for r in rows[1:]} == {"logs", "rollups_hourly", "rollups_daily", "dead_letters"}
    assert ["rollups_hourly", "count", "BIGINT"] in rows
    assert ["logs", "hour", "VARCHAR"] in rows
    one = logs("schema", "dead_letters", "-F", "csv")
    assert [r[1] for r in csv_rows(one.stdout)[1:]] == [
        "dlq_id",
        "stream_id",
        "failed_at",
        "reason",
        "fields",
    ]
    unknown = logs("schema", "nope")
    assert unknown.exit_code == 2 and "no view named 'nope'" in unknown.stderr


def test_rollup_views_read_their_delta_tables(env: dict[str, str], data_dir: Path) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    from ingest.lake import layout
    from ingest.lake.schema import ROLLUP_HOURLY_COLUMNS, arrow_schema
    from ingest.lake.writer import open_table

    schema = arrow_schema(ROLLUP_HOURLY_COLUMNS)
    table = open_table(layout.table_path(data_dir, "rollups_hourly"), schema=schema)
    row = {name: [None] for name in schema.names}
    row.update(
        date=["2026-11-20"],
        hour=["07"],
        service=["api"],
        level=["INFO"],
        count=[12],
        error_count=[0],
        message_bytes=[100],
        distinct_hosts=[2],
        first_ts=[datetime(2026, 11, 20, 7, tzinfo=UTC)],
        last_ts=[datetime(2026, 11, 20, 7, 59, tzinfo=UTC)],
    )
    write_deltalake(
        table, pa.table(row, schema=schema), mode="append", partition_by=["date", "hour"]
    )
    result = logs(
        "sql", "select date, hour, count from rollups_hourly where hour = '07'", "-F", "csv"
    )
    assert result.exit_code == 0, result.stderr
    assert csv_rows(result.stdout) == [["date", "hour", "count"], ["2026-11-20", "07", "12"]]


def test_every_command_has_help_with_an_example() -> None:
    for command in ("sql", "schema", "export"):
        result = logs(command, "--help")
        assert result.exit_code == 0
        assert "Example" in result.stdout and f"logs {command}" in result.stdout


# -- notebook API ------------------------------------------------------------------------------


def test_notebook_connect_has_the_same_deduplicated_views(
    small_lake: list[tuple[object, ...]], data_dir: Path
) -> None:
    from queries import connect

    con = connect(data_dir)
    assert con.sql("select count(*), count(distinct stream_id) from logs").fetchall() == [(55, 55)]
    assert con.sql("select count(*) from rollups_daily").fetchall() == [(0,)]
    frame = con.sql("select level, count(*) as n from logs group by level order by level").pl()
    assert frame.to_dicts() == [{"level": "ERROR", "n": 27}, {"level": "INFO", "n": 28}]
    recent = connect(data_dir, since="1h")
    assert recent.execute("select count(*) from logs").fetchone() == (9,)


def test_plain_sql_imports_no_redis_polars_pyarrow_deltalake_or_pydantic(
    env: dict[str, str], small_lake: list[tuple[object, ...]]
) -> None:
    """The start-up of `logs sql` (README, Performance): the Delta log is read without
    deltalake, and plain arguments are parsed without Typer (cli/fast.py), so no command module
    is imported either."""
    result = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "ingest",
            "sql",
            "select count(*) from logs",
            "-F",
            "csv",
        ],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("LOGS_")}, **env},
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"count_star()\n55\n"
    imported = {line.split("|")[-1].strip() for line in result.stderr.decode().splitlines()}
    for heavy in ("redis", "polars", "pyarrow", "apscheduler", "deltalake", "pydantic", "typer"):
        assert heavy not in imported, heavy
    commands = {m for m in imported if m.startswith("ingest.cli.")}
    assert commands == {"ingest.cli.fast", "ingest.cli.plain", "ingest.cli.sqlcmd"}


def test_redis_errors_name_the_url_without_password(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGS_REDIS_URL", "redis://:s3cret@127.0.0.1:1/0")
    result = logs("sql", "select * from dead_letters")
    assert result.exit_code == 3
    assert "s3cret" not in result.stderr and "***" in result.stderr


def test_unknown_redis_group_or_stream_means_everything_is_undelivered(
    env: dict[str, str], redis_proc: RedisProc, stream: str
) -> None:
    assert count("--live") == 0  # no stream at all
    client: redis.Redis = redis_proc.client()
    client.xadd(stream, dict(zip(*[iter(entry(1, NOW))] * 2, strict=True)))
    client.xadd(stream, {"data": "plain text line"})
    assert count("--live") == 2  # no group yet: both undelivered
