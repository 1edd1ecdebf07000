"""`logs status` as a table: the facts status.py collects, laid out for a terminal. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


def render_table(facts: dict[str, Any], out: IO[str]) -> None:
    """Human-readable `logs status`: one block per section."""
    w = out.write
    r = facts["redis"]
    w(f"redis      {r['url']}  {'reachable' if r['reachable'] else 'UNREACHABLE'}\n")
    if r["error"]:
        w(f"           {r['error']}\n")
    s, g, d = facts["stream"], facts["group"], facts["dlq"]
    if s is not None:
        span = f"  ({s['first_id']} .. {s['last_id']})" if s["length"] else ""
        w(f"stream     {s['name']}  {s['length']:,} entries{span}\n")
    if g is not None:
        if g["exists"]:
            w(
                f"group      {g['name']}  lag {g['lag']:,} ({g['lag_method']})  pending "
                f"{g['pending']:,}  last delivered {g['last_delivered_id']}\n"
            )
        else:
            w(f"group      {g['name']}  not created yet (ingest creates it): lag {g['lag']:,}\n")
        rows = [(c["name"], f"{c['pending']:,}", _idle(c["idle_ms"])) for c in g["consumers"]]
        _table(out, "consumers", ("NAME", "PENDING", "IDLE"), rows, "no consumers")
    if d is not None:
        w(
            f"dlq        {d['name']}  {d['length']:,} dead letters"
            f"{'  (`logs dlq list`)' if d['length'] else ''}\n"
        )
    if facts.get("gap") is not None:
        w(f"gap        {gap_line(facts['gap'])}\n")
    lake = facts["lake"]
    if not lake["reachable"]:
        w(f"lake       UNREACHABLE  {lake['error']}\n")
    else:
        w(
            f"lake       {lake['rows']:,} rows in {lake['files']:,} files, "
            f"{human_size(lake['bytes'])}, {lake['hours']:,} hours\n"
        )
        hours = [
            (
                h["hour"],
                f"{h['rows']:,}",
                f"{h['files']:,}",
                human_size(h["bytes"]),
                "yes" if h["dirty"] else "",
                "yes" if h["rollup_dirty"] else "",
            )
            for h in lake["recent_hours"]
        ]
        _table(
            out,
            "hours",
            ("HOUR", "ROWS", "FILES", "BYTES", "TO COMPACT", "TO ROLL UP"),
            hours,
            "no data yet",
        )
    dirty = facts["dirty"]
    comp = dirty["compaction"]
    w(f"dirty      compaction: {len(comp)} hours{_list(comp)}\n")
    w(f"           rollup: {len(dirty['rollup'])} hours{_list(dirty['rollup'])}\n")
    sched = facts["scheduler"]
    holder = sched["lease_holder"]
    lease = "not running (nobody holds the lease)" if holder is None else f"lease held by {holder}"
    if holder is not None and sched["lease_ttl_ms"] is not None:
        lease += f" (expires in {sched['lease_ttl_ms'] / 1000:.0f}s unless renewed)"
    elif holder is not None and sched["lease_source"] == "state file":
        lease += " (as last recorded: Redis cannot say)"
    if sched["state_file"] is None:
        w(f"scheduler  no scheduler runs recorded; {lease}\n")
        return
    w(f"scheduler  {lease}\n")
    jobs = [
        (
            j["name"],
            str(j["last_run"] or "never"),
            str(j["outcome"] or ""),
            "" if j["duration_s"] is None else f"{float(j['duration_s']):.1f}s",
            f"{j['runs'] or 0}/{j['failures'] or 0}",
            _next_run(j["next_run"], sched, facts["generated_at"]),
            str(j["error"] or j["summary"] or ""),
        )
        for j in sched["jobs"]
    ]
    _table(
        out,
        "jobs",
        ("JOB", "LAST RUN", "OUTCOME", "TOOK", "RUNS/FAILED", "NEXT RUN", "RESULT"),
        jobs,
        "no runs yet",
    )


def _next_run(when: str | None, sched: dict[str, Any], now: str) -> str:
    """A job's next run as far as anyone can tell: `-` when no scheduler will run it (nobody
    holds the lease, or the time went by with only the state file to go on); `due` when the
    lease holder is about to run it (or is running it)."""
    if when is None or sched["lease_holder"] is None:
        return "-"
    if datetime.fromisoformat(when) > datetime.fromisoformat(now):
        return when
    return "due" if sched["lease_source"] == "redis" else "-"


def _table(
    out: IO[str], label: str, header: Sequence[str], rows: Sequence[Sequence[str]], empty: str
) -> None:
    if not rows:
        out.write(f"{label:<10} {empty}\n")
        return
    for i, line in enumerate(table_lines(header, rows)):
        out.write(f"{label if i == 0 else '':<10} {line}\n")


def table_lines(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, header first."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    return [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]


def _list(hours: list[str], shown: int = 6) -> str:
    if not hours:
        return ""
    more = f", +{len(hours) - shown} more" if len(hours) > shown else ""
    return f" ({', '.join(hours[:shown])}{more})"


def _idle(ms: int) -> str:
    seconds = ms / 1000
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def human_size(n: int) -> str:
    """Bytes in 1024-based units, named so: 3.2 KiB."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def gap_line(gap: dict[str, Any]) -> str:
    """Entries removed before the group read them: told by ingest, or visible now."""
    parts = []
    if gap["events"]:
        last = gap["last"]
        parts.append(
            f"{gap['entries']:,} entries removed before the group read them "
            f"({gap['events']:,} times; last {_gap(last)}, "
            f"{_when(last['at_ms'])})"
        )
    if gap["unrecorded"]:
        parts.append(f"not yet told by ingest: {_gap(gap['unrecorded'])}")
    return "; ".join(parts) or "none detected"


def _gap(g: dict[str, Any]) -> str:
    if g["exact"]:
        count = f"{g['entries']:,}"
    else:
        count = f"at least {g['entries']:,}" if g["entries"] else "an unknown number"
    where = f"after {g['after_id']}" + (f" before {g['before_id']}" if g["before_id"] else "")
    return f"{count} {where}"


def _when(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
