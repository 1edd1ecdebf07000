"""Entries removed from the stream before the group read them (a producer's `XADD MAXLEN`, an
`XTRIM` or `XDEL` by someone else): loglake cannot prevent that, but it says so.

How a gap is seen:
- Redis 7 counts every entry added to a stream (`entries-added`) and every entry a group has
  read (`entries-read`). Whatever was added, not read, and is no longer in the stream after the
  group's position was removed before delivery: the count is exact. It can be computed cheaply
  when the undelivered entries present are known without counting them: none (the group read
  up to the last entry), or all of them (the stream now starts after the group's position).
- Redis 6.2 keeps no such counters. Ingest keeps the last entry the group read in the stream
  (its trim stops just before it, consume/stream.py), so in normal running the stream starts at
  or before the group's position; a stream that starts after it was trimmed by someone else. How
  many entries went is not known; auto-generated ids give a lower bound (an id `ms-5` means
  entries `ms-0`..`ms-4` existed).
Entries added and removed while nothing watched are counted on Redis 7 at the next check, and
only bounded from below on 6.2.

Gaps ingest has told are recorded in the hash `keys.gaps(stream, group)` (`logs status`
shows them): `entries` (total), `events`, and the last one's `last_entries`, `last_after`,
`last_before`, `last_at` (ms), `last_exact`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ingest import keys

if TYPE_CHECKING:
    import redis

Id = tuple[int, int]
ZERO: Id = (0, 0)


@dataclass(frozen=True)
class Snapshot:
    """The stream and one group at one moment (one MULTI)."""

    length: int
    first: Id | None
    """The first entry's id; None when the stream is empty."""
    last_generated: Id
    entries_added: int | None
    """Redis 7 only."""
    delivered: Id | None
    """The group's last-delivered id; None when the group does not exist."""
    entries_read: int | None
    """Redis 7 only, and only while Redis can tell."""
    lag: int | None
    """Redis 7's own lag figure (wrong after a gap until the counter is corrected)."""
    pending: int = 0
    """The group's entries delivered and not yet acknowledged."""

    @property
    def counted(self) -> bool:
        """Redis 7: the stream counts its entries."""
        return self.entries_added is not None

    def undelivered(self) -> int | None:
        """Entries in the stream after the group's position, when known without counting."""
        if self.delivered is None or self.first is None:
            return self.length if self.delivered is None else 0
        if self.first > self.delivered:
            return self.length
        if self.delivered >= self.last_generated:
            return 0
        return None


@dataclass(frozen=True)
class Gap:
    entries: int
    exact: bool
    """False: a lower bound (Redis 6.2)."""
    after: Id
    """The group's position: the gap lies after it..."""
    before: Id | None
    """...and before this id (the stream's first entry), when known."""

    def describe(self, stream: str, group: str) -> str:
        if self.exact:
            count = f"{self.entries:,}"
        else:
            count = f"at least {self.entries:,}" if self.entries else "an unknown number of"
        where = f"after {fmt(self.after)}"
        if self.before is not None:
            where += f" and before {fmt(self.before)}"
        return (
            f"{count} entries of {stream} were removed before group {group} read them "
            f"({where}; trimmed or deleted by someone else, e.g. XADD MAXLEN)"
        )


def snapshot(client: redis.Redis, stream: str, group: str) -> Snapshot | None:
    """The stream and `group` now; None when the stream does not exist."""
    import redis as redis_lib

    pipe = client.pipeline(transaction=True)
    pipe.execute_command("XINFO", "STREAM", stream)
    pipe.execute_command("XINFO", "GROUPS", stream)
    try:
        info, groups = pipe.execute()
    except redis_lib.ResponseError as exc:
        if "no such key" in str(exc).lower():
            return None
        raise
    s = _pairs(info)
    first = s.get(b"first-entry")
    g = next((gi for gi in map(_pairs, groups) if gi[b"name"] == group.encode()), None)
    return Snapshot(
        length=int(s[b"length"]),
        first=parse_id(first[0]) if first else None,
        last_generated=parse_id(s[b"last-generated-id"]),
        entries_added=_int(s.get(b"entries-added")),
        delivered=parse_id(g[b"last-delivered-id"]) if g else None,
        entries_read=_int(g.get(b"entries-read")) if g else None,
        lag=_int(g.get(b"lag")) if g else None,
        pending=int(g[b"pending"]) if g else 0,
    )


