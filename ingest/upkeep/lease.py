"""What several schedulers must agree on, and what `logs status` reads of them.

The lease: `SET <stream>:scheduler:lease <holder> NX PX ttl` in Redis (ingest/keys.py), renewed
well before it expires, released on exit; only its holder runs jobs.

The state file `state/scheduler.json` (read by `logs status` and the metrics endpoint; copied
to Redis as `<stream>:scheduler:state`, where `logs status` on a host without the file reads it):
- `lease`: `holder` (id of the scheduler running jobs, null once released), `key` (Redis key),
  `ttl_s`, `since` (RFC 3339 UTC when it took the lease).
- `jobs`: job name (present once it ran) -> `last_run` (RFC 3339 UTC start of the last run),
  `outcome` (`ok` or `error`), `duration_s`, `summary` (what it did), `error` (message or
  null), `runs` and `failures` (counts since the state file was created), `next_run` (RFC 3339
  UTC; null once the scheduler stopped: a crashed one leaves it, `logs status` then shows `-`
  as nobody holds the lease).
- `rollup_dirty`: hours (`YYYY-MM-DD/HH`) whose rollups are stale, as of the last job run.
- `updated_at`: RFC 3339 UTC time of the last write.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.lake import layout

if TYPE_CHECKING:
    import redis

STATE_FILE = "scheduler.json"


def state_path(data_dir: Path) -> Path:
    return layout.state_dir(data_dir) / STATE_FILE


# Compare-and-act on our own value only: never renew or delete another scheduler's lease.
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('del', KEYS[1]) else return 0 end"
)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Lease:
    """`SET key holder NX PX ttl`, renewed well before it expires, released on exit."""

    def __init__(self, client: redis.Redis, key: str, holder: str, ttl: float) -> None:
        self.client, self.key, self.holder = client, key, holder
        self.ttl_ms = max(1, int(ttl * 1000))
        self.valid_until = 0.0
        """Monotonic time until which we may act as the holder without hearing from Redis."""

    @property
    def held(self) -> bool:
        return time.monotonic() < self.valid_until

    def try_acquire(self) -> bool:
        asked = time.monotonic()
        if self.client.set(self.key, self.holder, nx=True, px=self.ttl_ms):
            self.valid_until = asked + self.ttl_ms / 1000
            return True
        return self.renew()

    def renew(self) -> bool:
        asked = time.monotonic()
        if self.client.eval(_RENEW, 1, self.key, self.holder, self.ttl_ms):
            self.valid_until = asked + self.ttl_ms / 1000
            return True
        self.valid_until = 0.0
        return False

    def release(self) -> None:
        self.valid_until = 0.0
        self.client.eval(_RELEASE, 1, self.key, self.holder)

    def current_holder(self) -> str | None:
        value = self.client.get(self.key)
        return value.decode() if isinstance(value, bytes) else value


class StateFile:
    """Read-modify-write of state/scheduler.json, atomic and serialised across processes;
    with `mirror` (a Redis client and key) also copied to Redis, where `logs status` on any
    host finds it."""

    def __init__(self, data_dir: Path, mirror: tuple[redis.Redis, str] | None = None) -> None:
        self.path = state_path(data_dir)
        self.mirror = mirror
        self._lock = threading.Lock()

    def update(self, change: Callable[[dict[str, Any]], None]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = json.loads(self.path.read_text())
            except (OSError, ValueError):
                state = {}
            if not isinstance(state, dict):
                state = {}
            state.setdefault("jobs", {})
            change(state)
            state["updated_at"] = iso(datetime.now(UTC))
            tmp = self.path.with_suffix(".tmp")
            text = json.dumps(state, indent=2, sort_keys=True)
            tmp.write_text(text)
            os.replace(tmp, self.path)
            if self.mirror is not None:  # under the lock: copies land in the files' order
                client, key = self.mirror
                with contextlib.suppress(Exception):  # only a report: Redis away, file stays
                    client.set(key, text)
