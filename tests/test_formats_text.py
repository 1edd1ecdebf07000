"""Text lines -> rows (design §3): each format built from its spec, with its corner cases, and
both decode lanes held to one answer on every line here (tests/lane_contract.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ingest.consume.columnar import decode_text
from ingest.errors import BadEntry
from ingest.formats.registry import Formats, text_doc
from ingest.records import Row, decode
from tests.lane_contract import assert_contract

# Ingest time of every line here: 2026-12-06T12:00:00Z (year-less times are resolved against it).
NOW_MS = 1796558400000
SID = f"{NOW_MS}-0"


def utc(text: str) -> int:
    """`2026-11-23T10:00:00.5` (UTC unless it says otherwise) -> µs."""
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (
        (dt - datetime(1970, 1, 1, tzinfo=UTC)).days * 86_400_000_000
        + (dt - datetime(1970, 1, 1, tzinfo=UTC)).seconds * 1_000_000
        + dt.microsecond
    )


def row(line: str | bytes, formats: Formats | None = None, sid: str = SID) -> Row:
    raw = line.encode() if isinstance(line, str) else line
    if formats is None:
        return decode(sid, [b"line", raw])
    return decode(sid, [b"line", raw], formats=formats)


def attrs(r: Row) -> dict[str, object]:
    return json.loads(r.attrs)


# (line, ts, level, host, service, message, attrs subset)
CASES: list[tuple[str, str | None, str, str, str, str, dict[str, object]]] = [
    # RFC 5424, with and without PRI, NILVALUEs, structured data, fractional time with offset.
    (
        "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed",
        "2003-10-11T22:14:15.003",
        "FATAL",
        "mymachine.example.com",
        "su",
        "'su root' failed",
        {"_format": "syslog5424", "facility": "auth", "msgid": "ID47"},
    ),
    (
        "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - [exampleSDID@32473"
        ' iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]'
        " %% It's time",
        "2003-08-24T12:14:15.000003",
        "INFO",
        "192.0.2.1",
        "myproc",
        "%% It's time",
        {
            "pid": 8710,
            "facility": "local4",
            "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"},
            "examplePriority@32473": {"class": "high"},
        },
    ),
    (
        "1 2026-11-23T10:00:00Z web1 api - - - started",
        "2026-11-23T10:00:00",
        "INFO",
        "web1",
        "api",
        "started",
        {"_format": "syslog5424"},
    ),
    (
        "<13>1 - - - - - - no time at all",
        None,
        "INFO",
        "unknown",
        "unknown",
        "no time at all",
        {"_format": "syslog5424", "facility": "user"},
    ),
    # RFC 3164: PRI or not, host or not, tag with pid, one-digit day padded with a space.
    (
        "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick",
        "2026-10-11T22:14:15",
        "FATAL",
        "mymachine",
        "su",
        "'su root' failed for lonvick",
        {"_format": "syslog3164", "facility": "auth"},
    ),
    (
        "Jun  4 15:16:01 combo sshd(pam_unix)[19939]: authentication failure",
        "2026-06-04T15:16:01",
        "INFO",
        "combo",
        "sshd(pam_unix)",
        "authentication failure",
        {"pid": 19939},
    ),
    (
        "<30>Dec  6 11:00:00 systemd[1]: Started Session 1.",
        "2026-12-06T11:00:00",
        "INFO",
        "unknown",
        "systemd",
        "Started Session 1.",
        {"pid": 1, "facility": "daemon"},
    ),
    (
        "2026-11-23T10:00:00.123456+01:00 web1 sshd[812]: Accepted publickey for root",
        "2026-11-23T09:00:00.123456",
        "INFO",
        "web1",
        "sshd",
        "Accepted publickey for root",
        {"_format": "syslog3164", "pid": 812},
    ),
    # Access logs (NCSA common and combined, nginx's extras): level from the status.
    (
        '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326',
        "2000-10-10T20:55:36",
        "INFO",
        "unknown",
        "unknown",
        '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326',
        {"_format": "common", "client": "127.0.0.1", "user": "frank", "status": 200, "bytes": 2326},
    ),
    (
        '203.0.113.9 - - [06/Dec/2026:10:00:00 +0000] "POST /v1/pay HTTP/1.1" 502 157 "-"'
        ' "curl/8.5.0" "10.1.1.1" 0.250',
        "2026-12-06T10:00:00",
        "ERROR",
        "unknown",
        "unknown",
        '203.0.113.9 - - [06/Dec/2026:10:00:00 +0000] "POST /v1/pay HTTP/1.1" 502 157 "-"'
        ' "curl/8.5.0" "10.1.1.1" 0.250',
        {
            "_format": "combined",
            "method": "POST",
            "path": "/v1/pay",
            "protocol": "HTTP/1.1",
            "status": 502,
            "bytes": 157,
            "user_agent": "curl/8.5.0",
            "forwarded_for": "10.1.1.1",
            "request_time": 0.25,
        },
    ),
    (
        '::1 - - [06/Dec/2026:10:00:00 +0100] "GET /missing HTTP/2.0" 404 - "https://x/"'
        ' "Mozilla/5.0"',
        "2026-12-06T09:00:00",
        "WARN",
        "unknown",
        "unknown",
        '::1 - - [06/Dec/2026:10:00:00 +0100] "GET /missing HTTP/2.0" 404 - "https://x/"'
        ' "Mozilla/5.0"',
        {"referer": "https://x/", "status": 404},
    ),
    # Error logs.
    (
        "[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6",
        "2005-12-04T04:47:44",
        "ERROR",
        "unknown",
        "unknown",
        "mod_jk child workerEnv in error state 6",
        {"_format": "apache_error"},
    ),
    (
        "[Wed Oct 11 14:32:52.123456 2000] [core:warn] [pid 1234:tid 5678] [client 10.0.0.1:5151]"
        " AH00037: Symbolic link not allowed",
        "2000-10-11T14:32:52.123456",
        "WARN",
        "unknown",
        "unknown",
        "AH00037: Symbolic link not allowed",
        {"module": "core", "pid": 1234, "tid": 5678, "client": "10.0.0.1:5151"},
    ),
    (
        "2026/11/23 10:00:00 [crit] 31#31: *7 connect() failed (111: Connection refused),"
        " client: 1.2.3.4",
        "2026-11-23T10:00:00",
        "FATAL",
        "unknown",
        "unknown",
        "connect() failed (111: Connection refused), client: 1.2.3.4",
        {"_format": "nginx_error", "pid": 31, "connection": 7},
    ),
    # klog: level letter, no year.
    (
        "E1205 23:59:59.999999    1234 reflector.go:138] watch of *v1.Pod ended",
        "2026-12-05T23:59:59.999999",
        "ERROR",
        "unknown",
        "unknown",
        "watch of *v1.Pod ended",
        {"_format": "klog", "tid": 1234, "source": "reflector.go:138"},
    ),
    # Android logcat threadtime.
    (
        "03-17 16:13:38.811  1702  2395 W WindowManager: freezing display",
        "2026-03-17T16:13:38.811",
        "WARN",
        "unknown",
        "WindowManager",
        "freezing display",
        {"_format": "android", "pid": 1702, "tid": 2395},
    ),
    # Ruby's Logger.
    (
        "E, [2026-11-23T10:00:00.123456 #4711] ERROR -- billing: card declined",
        "2026-11-23T10:00:00.123456",
        "ERROR",
        "unknown",
        "billing",
        "card declined",
        {"_format": "ruby", "pid": 4711},
    ),
    # Language defaults and generic "time, level, message".
    (
        "2026-11-23 10:00:00,123 - myapp.db - WARNING - slow query",
        "2026-11-23T10:00:00.123",
        "WARN",
        "unknown",
        "unknown",
        "slow query",
        {"_format": "timestamped", "logger": "myapp.db"},
    ),
    (
        "WARNING:root:deprecated call",
        None,
        "WARN",
        "unknown",
        "unknown",
        "deprecated call",
        {"_format": "python", "logger": "root"},
    ),
    (
        "2026-11-23T10:00:00.123+01:00  INFO 4242 --- [main] c.e.Application : Started",
        "2026-11-23T09:00:00.123",
        "INFO",
        "unknown",
        "unknown",
        "4242 --- [main] c.e.Application : Started",
        {"_format": "timestamped"},
    ),
    (
        "12:00:05.001 [main] ERROR com.example.App - boom",
        "2026-12-06T12:00:05.001",
        "ERROR",
        "unknown",
        "unknown",
        "com.example.App - boom",
        {"thread": "main"},
    ),
    (
        "2009/11/10 23:00:00 Hello from Go",
        "2009-11-10T23:00:00",
        "INFO",
        "unknown",
        "unknown",
        "Hello from Go",
        {"_format": "timestamped"},
    ),
    (
        "17/06/09 20:10:40 ERROR executor.Executor: Exception in task 0.0",
        "2017-06-09T20:10:40",
        "ERROR",
        "unknown",
        "unknown",
        "executor.Executor: Exception in task 0.0",
        {},
    ),
    (
        "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 terminating",
        "2008-11-09T20:36:15",
        "INFO",
        "unknown",
        "unknown",
        "dfs.DataNode$PacketResponder: PacketResponder 1 terminating",
        {"pid": 148},
    ),
    (
        "2015-07-29 17:41:44,747 - WARN  [SendWorker:188978561024:QuorumCnxManager$SendWorker@679]"
        " - Interrupted while waiting",
        "2015-07-29T17:41:44.747",
        "WARN",
        "unknown",
        "unknown",
        "[SendWorker:188978561024:QuorumCnxManager$SendWorker@679] - Interrupted while waiting",
        {},
    ),
    (
        "2016-09-28 04:30:31, Error                 CSI    00000001@2016/9/27:20:30:31 failed",
        "2016-09-28T04:30:31",
        "ERROR",
        "unknown",
        "unknown",
        "CSI    00000001@2016/9/27:20:30:31 failed",
        {},
    ),
    (
        "2026-11-23 10:00:00.123 UTC [1234] FATAL:  password authentication failed",
        "2026-11-23T10:00:00.123",
        "FATAL",
        "unknown",
        "unknown",
        "password authentication failed",
        {"thread": "1234"},
    ),
    (
        "[2026-11-23T10:00:00,5][ERROR][o.e.b.Bootstrap] [node-1] node validation exception",
        "2026-11-23T10:00:00.5",
        "ERROR",
        "unknown",
        "unknown",
        "[o.e.b.Bootstrap] [node-1] node validation exception",
        {},
    ),
    (
        "1795168800.25 sensor reading ok",
        "2026-11-20T10:00:00.25",
        "INFO",
        "unknown",
        "unknown",
        "sensor reading ok",
        {"_format": "timestamped"},
    ),
    # Supercomputer logs (CFDR): the epoch is the UTC time; the wall time later is local.
    (
        "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11"
        " RAS KERNEL FATAL data TLB error interrupt",
        "2005-06-03T22:42:50",
        "FATAL",
        "R02-M1-N0-C:J12-U11",
        "unknown",
        "data TLB error interrupt",
        {"_format": "bgl", "kind": "RAS", "facility": "KERNEL"},
    ),
    (
        "- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]: closed",
        "2005-11-09T20:01:01",
        "INFO",
        "dn228",
        "unknown",
        "Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]: closed",
        {"_format": "cfdr"},
    ),
    (
        "460372 node-246 unix.hw state_change.unavailable 1077804742 1 Component State Change",
        "2004-02-26T14:12:22",
        "INFO",
        "node-246",
        "unix.hw",
        "Component State Change",
        {"_format": "hpc", "state": "state_change.unavailable"},
    ),
    (
        "20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579",
        "2017-12-23T22:15:29.606",
        "INFO",
        "unknown",
        "Step_LSC",
        "onStandStepChanged 3579",
        {"_format": "pipes", "pid": 30002312},
    ),
    (
        "[10.30 16:49:06] chrome.exe - proxy.example.org:5070 open through proxy",
        "2026-10-30T16:49:06",
        "INFO",
        "unknown",
        "chrome.exe",
        "proxy.example.org:5070 open through proxy",
        {"_format": "proxifier"},
    ),
    # logfmt: every pair, quoted values, numbers and booleans typed.
    (
        'time="2026-11-23T10:00:00Z" level=warning msg="disk almost full" pct=91.5 n=3 ok=true'
        " host=web1 path=/var",
        "2026-11-23T10:00:00",
        "WARN",
        "web1",
        "unknown",
        "disk almost full",
        {"_format": "logfmt", "pct": 91.5, "n": 3, "ok": True, "path": "/var"},
    ),
    # CRI: the runtime's header, the payload read again.
    (
        '2026-11-23T10:00:00.123456789Z stderr F {"level":"error","msg":"boom","app":"pay"}',
        "2026-11-23T10:00:00.123456",
        "ERROR",
        "unknown",
        "pay",
        "boom",
        {"_format": "cri/json", "stream": "stderr"},
    ),
    (
        "2026-11-23T10:00:00.5Z stdout F 2026-11-23 09:59:59,000 INFO [main] ready",
        "2026-11-23T09:59:59",
        "INFO",
        "unknown",
        "unknown",
        "[main] ready",
        {"_format": "cri/timestamped", "stream": "stdout"},
    ),
    # Nothing known: the line is the message, its time the arrival time.
    ("just a plain line", None, "INFO", "unknown", "unknown", "just a plain line", {}),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0][:40] for c in CASES])
def test_format(case: tuple[str, str | None, str, str, str, str, dict[str, object]]) -> None:
    line, ts, level, host, service, message, subset = case
    r = row(line)
    assert r.ts == (utc(ts) if ts else NOW_MS * 1000)
    assert (r.level, r.host, r.service, r.message) == (level, host, service, message)
    got = attrs(r)
    assert {k: got.get(k) for k in subset} == subset
    if ts is None:
        assert got["_ts_source"] == "stream_id"
    else:
        assert "_ts_source" not in got


def test_both_lanes_agree_on_every_case_and_take_most() -> None:
    lines = [c[0].encode() for c in CASES] + [c.encode() for c in CORNERS]
    ids = [f"{NOW_MS + i}-0".encode() for i in range(len(lines))]
    for formats in (Formats(), Formats(timezone="Europe/Berlin")):
        table, left = decode_text(ids, lines, formats)
        taken = assert_contract(table, left, ids, [[b"line", raw] for raw in lines], formats)
        assert taken >= len(lines) * 0.7


CORNERS = [
    # Year rollover: read on Dec 6, Dec 7 is this year (within a day), Dec 8 last year.
    "Dec  7 11:00:00 h app: tomorrow by the clock",
    "Dec  8 12:00:00 h app: two days ahead: last year",
    "Feb 29 10:00:00 h app: a leap day without a year",
    "2026-03-29 02:30:00 skipped by Berlin's clocks",
    "2026-10-25 02:30:00 twice in Berlin",
    "2026-11-23 23:59:60 a leap second",
    "2026-02-30 10:00:00 no such day",
    "2026-11-23 10:00:00,123456789 WARN nine fraction digits",
    "00/01/02 03:04:05 INFO two-digit year 2000",
    "99/01/02 03:04:05 INFO two-digit year 1999",
    "Dec  6 11:00:00 ",
    "Mon Dec  6 a line that merely looks like a header",
    "<999>1 2026-11-23T10:00:00Z not a PRI",
    "2026-11-23T10:00:00+25:00 an offset beyond a day",
    "key=value",
    "a=1 b=2 trailing words",
    "   ",
    "",
]


def test_year_rollover_and_leap_days() -> None:
    assert row(CORNERS[0]).ts == utc("2026-12-07T11:00:00")
    assert row(CORNERS[1]).ts == utc("2025-12-08T12:00:00")
    assert row(CORNERS[2]).ts == utc("2024-02-29T10:00:00")
    new_year = f"{1798761600000 + 3_600_000}-0"  # 2027-01-01T01:00:00Z
    assert row("Dec 31 23:59:59 h app: last year's", sid=new_year).ts == utc("2026-12-31T23:59:59")
    assert row("Jan  1 00:30:00 h app: this year's", sid=new_year).ts == utc("2027-01-01T00:30:00")


def test_naive_times_in_a_named_zone_across_dst() -> None:
    berlin = Formats(timezone="Europe/Berlin")
    assert row("2026-07-01 12:00:00 summer", berlin).ts == utc("2026-07-01T10:00:00")
    assert row("2026-01-01 12:00:00 winter", berlin).ts == utc("2026-01-01T11:00:00")
    # Clocks go back: 02:30 happens twice; the earlier one (still summer time) is taken.
    assert row(CORNERS[4], berlin).ts == utc("2026-10-25T00:30:00")
    # Clocks go forward: 02:30 never happens; it is read with the offset before the change.
    assert row(CORNERS[3], berlin).ts == utc("2026-03-29T01:30:00")
    # An offset in the line wins over the setting.
    assert row("2026-07-01T12:00:00Z zoned", berlin).ts == utc("2026-07-01T12:00:00")
    new_york = Formats(timezone="America/New_York")
    assert row("Mar  8 02:30:00 h app: skipped in New York", new_york).ts == utc(
        "2026-03-08T07:30:00"
    )


def test_fractions_leap_seconds_two_digit_years_bad_dates() -> None:
    assert row(CORNERS[5]).ts == utc("2026-11-23T23:59:59")
    nine = row(CORNERS[7])
    assert (nine.ts, nine.level) == (utc("2026-11-23T10:00:00.123456"), "WARN")
    assert row(CORNERS[8]).ts == utc("2000-01-02T03:04:05")
    assert row(CORNERS[9]).ts == utc("1999-01-02T03:04:05")
    bad = row(CORNERS[6])
    assert bad.ts == NOW_MS * 1000 and bad.message == CORNERS[6]
    assert row(CORNERS[13]).message == CORNERS[13]  # no such offset: not a time


def test_lines_that_merely_look_like_a_header_stay_messages() -> None:
    for line in (CORNERS[11], CORNERS[14], CORNERS[15]):
        r = row(line)
        assert (r.message, r.ts) == (line, NOW_MS * 1000), line
    # A PRI out of range is no syslog header; the time after it is still a time.
    bad_pri = row(CORNERS[12])
    assert attrs(bad_pri)["_format"] == "timestamped" and bad_pri.level == "INFO"


def test_empty_and_whitespace_lines() -> None:
    assert row("").message == ""
    assert row("   ").message == "   "
    assert row(CORNERS[10]).host == "unknown"


def test_crlf_bom_and_ansi_are_cleaned() -> None:
    r = row(b"\xef\xbb\xbf2026-11-23 10:00:00 \x1b[31mERROR\x1b[0m red alert\r\n")
    assert (r.ts, r.level, r.message) == (utc("2026-11-23T10:00:00"), "ERROR", "red alert")
    bom_json = decode(SID, [b"data", b'\xef\xbb\xbf{"msg": "json after a BOM", "level": "warn"}'])
    assert (bom_json.message, bom_json.level) == ("json after a BOM", "WARN")


def test_latin1_bytes_are_a_dead_letter_not_a_replacement() -> None:
    with pytest.raises(BadEntry, match="invalid UTF-8"):
        row("café".encode("latin-1"))


def test_a_lone_field_named_for_a_column_is_that_column() -> None:
    r = decode(SID, [b"level", b"error"])
    assert (r.level, r.message) == ("ERROR", "")


def test_the_ingest_time_is_the_stream_id_so_replays_agree() -> None:
    assert text_doc("Dec  8 12:00:00 h app: x", NOW_MS * 1000)["ts"].startswith("2025-")


def test_send_reads_a_batch_as_it_reads_a_line() -> None:
    """`logs send` reads lines a batch at a time (textlane.read_docs) and the rest one by one
    (registry.text_doc): the entries it sends become the same rows either way."""
    import orjson

    from ingest.formats.textlane import read_docs
    from ingest.records import decode_rows

    lines = [c[0] for c in CASES] + CORNERS
    now_us = NOW_MS * 1000
    for formats, defaults in ((Formats(), {}), (Formats(timezone="Europe/Berlin"), {"host": "h"})):
        batch = read_docs(lines, now_us, formats, defaults)
        assert sum(doc is not None for doc in batch) >= len(lines) * 0.6
        for line, doc in zip(lines, batch, strict=True):
            if doc is None:
                continue
            one = text_doc(line, now_us, formats)
            for column, value in defaults.items():
                one.setdefault(column, value)
            got = decode_rows(SID, [b"data", doc.encode()], formats=formats)
            want = decode_rows(SID, [b"data", orjson.dumps(one)], formats=formats)
            assert got == want, line


def test_a_formats_first_characters_cover_every_line_it_takes() -> None:
    """The columnar lane skips formats by the first characters of a batch's lines: the set
    each format claims must hold the first character of every line its pattern matches."""
    from ingest.formats.builtin import BUILTIN

    lines = [c[0] for c in CASES] + CORNERS
    for fmt in BUILTIN:
        if fmt.first_chars is None:
            continue
        for line in lines:
            if fmt.compiled.match(line):
                assert line[:1] in fmt.first_chars, (fmt.name, line)
