"""`logs schedule`: compaction, rollups, retention and maintenance on APScheduler triggers, run
only by the scheduler holding a Redis lease; the others stand by and take over when it expires.

Jobs (intervals and times from Settings): `compact` every compact_interval s (dirty closed
hours, then the hourly rollups of closed hours), `rollup_hourly` at rollup_minute past every hour
(every ended hour), `nightly` at nightly_at UTC (daily rollups of ended days, then retention),
`maintain` every maintain_interval s (vacuum, checkpoints, log cleanup). Every job derives its
work from the lake, so a run that fails or is skipped is simply redone by the next one.

What a scheduler holds and did is kept where `logs status` reads it: upkeep/lease.py.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest import keys
from ingest.config import Settings
from ingest.lake.location import Lake, lake_of
from ingest.signals import StopSignal
from ingest.upkeep.lease import Lease, StateFile, iso

log = logging.getLogger("logs.scheduler")

STOP_WAIT = 5.0
"""Seconds SIGTERM waits for a running job before the process exits anyway (every commit is
atomic, so an interrupted job leaves nothing half-done: the next run redoes its work)."""


@dataclass
class StopResult:
    runs: int
    job_still_running: bool
    """A job ignored the stop request within STOP_WAIT: the caller should exit right away."""


class Jobs:
    """The job bodies: each returns its one-line summary; `run` wraps one with the lease check,
    timing, the log line and the state record, and never lets an error escape."""

    def __init__(
        self, settings: Settings, lease: Lease, state: StateFile, stop: threading.Event
    ) -> None:
        self.s, self.lease, self.state, self.stop = settings, lease, state, stop
        self.runs = 0
        self.running: str | None = None

    def compact(self) -> str:
        from ingest.upkeep import compact, rollup

        s = self.s
        report = compact.compact(
            lake_of(s),
            target_file_size=s.target_file_size,
            grace=s.compact_grace,
            should_stop=self.stop.is_set,
        )
        if self.stop.is_set():
            return report.summary()
        ended = datetime.now(UTC) - timedelta(seconds=s.compact_grace)
        rolled = rollup.rollup(
            lake_of(s), daily=False, ended_before=ended, retention_days=s.retention_days
        )
        return f"{report.summary()}; rollups: {len(rolled.hours)} hours"

    def rollup_hourly(self) -> str:
        from ingest.upkeep import rollup

        report = rollup.rollup(
            lake_of(self.s),
            daily=False,
            ended_before=rollup.ended_hours_before(),
            retention_days=self.s.retention_days,
        )
        return report.summary()

    def nightly(self) -> str:
        from ingest.upkeep import maintain, rollup

        s = self.s
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        rolled = rollup.rollup(lake_of(s), ended_before=today, retention_days=s.retention_days)
        kept = maintain.maintain(
            lake_of(s),
            retention_days=s.retention_days,
            rollup_retention_days=s.rollup_retention_days,
            vacuum_retention_hours=s.vacuum_retention_hours,
            vacuum=False,
        )
        return f"{rolled.summary()}; {kept.summary()}"

    def maintain(self) -> str:
        from ingest.upkeep import maintain

        s = self.s
        report = maintain.maintain(
            lake_of(s),
            retention_days=s.retention_days,
            rollup_retention_days=s.rollup_retention_days,
            vacuum_retention_hours=s.vacuum_retention_hours,
            retention=False,
        )
        return report.summary()

    def run(self, name: str, body: Callable[[], str]) -> None:
        if not self.lease.held or self.stop.is_set():
            log.info("job %s: skipped, this scheduler does not hold the lease", name)
            return
        started_at = datetime.now(UTC)
        started = time.monotonic()
        self.running = name
        error: str | None = None
        summary = ""
        try:
            summary = body()
        except Exception as exc:  # a failing job never kills the scheduler
            error = _scrubbed(f"{type(exc).__name__}: {exc}".splitlines()[0], self.s)
        finally:
            self.running = None
        took = time.monotonic() - started
        self.runs += 1
        if error is None:
            log.info("job %s: %s in %.1f s", name, summary, took)
        else:
            log.error("job %s: failed after %.1f s: %s (retried next run)", name, took, error)
        dirty = _rollup_dirty(lake_of(self.s))

        def record(state: dict[str, Any]) -> None:
            job = state["jobs"].setdefault(name, {"runs": 0, "failures": 0})
            job.update(
                last_run=iso(started_at),
                outcome="ok" if error is None else "error",
                duration_s=round(took, 3),
                summary=summary,
                error=error,
                runs=int(job.get("runs", 0)) + 1,
                failures=int(job.get("failures", 0)) + (error is not None),
            )
            if dirty is not None:
                state["rollup_dirty"] = dirty

        self.state.update(record)


def _scrubbed(text: str, settings: Settings) -> str:
    """A job's error as it may be logged and kept (in Redis too): no storage secret, no
    Redis password."""
    from urllib.parse import urlsplit

    from ingest.lake.errors import scrub

    text = scrub(text, lake_of(settings))
    try:
        password = urlsplit(settings.redis_url or "").password
    except ValueError:
        password = None
    return text.replace(password, "***") if password else text


def _rollup_dirty(lake: Lake) -> list[str] | None:
    from ingest.upkeep import rollup_state

    try:
        return rollup_state.stale_hours(lake)
    except Exception:  # only a report: never fail a job over it
        return None


def run(settings: Settings, install_signals: bool = True) -> StopResult:
    """Run until SIGTERM/SIGINT (or a second one: at once). Returns what it did."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    from ingest.redis_conn import connect, resolve_url

    client = connect(resolve_url(settings))
    holder = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
    lease = Lease(client, keys.scheduler_lease(settings.stream), holder, settings.lease_ttl)
    state = StateFile(settings.data_dir, (client, keys.scheduler_state(settings.stream)))
    force = threading.Event()
    stop_signal = StopSignal(on_second=lambda signum: force.set())
    stop = stop_signal.event
    if install_signals:
        stop_signal.install()
    jobs = Jobs(settings, lease, state, stop)
    _route_apscheduler_logs()

    hour, minute = _nightly(settings.nightly_at)
    # One worker: jobs run one at a time, so memory stays that of one job, and a job that is
    # still running when its next turn comes is coalesced instead of piling up.
    sched = BackgroundScheduler(
        timezone=UTC,
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={"coalesce": True, "max_instances": 1},
    )
    plan: list[tuple[str, Any, float]] = [
        (
            "compact",
            IntervalTrigger(seconds=settings.compact_interval),
            max(60.0, settings.compact_interval),
        ),
        ("rollup_hourly", CronTrigger(minute=settings.rollup_minute), 1800.0),
        ("nightly", CronTrigger(hour=hour, minute=minute), 6 * 3600.0),
        (
            "maintain",
            IntervalTrigger(seconds=settings.maintain_interval),
            max(60.0, settings.maintain_interval),
        ),
    ]
    for name, trigger, grace in plan:
        sched.add_job(
            jobs.run,
            trigger,
            args=[name, getattr(jobs, name)],
            id=name,
            name=name,
            misfire_grace_time=int(grace),
        )
    sched.start(paused=True)
    renew_every = max(0.2, settings.lease_ttl / 3)
    leading = False
    upcoming: dict[str, str | None] = {}
    log.info(
        "scheduler %s: standing by for lease %s (ttl %.0f s)", holder, lease.key, settings.lease_ttl
    )
    try:
        while not stop.is_set():
            try:
                got = lease.renew() if leading else lease.try_acquire()
            except Exception as exc:  # Redis unreachable: act only while the lease surely holds
                got = lease.held
                log.warning(
                    "scheduler %s: lease check failed (%s)", holder, str(exc).splitlines()[0]
                )
            if got and not leading:
                leading = True
                _lead(sched, plan, state, lease, holder, settings)
                log.info("scheduler %s: took the lease, running jobs", holder)
            elif not got and leading:
                leading = False
                sched.pause()
                log.warning("scheduler %s: lost the lease, standing by", holder)
            if leading:
                upcoming = _record_next_runs(sched, state, upcoming)
            stop.wait(renew_every)
    finally:
        sched.shutdown(wait=False)
        deadline = time.monotonic() + STOP_WAIT
        while jobs.running and not force.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        still = jobs.running is not None
        if leading:
            # Recorded before the lease goes: a standby that takes it then records its own.
            state.update(_stopped)
            try:
                lease.release()
            except Exception as exc:  # the lease then simply expires
                log.warning("scheduler %s: could not release the lease: %s", holder, exc)
        log.info(
            "scheduler %s: stopped%s",
            holder,
            f" while job {jobs.running} was still running" if still else "",
        )
        client.close()
    return StopResult(jobs.runs, still)