def exact(s: Snapshot) -> Gap | None:
    """Redis 7: the entries removed before delivery, counted (None when it cannot be told now)."""
    if not s.counted or s.delivered is None:
        return None
    read = s.entries_read
    if read is None and s.delivered == ZERO:
        read = 0  # created at 0 and never read: Redis leaves the counter unset
    undelivered = s.undelivered()
    if read is None or undelivered is None:
        return None
    missing = (s.entries_added or 0) - read - undelivered
    if missing <= 0:
        return None
    before = s.first if s.first is not None and s.first > s.delivered else None
    return Gap(missing, True, s.delivered, before)


def bounded(s: Snapshot, told_before: Id | None = None) -> Gap | None:
    """Redis 6.2: the stream starts after the group's position, so it was trimmed past it and
    entries between were never read: at least those auto-generated ids vouch for (maybe 0: the
    number is unknown). `told_before`: the first id when a gap was last told; counted from
    there (that entry, gone now, included)."""
    if s.delivered is None or s.first is None or s.first <= s.delivered:
        return None
    if s.delivered == ZERO:
        return None  # a new group at 0: nothing tells whether the stream ever held more
    after, also = s.delivered, 0
    if told_before is not None and told_before > after:
        if s.first <= told_before:
            return None  # told already
        after, also = told_before, 1
    ms, seq = s.first
    vouched = seq - after[1] - 1 if ms == after[0] else seq
    return Gap(max(vouched, 0) + also, False, after, s.first)


def lag(s: Snapshot, counted_through: int | None = None) -> int | None:
    """Entries in the stream not yet delivered to the group, never counting removed ones: known
    outright, or Redis 7's figure when it is possible, else from `counted_through` (entries at
    or before the group's position, counted by the caller); None when that count is needed."""
    known = s.undelivered()
    if known is not None:
        return known
    if s.lag is not None and s.lag <= s.length:
        return s.lag
    if counted_through is not None:
        return max(0, s.length - counted_through)
    return None


# -- the record ---------------------------------------------------------------------------------


def record(client: redis.Redis, stream: str, group: str, gap: Gap, at_ms: int) -> None:
    key = keys.gaps(stream, group)
    pipe = client.pipeline(transaction=True)
    pipe.hincrby(key, "entries", gap.entries)
    pipe.hincrby(key, "events", 1)
    pipe.hset(
        key,
        mapping={
            "last_entries": gap.entries,
            "last_after": fmt(gap.after),
            "last_before": fmt(gap.before) if gap.before else "",
            "last_at": at_ms,
            "last_exact": int(gap.exact),
        },
    )
    pipe.execute()


def recorded(raw: dict[Any, Any]) -> dict[str, Any]:
    """The record as `logs status` shows it (HGETALL of the key, bytes)."""
    r = {k.decode(): v.decode() for k, v in raw.items()}
    last = None
    if r.get("last_at"):
        last = {
            "entries": int(r["last_entries"]),
            "exact": r.get("last_exact") == "1",
            "after_id": r.get("last_after"),
            "before_id": r.get("last_before") or None,
            "at_ms": int(r["last_at"]),
        }
    return {"entries": int(r.get("entries", 0)), "events": int(r.get("events", 0)), "last": last}


# Redis 7: set the group's read counter past the removed entries, so its lag (and the next
# check) stops counting them; only if nobody read meanwhile (the same position and counter).
CORRECT_COUNTER = """
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
for _, g in ipairs(groups) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  if f['name'] == ARGV[1] then
    if f['last-delivered-id'] == ARGV[2] and tostring(f['entries-read']) == ARGV[3] then
      redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], ARGV[2], 'ENTRIESREAD', ARGV[4])
      return 1
    end
    return 0
  end
end
return 0
"""


def correct_counter(client: redis.Redis, stream: str, group: str, s: Snapshot, gap: Gap) -> bool:
    """True when the counter was corrected (False: someone read meanwhile; checked again)."""
    assert s.delivered is not None
    read = "false" if s.entries_read is None else str(s.entries_read)
    new = (s.entries_read or 0) + gap.entries
    done = client.eval(CORRECT_COUNTER, 1, stream, group, fmt(s.delivered), read, str(new))
    return bool(done)


# -- ids ------------------------------------------------------------------------------------------


def parse_id(raw: bytes | str) -> Id:
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def fmt(entry_id: Id) -> str:
    return f"{entry_id[0]}-{entry_id[1]}"


def _pairs(flat: list[Any]) -> dict[bytes, Any]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
