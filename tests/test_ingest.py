"""`logs gen` / `logs send` / `logs ingest` end to end against a real Redis and a real lake."""

from __future__ import annotations

import dataclasses
import gc
import json
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest import config
from ingest.consume import consumer as consumer_mod
from ingest.consume import process
from ingest.redis_server import free_port
from tests.helpers import (
    RedisProc,
    bookmark,
    dlq_entries,
    ids_in_stream,
    lake_ids,
    lake_rows,
    run_logs,
    spawn_logs,
    wait_until,
)


def test_gen_then_drain_lands_every_entry_once_in_its_event_hour(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    gen = run_logs(["gen", "--count", "5000", "--hours", "3"], env)
    assert gen.returncode == 0, gen.stderr
    assert b"generated 5000 entries" in gen.stderr
    client = redis_proc.client()
    expected = ids_in_stream(client, stream)
    assert len(expected) == 5000

    ing = run_logs(["ingest", "--drain"], env)
    assert ing.returncode == 0, ing.stderr
    assert b"ingested 5000 entries, dead-lettered 0" in ing.stderr
    assert ing.stdout == b""

    assert sorted(lake_ids(data_dir)) == sorted(expected)
    rows = lake_rows(data_dir, "select ts, date, hour from t")
    for ts, date, hour in rows:
        utc = ts.astimezone(UTC)
        assert (utc.strftime("%Y-%m-%d"), utc.strftime("%H")) == (date, hour)
    assert len({(d, h) for _, d, h in rows}) in (3, 4)
    # Nothing pending, and every acknowledged entry trimmed from the stream.
    assert client.xpending(stream, "lake")["pending"] == 0
    assert client.xlen(stream) == bookmark(client)


def test_the_columnar_lanes_write_what_the_per_entry_decoder_makes(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    """Whole-batch decoding (JSON and field-per-column entries) is an optimisation: the table
    must hold exactly the rows records.decode makes of the same entries, column for column."""
    from ingest.lake.writer import rows_to_arrow
    from ingest.records import decode

    for seed, shape in enumerate(("json", "fields")):
        res = run_logs(["gen", "-n", "3000", "--shape", shape, "--seed", str(seed)], env)
        assert res.returncode == 0, res.stderr
    client = redis_proc.client()
    entries = [
        (i, [part for pair in fields.items() for part in pair])
        for i, fields in client.xrange(stream)
    ]
    ing = run_logs(["ingest", "--drain"], {**env, "LOGS_BATCH_AGE": "30"}, timeout=180)
    assert ing.returncode == 0, ing.stderr
    assert b"ingested 6000 entries, dead-lettered 0" in ing.stderr

    want = rows_to_arrow([decode(i.decode(), f) for i, f in entries])
    cols = ", ".join(want.column_names)
    got = lake_rows(data_dir, f"select {cols} from t order by stream_id")
    assert [tuple(r.values()) for r in want.sort_by("stream_id").to_pylist()] == got


def test_mixed_shapes_land_as_designed_and_bad_entries_go_to_the_dlq(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    client = redis_proc.client()
    good = {
        client.xadd(
            stream,
            {
                "ts": "2026-11-20T12:30:00+02:00",
                "level": "warning",
                "service": "api",
                "message": "fields",
                "user": "bob",
            },
        ): "fields",
        client.xadd(
            stream,
            {
                "payload": json.dumps(
                    {
                        "time": 1795168800123,
                        "level": 50,
                        "app": "pay",
                        "msg": "json",
                        "latency_ms": 7.5,
                    }
                )
            },
        ): "json",
        client.xadd(stream, {"line": "plain text"}): "text",
        client.xadd(
            stream,
            {"data": json.dumps({"ts": 1795168800000000000, "severity": "crit", "message": "ns"})},
        ): "ns",
    }
    bad = {
        client.xadd(stream, {"data": "x" * (1024 * 1024 + 10)}): "entry too large",
        # The same limit for the shapes the columnar lanes take: JSON and fields.
        client.xadd(stream, {"data": '{"m":"' + "x" * (1024 * 1024) + '"}'}): "entry too large",
        client.xadd(stream, {"ts": "1", "level": "info", "m": "x" * (1024 * 1024)}): "too large",
        client.xadd(stream, {"msg": b"\xff\xfe\xfd"}): "invalid UTF-8",
        client.xadd(stream, {"data": '{"m": "\\udc00"}'}): "lone surrogate",
        client.xadd(stream, {"data": '{"a":' * 80 + "1" + "}" * 80}): "nested deeper",
    }
    ing = run_logs(["ingest", "--drain"], env)
    assert ing.returncode == 0, ing.stderr
    assert b"ingested 4 entries, dead-lettered 6" in ing.stderr

    rows = {
        r[0]: r[1:]
        for r in lake_rows(
            data_dir,
            "select stream_id, strftime(ts at time zone 'UTC', "
            "'%Y-%m-%dT%H:%M:%S.%g'), level, service, message, attrs from t",
        )
    }
    by_kind = {kind: rows[sid.decode()] for sid, kind in good.items()}
    assert by_kind["fields"][:4] == ("2026-11-20T10:30:00.000", "WARN", "api", "fields")
    assert json.loads(by_kind["fields"][4]) == {"user": "bob"}
    assert by_kind["json"][:4] == ("2026-11-20T10:00:00.123", "ERROR", "pay", "json")
    assert json.loads(by_kind["json"][4]) == {"latency_ms": 7.5}
    assert by_kind["text"][3] == "plain text"
    assert by_kind["ns"][:2] == ("2026-11-20T10:00:00.000", "FATAL")

    letters = {e[b"stream_id"]: e for e in dlq_entries(client, stream)}
    assert set(letters) == set(bad)
    for sid, reason in bad.items():
        assert reason in letters[sid][b"reason"].decode()
        assert letters[sid][b"failed_at"].isdigit()
    # The original payload is kept whole in the dead letter, bytes included.
    assert letters[[s for s, r in bad.items() if r == "invalid UTF-8"][0]][b"msg"] == (
        b"\xff\xfe\xfd"
    )
    assert client.xpending(stream, "lake")["pending"] == 0


def test_several_consumers_in_one_group_together_ingest_everything(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    assert run_logs(["gen", "--count", "20000", "--hours", "2"], env).returncode == 0
    expected = ids_in_stream(redis_proc.client(), stream)
    env = {**env, "LOGS_READ_COUNT": "500", "LOGS_BATCH_ROWS": "2000"}
    procs = [spawn_logs(["ingest", "--drain", "--consumer", f"c{i}"], env) for i in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    ids = lake_ids(data_dir)
    assert set(ids) == set(expected)
    assert len(ids) == len(expected)


def test_an_idle_stream_still_flushes_within_the_batch_age(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    proc = spawn_logs(["ingest", "--consumer", "idle"], {**env, "LOGS_BATCH_AGE": "0.5"})
    try:
        client = redis_proc.client()
        assert wait_until(lambda: client.exists(stream) and client.xinfo_groups(stream))
        sent = [client.xadd(stream, {"message": f"m{i}"}).decode() for i in range(10)]
        assert wait_until(
            lambda: (
                (data_dir / "lake/logs/_delta_log").exists()
                and sorted(lake_ids(data_dir)) == sorted(sent)
            )
        )
        assert wait_until(lambda: client.xpending(stream, "lake")["pending"] == 0)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert b"ingested 10 entries" in err


def test_sigterm_commits_the_batch_in_hand_then_exits_zero(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    env = {**env, "LOGS_BATCH_AGE": "600", "LOGS_BATCH_ROWS": "100000"}
    proc = spawn_logs(["ingest", "--consumer", "term"], env)
    client = redis_proc.client()
    try:
        assert wait_until(lambda: client.exists(stream) and client.xinfo_groups(stream))
        sent = [client.xadd(stream, {"message": f"m{i}"}).decode() for i in range(100)]
        # Read into the batch (pending in the group) but not committed: the age is 10 minutes.
        assert wait_until(lambda: client.xpending(stream, "lake")["pending"] == 100)
        assert not (data_dir / "lake/logs").exists() or lake_ids(data_dir) == []
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert sorted(lake_ids(data_dir)) == sorted(sent)
    assert client.xpending(stream, "lake")["pending"] == 0


def test_unreachable_redis_is_one_line_exit_3_without_the_password(env: dict[str, str]) -> None:
    url = f"redis://user:s3cret@127.0.0.1:{free_port()}/0"
    for args in (["ingest", "--drain"], ["gen", "-n", "1"]):
        res = run_logs(args, {**env, "LOGS_REDIS_URL": url})
        assert res.returncode == 3, res.stderr
        err = res.stderr.decode()
        assert err.startswith("logs: error: cannot reach Redis at redis://user:***@127.0.0.1")
        assert "s3cret" not in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1


def test_send_reads_stdin_and_fills_missing_fields(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    lines = (
        b"\n".join(
            [
                b"plain line one",
                b'{"message": "json line", "service": "own", "latency_ms": 3}',
                b"",
                b"plain line two",
            ]
        )
        + b"\n"
    )
    res = run_logs(["send", "--service", "api", "--level", "warn"], env, input=lines)
    assert res.returncode == 0, res.stderr
    assert res.stderr.decode().strip() == f"sent 3 entries to {stream}"
    assert run_logs(["ingest", "--drain"], env).returncode == 0
    rows = sorted(lake_rows(data_dir, "select message, service, level, attrs from t"))
    assert [r[:3] for r in rows] == [
        ("json line", "own", "WARN"),
        ("plain line one", "api", "WARN"),
        ("plain line two", "api", "WARN"),
    ]
    assert json.loads(rows[0][3]) == {"latency_ms": 3, "_ts_source": "stream_id"}


def test_send_from_files_and_a_missing_file(env: dict[str, str], tmp_path: Path) -> None:
    f = tmp_path / "app.log"
    f.write_text("a\nb\nc\n")
    res = run_logs(["send", str(f)], env)
    assert res.returncode == 0, res.stderr
    assert b"sent 3 entries" in res.stderr
    res = run_logs(["send", str(tmp_path / "nope.log")], env)
    assert res.returncode == 2
    assert res.stderr.decode().startswith("logs: error: no such file:")


def test_gen_shapes_all_ingest(env: dict[str, str], data_dir: Path) -> None:
    for seed, shape in enumerate(("fields", "json", "text")):
        res = run_logs(["gen", "-n", "300", "--shape", shape, "--seed", str(seed)], env)
        assert res.returncode == 0, res.stderr
    assert run_logs(["ingest", "--drain"], env).returncode == 0
    counts = dict(lake_rows(data_dir, "select service = 'unknown', count(*) from t group by 1"))
    # Text lines: syslog lines name their program; access and app lines name no service.
    assert counts[False] > 600 and counts[False] + counts[True] == 900
    arrival = lake_rows(data_dir, "select count(*) from t where attrs like '%_ts_source%'")
    assert arrival == [(0,)]  # every text line's own time was read


def test_embedded_redis_is_started_found_and_stopped(tmp_path: Path) -> None:
    env = {"LOGS_DATA_DIR": str(tmp_path / "d")}
    try:
        res = run_logs(["gen", "-n", "100"], env)
        assert res.returncode == 0, res.stderr
        assert b"started the embedded Redis" in res.stderr
        assert (tmp_path / "d/redis/url").read_text().startswith("redis://127.0.0.1:")
        res = run_logs(["ingest", "--drain"], env)
        assert res.returncode == 0, res.stderr
        assert len(lake_ids(tmp_path / "d")) == 100
        assert list((tmp_path / "d/redis").glob("appendonly*"))
    finally:
        res = run_logs(["down"], env)
    assert res.returncode == 0
    assert b"stopped the embedded Redis" in res.stderr
    res = run_logs(["ingest", "--drain"], env)
    assert res.returncode == 3
    assert b"no Redis" in res.stderr


def test_event_time_not_ingest_time_picks_the_partition(
    env: dict[str, str], redis_proc: RedisProc, stream: str, data_dir: Path
) -> None:
    client = redis_proc.client()
    old = datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)
    client.xadd(stream, {"ts": old.isoformat(), "message": "leap"})
    assert run_logs(["ingest", "--drain"], env).returncode == 0
    assert lake_rows(data_dir, "select date, hour from t") == [("2024-02-29", "23")]
    assert list((data_dir / "lake/logs/date=2024-02-29/hour=23").glob("*.parquet"))


def test_one_commit_never_holds_an_id_twice(data_dir: Path) -> None:
    from ingest.lake.writer import LakeWriter
    from ingest.records import decode

    rows = [decode(f"1795168800000-{i}", [b"message", f"m{i}".encode()]) for i in range(10)]
    LakeWriter(data_dir).commit(rows + rows[:3])
    assert sorted(lake_ids(data_dir)) == sorted(r.stream_id for r in rows)


def test_fresh_files_are_compressed(data_dir: Path) -> None:
    import pyarrow.parquet as pq

    from ingest.lake.writer import LakeWriter
    from ingest.records import decode

    rows = [decode(f"1795168800000-{i}", [b"message", b"same text " * 20]) for i in range(2000)]
    LakeWriter(data_dir).commit(rows)
    (path,) = (data_dir / "lake/logs").rglob("*.parquet")
    meta = pq.ParquetFile(path).metadata
    codecs = {meta.row_group(0).column(i).compression for i in range(meta.num_columns)}
    assert codecs == {"SNAPPY"}
    # 2000 messages of 200 bytes: compressed, the file is far smaller than the text alone.
    assert path.stat().st_size < 2000 * 200 / 4


def test_ingest_collects_cycles_on_its_own_schedule_then_gives_the_collector_back(
    env: dict[str, str], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_logs(["gen", "--count", "2000"], env).returncode == 0
    monkeypatch.setattr(consumer_mod, "GC_EVERY", 0.0)
    settings = dataclasses.replace(config.load().settings, read_count=500)
    full_passes = gc.get_stats()[2]["collections"]
    stats = consumer_mod.Consumer(settings, drain=True).run()
    assert stats.ingested == 2000 and len(lake_ids(data_dir)) == 2000
    # Automatic collection is off while ingesting, so these passes are the loop's own.
    assert gc.get_stats()[2]["collections"] > full_passes
    assert gc.isenabled()
    # `logs ingest`'s entry point turns it off earlier (before its imports) and gives it back.
    assert run_logs(["gen", "--count", "500"], env).returncode == 0
    stats = process.run(settings, drain=True, install_signals=False)
    assert stats.ingested == 500 and len(lake_ids(data_dir)) == 2500
    assert gc.isenabled()


def test_a_columnar_decoder_that_loses_entries_is_caught_and_nothing_is_lost(
    env: dict[str, str],
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from ingest.consume import columnar

    assert run_logs(["gen", "--count", "3000", "--shape", "json"], env).returncode == 0
    decode_json = columnar.decode_json

    def loses_every_other_row(ids, docs):  # type: ignore[no-untyped-def]
        table, left = decode_json(ids, docs)
        return table.take(list(range(0, table.num_rows, 2))), left

    monkeypatch.setattr(columnar, "decode_json", loses_every_other_row)
    settings = dataclasses.replace(config.load().settings, read_count=1000)
    stats = consumer_mod.Consumer(settings, drain=True).run()
    assert stats.ingested == 3000 and len(set(lake_ids(data_dir))) == 3000
    assert "columnar decoding failed (_LaneMiscount" in caplog.text


def test_our_own_log_lines_as_json_for_containers(
    env: dict[str, str], redis_proc: RedisProc
) -> None:
    run_logs(["gen", "-n", "10"], env)
    res = run_logs(["--log-format", "json", "ingest", "--drain"], env)
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stderr.decode().splitlines() if line.startswith("{")]
    events = [json.loads(line) for line in lines]
    assert any("committed 10 rows" in e["message"] for e in events)
    assert all({"ts", "level", "logger", "message"} <= e.keys() for e in events)
    quiet = run_logs(["-q", "ingest", "--drain"], env)
    assert b"INFO" not in quiet.stderr