def _lead(
    sched: Any,
    plan: list[tuple[str, Any, float]],
    state: StateFile,
    lease: Lease,
    holder: str,
    settings: Settings,
) -> None:
    """On taking the lease, run every job once now (they are cheap when nothing is dirty and
    catch up on whatever the previous holder left), then on their triggers."""
    now = datetime.now(UTC)
    for name, _, _ in plan:
        sched.modify_job(name, next_run_time=now)
    state.update(
        lambda st: st.update(
            lease={
                "holder": holder,
                "key": lease.key,
                "ttl_s": settings.lease_ttl,
                "since": iso(now),
            }
        )
    )
    sched.resume()


def _record_next_runs(
    sched: Any, state: StateFile, known: dict[str, str | None]
) -> dict[str, str | None]:
    """Keep `next_run` of the jobs on record current. A job appears on record once it has run,
    so what is returned is what got recorded: a job not there yet is tried again next time."""
    upcoming = {job.id: iso(job.next_run_time) for job in sched.get_jobs()}
    if upcoming == known:
        return known
    recorded: dict[str, str | None] = {}

    def change(st: dict[str, Any]) -> None:
        for name, when in upcoming.items():
            if name in st["jobs"]:
                st["jobs"][name]["next_run"] = recorded[name] = when

    state.update(change)
    return recorded


def _stopped(state: dict[str, Any]) -> None:
    """Nobody runs jobs now: no holder, and no next runs (`logs status` would show a time that
    goes by with nothing happening)."""
    state["lease"] = {**state.get("lease", {}), "holder": None}
    for job in state["jobs"].values():
        job["next_run"] = None


def _nightly(text: str) -> tuple[int, int]:
    from ingest.errors import ConfigError

    try:
        hour, minute = (int(part) for part in text.split(":"))
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise ValueError(text)
    except ValueError:
        raise ConfigError(f"nightly_at must be HH:MM (UTC), got {text!r}") from None
    return hour, minute


def _route_apscheduler_logs() -> None:
    """APScheduler's own warnings (misfires, skipped overlaps) through our handler."""
    ours = logging.getLogger("logs")
    aps = logging.getLogger("apscheduler")
    aps.handlers[:] = list(ours.handlers)
    aps.setLevel(logging.WARNING)
    aps.propagate = False
