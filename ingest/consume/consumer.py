"""`logs ingest`: the loop that drains the stream with a consumer group into the lake, losing
nothing (design §5). It decides what happens when; its collaborators do it: the group's side
of Redis (stream.py), the batch being filled and its decode lanes (intake.py), the commits and
the acknowledgements that follow them (committer.py); its chores (trimming, claiming, dead
letters, gap checks: gapcheck.py) run through chores.py, which lets them fail without stopping
ingest.

The loop is in one of four states, each with one handler:
- recovering, on every (re)connect: acknowledge what is already committed, make sure the group
  exists, check for entries removed before delivery, re-read our own pending list (id 0), claim
  entries idle too long in other consumers;
- reading: read new entries (`>`), commit batches as they fill or age, acknowledge commits
  that landed, check for gaps and trim, claim now and then;
- Redis down: commit what we hold, back off, then recover;
- commit failing: back off and retry the batch (it stays unacknowledged meanwhile).
An entry is acknowledged only after the Delta commit holding its row (or its dead letter).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections.abc import Callable
from enum import StrEnum

import redis

from ingest.config import Settings, mask_url
from ingest.consume.chores import Chores, describe, refused, transient
from ingest.consume.committer import CommitFailed, Committer
from ingest.consume.gapcheck import GapCheck
from ingest.consume.intake import Intake
from ingest.consume.memory import GC_EVERY, pause_gc
from ingest.consume.recovery import Recovery
from ingest.consume.stats import Stats
from ingest.consume.stream import GroupStream
from ingest.errors import RedisRefused
from ingest.formats.registry import from_settings
from ingest.signals import Backoff, StopSignal

__all__ = ["Consumer", "State", "Stats"]

log = logging.getLogger("logs.ingest")

TRIM_EVERY = 5.0
BACKOFF_CAP = 10.0


class State(StrEnum):
    RECOVERING = "recovering"
    READING = "reading"
    REDIS_DOWN = "redis down"
    COMMIT_FAILING = "commit failing"


def stopping() -> None:
    log.info("stopping: finishing the batch in hand (signal again to exit now)")


class Consumer:
    def __init__(
        self,
        settings: Settings,
        *,
        drain: bool = False,
        stop: StopSignal | None = None,
        on_commit: Callable[[Stats], None] | None = None,
    ) -> None:
        self.settings = settings
        self.drain = drain
        """Exit once nothing is pending or undelivered (`logs ingest --drain`)."""
        self.stop = stop or StopSignal(on_first=stopping)
        self.stats = Stats()
        self.stream = GroupStream(settings)
        self.intake = Intake(settings, from_settings(settings), self.stats)
        self.chores = Chores(settings.consumer)
        self.committer = Committer(settings, self.intake, self.stats, self.chores, on_commit)
        self.recovery = Recovery(settings, self.stream, self.intake, self.committer, self.stats)
        self.gaps = GapCheck(settings, self.stream, self.stats, self.chores)
        self.state = State.RECOVERING
        self.backoff = Backoff(self.stop, BACKOFF_CAP)
        self._down_since: float | None = None
        """When Redis became unreachable (None while it answers)."""
        self._last_trim = self._last_gc = 0.0

    @property
    def on_commit(self) -> Callable[[Stats], None] | None:
        return self.committer.on_commit

    @on_commit.setter
    def on_commit(self, callback: Callable[[Stats], None] | None) -> None:
        self.committer.on_commit = callback

    def run(self) -> Stats:

        gc_was_on = pause_gc()
        self._last_gc = time.monotonic()
        handlers: dict[State, Callable[[], bool]] = {
            State.RECOVERING: self._recover,
            State.READING: self._read,
            State.REDIS_DOWN: self._wait_for_redis,
            State.COMMIT_FAILING: self._retry_commit,
        }
        s = self.settings
        log.info("consumer %s: reading %s (group %s)", s.consumer, s.stream, s.group)
        try:
            while not self.stop.requested:
                try:
                    if handlers[self.state]():
                        log.info("consumer %s: drained", s.consumer)
                        break
                except redis.ResponseError as exc:
                    if transient(exc):
                        self._redis_lost(exc)
                    elif "NOGROUP" in str(exc):
                        # The group vanished under us; recovery recreates it and says so loudly.
                        self.committer.commit_now()
                        self.state = State.RECOVERING
                    else:
                        raise refused(
                            "what ingest cannot do without (its group, reads, acknowledgements)",
                            exc,
                            mask_url(self.stream.url or "?"),
                        ) from None
                except CommitFailed as exc:
                    self._commit_failed(exc)
                except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                    self._redis_lost(exc)
        finally:
            self._finish()
            if gc_was_on:
                gc.enable()
        return self.stats

    # -- the states --------------------------------------------------------------------------

    def _recover(self) -> bool:
        self.committer.acknowledge(self.stream)
        self.recovery.ensure_group()
        self.chores.run("checking for gaps", self.gaps.check)  # before anything new is read
        self.recovery.own_pending()
        self._claim()
        # Warmed after recovery, which it would slow down (recovered entries commit at once).
        self.intake.warm()
        if self._down_since is not None:
            log.warning(
                "redis reachable again at %s after %.1f s",
                mask_url(self.stream.url or ""),
                time.monotonic() - self._down_since,
            )
            self._down_since = None
        self.backoff.reset()
        self.state = State.COMMIT_FAILING if self.committer.failures else State.READING
        return False

    def _read(self) -> bool:
        """One round of reading; True once drained (`--drain`)."""
        if self.intake.due(self.stop.requested):
            self._flush()  # a batch whose commit failed is retried before reading on
        if self.committer.in_flight is not None:
            self.committer.collect(wait=False)
            self.committer.acknowledge(self.stream)
        got = self._read_new()
        if self.intake.due(self.stop.requested) or (self.drain and got == 0 and self.intake.batch):
            self._flush()
        elif got == 0 and self.stream.untrimmed and self.committer.in_flight is None:
            # A quiet stream: what the last commit acknowledged is trimmed now, not after the
            # next burst.
            self._trim()
        if time.monotonic() - self.recovery.last_claim > self.settings.claim_idle / 2:
            self._claim()
        if time.monotonic() - self._last_gc > GC_EVERY:
            self._last_gc = time.monotonic()
            gc.collect()
        return self.drain and got == 0 and not self.intake.batch and self._settled()

    def _wait_for_redis(self) -> bool:
        self.stream.drop()
        self.committer.commit_now()
        self.backoff.wait(0.1)
        self.state = State.RECOVERING
        return False

    def _retry_commit(self) -> bool:
        """Commit the batch in hand (nothing new is read meanwhile): success goes back to
        reading (the committer says so once it has landed); failure backs off again."""
        self.committer.commit_now()
        self.committer.acknowledge(self.stream)
        self.backoff.reset()
        self.state = State.READING
        return False

    def _commit_failed(self, exc: CommitFailed) -> None:
        # Failed while recovering or while Redis was down: recover first (a lost connection
        # took the reads sent ahead with it), then retry.
        if self.state in (State.RECOVERING, State.REDIS_DOWN):
            self.state = State.RECOVERING
        else:
            self.state = State.COMMIT_FAILING
        wait = self.backoff.next(0.5)
        log.error(
            "consumer %s: commit of %d rows failed (%s); they stay unacknowledged, retrying "
            "in %.1f s (attempt %d)",
            self.settings.consumer,
            exc.rows,
            exc,
            wait,
            self.committer.failures,
        )
        self.backoff.sleep(wait)

    def _redis_lost(self, exc: Exception) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning(
                "redis unreachable at %s (%s): committing what we hold, retrying with backoff",
                mask_url(self.stream.url or "?"),
                describe(exc) if isinstance(exc, redis.ResponseError) else type(exc).__name__,
            )
        self.stats.reconnects += 1
        self.state = State.REDIS_DOWN

    def start_without_redis(self) -> None:
        """Redis is down as we start: wait for it like for any outage (the caller said so)."""
        self._down_since = time.monotonic()
        self.state = State.REDIS_DOWN

    # -- steps -------------------------------------------------------------------------------

    def _read_new(self) -> int:
        s = self.settings
        if self.stream.reads_ahead:
            entries = self.stream.read_ahead()
        else:
            block: int | None = s.block_ms
            if self.intake.batch:
                # Wake up in time to flush an aging batch of an idle stream.
                left = s.batch_age - (time.monotonic() - self.intake.batch.started)
                block = max(1, min(s.block_ms, int(left * 1000)))
            if self.drain:
                # Nothing new right now is what --drain waits for: ask without blocking (a
                # 100 ms BLOCK here cost every drain 0.1-0.2 s at its end).
                block = None
            entries = self.stream.read(">", self.stream.count, block)
        if len(entries) == s.read_count and not self.stop.requested:
            self.stream.send_ahead()
        self.intake.take(entries, {})
        self.stream.fit_count(self.intake.largest)
        if self.intake.oversized:
            self.committer.acknowledge(self.stream)  # their dead letters now, not with the batch
        return len(entries)

    def _flush(self) -> None:
        """Commit the batch in hand while reading on; acknowledge the batch before it."""
        self.committer.hand_over()
        if self.stop.requested:
            self.committer.collect()
        self.committer.acknowledge(self.stream)
        if time.monotonic() - self._last_trim > TRIM_EVERY:
            self._trim()

    def _trim(self) -> None:
        self._last_trim = time.monotonic()
        self.chores.run("checking for gaps", self.gaps.check)  # before our trim
        self.chores.run("trimming", self.stream.trim)

    def _claim(self) -> None:
        self.recovery.last_claim = time.monotonic()
        self.chores.run("claiming", self.recovery.claim)

    def _settled(self) -> bool:
        """Nothing pending in the group and nothing left to deliver (for --drain)."""
        self.committer.collect()
        if self.committer.has_unacknowledged:
            self.committer.acknowledge(self.stream)
        self.stream.collect_acks()
        if pending := self.stream.pending_count():
            if said := self.chores.failing("dead-lettering"):
                raise RedisRefused(
                    f"{pending} entries stay pending in group {self.settings.group}: Redis "
                    f"refused their dead letters ({said})",
                    hint="README, 'Redis permissions', lists what ingest needs",
                )
            if time.monotonic() - self.recovery.last_claim > 1.0:
                self._claim()
            else:
                time.sleep(0.1)
            return False
        self._trim()
        return True

    def _finish(self) -> None:
        """Commit what we hold and acknowledge it if Redis lets us; otherwise it is redelivered."""

        # The read sent ahead joins the batch in hand (if it fails, those entries wait in our
        # pending list for the next start).
        with contextlib.suppress(redis.RedisError, OSError):
            self.recovery.take_reads_ahead()
        try:
            self.committer.commit_now()
            if self.committer.has_unacknowledged:
                self.committer.acknowledge(self.stream)
            self.stream.collect_acks()
        except CommitFailed as exc:
            log.error(
                "consumer %s: could not commit %d rows (%s): they stay pending and will "
                "be redelivered",
                self.settings.consumer,
                exc.rows,
                exc,
            )
        except (redis.RedisError, OSError) as exc:
            log.warning(
                "could not acknowledge %d committed entries (%s): they will be "
                "redelivered and deduplicated",
                len(self.committer.to_acknowledge),
                type(exc).__name__,
            )
        finally:
            self.stream.drop()
            self.intake.shutdown()
            self.committer.shutdown()
