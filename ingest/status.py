"""What `logs status` and the metrics endpoint report: Redis stream/group/DLQ facts, lake facts
per hour, dirty hours, and the scheduler's last runs. Collecting never raises for an unreachable
Redis or lake: the fact is reported (`reachable: false`) and the caller picks the exit code.

JSON keys of `collect()` (stable; `logs status -F json` prints exactly this):

- `generated_at`: RFC 3339 UTC time of the snapshot.
- `redis`: `url` (password masked), `reachable` (bool), `error` (text or null).
- `stream`: `name`, `length` (XLEN), `first_id`, `last_id` (null when empty); null when Redis
  is unreachable. The stream holds only what ingest has not yet acknowledged and trimmed.
- `group`: `name`, `exists`, `pending` (delivered, not yet acknowledged), `lag` (in the
  stream, not yet delivered to the group; never counting entries removed before delivery),
  `lag_method` (`xinfo`: from Redis 7's counters;
  `xlen-minus-delivered`: XLEN minus the entries at or before the group's last-delivered id,
  counted with XRANGE; `no-group`: the whole stream), `last_delivered_id`, `consumers` (list of
  `name`, `pending`, `idle_ms`); null when Redis is unreachable.
- `dlq`: `name`, `length`; null when Redis is unreachable.
- `gap`: entries removed from the stream by someone else before the group read them
  (ingest/gaps.py): `entries` (total ingest has told, a lower bound where Redis 6.2 could not
  count), `events`, `last` (`entries`, `exact`, `after_id`, `before_id`, `at_ms`; null before
  the first), `unrecorded` (a gap visible now that ingest has not told yet: `entries`, `exact`,
  `after_id`, `before_id`; null when none); null when Redis is unreachable.
- `lake`: `reachable`, `error`, `rows`, `files`, `bytes`, `hours` (partitions in the table),
  `recent_hours` (the newest N partitions, newest last: `hour` as `YYYY-MM-DDTHH`, `rows`,
  `files`, `bytes`, `dirty`, `rollup_dirty`).
- `dirty`: `compaction` (hours whose files may hold duplicates or changed since compaction
  rewrote them), `rollup` (hours whose files changed since their hourly rollup was computed,
  or never rolled up). Lists of `YYYY-MM-DDTHH`, oldest first; both include the open hour.
- `scheduler`: `state_file` (this host's state file when the jobs come from it; null when none
  is here or the scheduler's copy in Redis is newer, e.g. it leads on another host and the jobs
  come from that copy), `lease_holder` (id of the scheduler running jobs, null when none),
  `lease_ttl_ms`, `lease_source` (`redis`, or `state file` when Redis is unreachable), `jobs`
  (list of `name`, `last_run`, `outcome` (`ok` or `error`), `duration_s`, `summary`, `error`,
  `runs`, `failures`, `next_run`; times RFC 3339 UTC).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.config import Settings, mask_url
from ingest.errors import one_line
from ingest.lake import state as lakestate
from ingest.lake.location import Lake, lake_of

if TYPE_CHECKING:
    import redis

RECENT_HOURS = 24
XRANGE_PAGE = 1000


def collect(settings: Settings, recent_hours: int = RECENT_HOURS) -> dict[str, Any]:
    """One snapshot of everything `logs status` shows."""
    facts: dict[str, Any] = {"generated_at": rfc3339_ms(datetime.now(UTC))}
    facts.update(redis_facts(settings))
    lake, compaction, rollup = lake_facts(lake_of(settings), recent_hours)
    facts["lake"] = lake
    facts["dirty"] = {"compaction": compaction, "rollup": rollup}
    facts["scheduler"] = scheduler_facts(settings.data_dir, facts.pop("lease", None))
    return facts


# -- Redis ------------------------------------------------------------------------------------


def redis_facts(settings: Settings) -> dict[str, Any]:
    """`redis`, `stream`, `group`, `dlq` sections; never raises for an unreachable server."""
    import redis as redis_lib

    from ingest.errors import RedisUnavailable
    from ingest.redis_conn import connect, resolve_url

    out: dict[str, Any] = {
        "redis": {"url": settings.masked_redis_url(), "reachable": False, "error": None},
        "stream": None,
        "group": None,
        "dlq": None,
        "gap": None,
    }
    client = None
    try:
        url = resolve_url(settings)
        out["redis"]["url"] = mask_url(url)
        client = connect(url, block_ms=0)
        out.update(stream_facts(client, settings))
        out["redis"]["reachable"] = True
    except RedisUnavailable as exc:
        out["redis"]["error"] = str(exc)
    except (redis_lib.RedisError, OSError) as exc:
        out["redis"]["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        if client is not None:
            client.close()
    return out


def stream_facts(client: redis.Redis, settings: Settings) -> dict[str, Any]:
    """`stream`, `group`, `dlq` sections and the scheduler `lease` (holder, ttl_ms) from a
    connected client (raises on Redis errors)."""
    from ingest import gaps, keys

    pipe = client.pipeline(transaction=True)  # one consistent moment for the counts
    pipe.xlen(settings.stream)
    pipe.xlen(settings.dlq_stream)
    pipe.xrange(settings.stream, count=1)
    pipe.xrevrange(settings.stream, count=1)
    pipe.get(keys.scheduler_lease(settings.stream))
    pipe.pttl(keys.scheduler_lease(settings.stream))
    pipe.get(keys.scheduler_state(settings.stream))
    length, dlq_length, first, last, holder, ttl_ms, recorded = pipe.execute()
    stream = {
        "name": settings.stream,
        "length": length,
        "first_id": first[0][0].decode() if first else None,
        "last_id": last[0][0].decode() if last else None,
    }
    group: dict[str, Any] = {
        "name": settings.group,
        "exists": False,
        "pending": 0,
        "lag": length,
        "lag_method": "no-group",
        "last_delivered_id": None,
        "consumers": [],
    }
    snap = gaps.snapshot(client, settings.stream, settings.group)
    if snap is not None and snap.delivered is not None:
        last_delivered = gaps.fmt(snap.delivered)
        lag = gaps.lag(snap)
        method = "xinfo" if snap.counted else "xlen-minus-delivered"
        if lag is None:
            # Ingest trims what it acknowledged, so the entries at or before last-delivered
            # are few (mostly the pending ones): count those.
            lag = gaps.lag(snap, count_through(client, settings.stream, last_delivered))
            method = "xlen-minus-delivered"
        consumers = [
            {"name": _text(c["name"]), "pending": int(c["pending"]), "idle_ms": int(c["idle"])}
            for c in client.xinfo_consumers(settings.stream, settings.group)
        ]
        group.update(
            exists=True,
            pending=snap.pending,
            lag=int(lag or 0),
            lag_method=method,
            last_delivered_id=last_delivered,
            consumers=consumers,
        )
    gap = gaps.recorded(client.hgetall(keys.gaps(settings.stream, settings.group)))
    unrecorded = None
    if snap is not None:
        unrecorded = gaps.exact(snap) if snap.counted else gaps.bounded(snap)
    gap["unrecorded"] = None if unrecorded is None else gap_json(unrecorded)
    return {
        "stream": stream,
        "group": group,
        "gap": gap,
        "dlq": {"name": settings.dlq_stream, "length": dlq_length},
        "lease": {
            "holder": _text(holder) if holder else None,
            "ttl_ms": ttl_ms if holder and ttl_ms >= 0 else None,
            "state": _text(recorded) if recorded else None,  # the scheduler's copy in Redis
        },
    }


def gap_json(gap: Any) -> dict[str, Any]:
    """A gap not recorded yet, as `gap.unrecorded` shows it."""
    from ingest import gaps

    return {
        "entries": gap.entries,
        "exact": gap.exact,
        "after_id": gaps.fmt(gap.after),
        "before_id": gaps.fmt(gap.before) if gap.before else None,
    }


def count_through(client: redis.Redis, stream: str, last_id: str) -> int:
    """Entries in `stream` with an id <= `last_id` (paged XRANGE)."""
    count = 0
    start = "-"
    while True:
        page: list[Any] = client.xrange(  # type: ignore[assignment]
            stream, min=start, max=last_id, count=XRANGE_PAGE
        )
        count += len(page)
        if len(page) < XRANGE_PAGE:
            return count
        start = "(" + page[-1][0].decode()


# -- lake -------------------------------------------------------------------------------------


def lake_facts(
    data_dir: Path | Lake, recent_hours: int = RECENT_HOURS
) -> tuple[dict[str, Any], list[str], list[str]]:
    """The `lake` section, the hours waiting for compaction and those waiting for rollup."""
    lake: dict[str, Any] = {
        "reachable": True,
        "error": None,
        "rows": 0,
        "files": 0,
        "bytes": 0,
        "hours": 0,
        "recent_hours": [],
    }
    try:
        hours = lakestate.snapshot(data_dir)
    except Exception as exc:  # noqa: BLE001 - a broken or unreadable table is a fact to report
        lake.update(reachable=False, error=one_line(exc))
        return lake, [], []
    from ingest.upkeep.rollup import stale_hours

    compacted = lakestate.compacted_of(hours)
    ordered = sorted(hours.values(), key=lambda h: h.key)
    dirty = {h.key for h in ordered if not lakestate.is_clean(h, compacted)}
    stale = set(stale_hours(data_dir))
    lake.update(
        rows=sum(h.rows for h in ordered),
        files=sum(len(h.files) for h in ordered),
        bytes=sum(h.nbytes for h in ordered),
        hours=len(ordered),
        recent_hours=[
            {
                "hour": hour_name(h),
                "rows": h.rows,
                "files": len(h.files),
                "bytes": h.nbytes,
                "dirty": h.key in dirty,
                "rollup_dirty": h.key in stale,
            }
            for h in ordered[-recent_hours:]
            if recent_hours > 0
        ],
    )
    return (
        lake,
        [hour_name(h) for h in ordered if h.key in dirty],
        [hour_name(h) for h in ordered if h.key in stale],
    )


def hour_name(h: lakestate.HourFiles) -> str:
    return f"{h.date}T{h.hour}"


# -- scheduler --------------------------------------------------------------------------------

JOB_KEYS = ("last_run", "outcome", "duration_s", "summary", "error", "runs", "failures", "next_run")


def scheduler_facts(data_dir: Path, lease: dict[str, Any] | None = None) -> dict[str, Any]:
    """`scheduler` section: jobs from the state file `logs schedule` keeps (its format is in
    ingest/upkeep/lease.py); the lease holder from Redis when `lease`
    (`stream_facts()["lease"]`) is given, else from that file (stale after a crash)."""
    from ingest.upkeep.lease import state_path

    path = state_path(data_dir)
    out: dict[str, Any] = {
        "state_file": None,
        "lease_holder": None,
        "lease_ttl_ms": None,
        "lease_source": None,
        "jobs": [],
    }
    if lease is not None:
        out.update(lease_holder=lease["holder"], lease_ttl_ms=lease["ttl_ms"], lease_source="redis")
    local = _state_of(path.read_text if path.exists() else None)
    shared = _state_of(lambda: (lease or {}).get("state") or "")
    # The lease moves between hosts: show the newer record, this host's file or the copy the
    # leading scheduler (maybe on another host) keeps in Redis.
    if local and (not shared or local.get("updated_at", "") >= shared.get("updated_at", "")):
        raw = local
        out["state_file"] = str(path)
    elif shared:
        raw = shared
    else:
        return out
    recorded = raw.get("lease")
    if lease is None and isinstance(recorded, dict):
        out.update(lease_holder=recorded.get("holder"), lease_source="state file")
    jobs = raw.get("jobs")
    for name, job in sorted(jobs.items() if isinstance(jobs, dict) else []):
        if isinstance(job, dict):
            out["jobs"].append({"name": name, **{key: job.get(key) for key in JOB_KEYS}})
    return out


# -- helpers ----------------------------------------------------------------------------------


def _state_of(read: Callable[[], str] | None) -> dict[str, Any] | None:
    """A scheduler state record (upkeep/lease.py), None when absent or unreadable."""
    try:
        raw = json.loads(read()) if read is not None else None
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def rfc3339_ms(ts: datetime) -> str:
    """`2026-11-20T10:00:00.123Z`: UTC, milliseconds, fixed width."""
    ts = ts.astimezone(UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
