"""Run child processes (ingest consumers, the scheduler) and keep them running.

A child that exits unexpectedly is restarted with capped exponential backoff; stopping sends
SIGTERM to every child (each finishes and commits its batch in hand), then SIGKILL to any that
outlives the grace period. One log line per state change.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ingest.signals import StopSignal

log = logging.getLogger("logs.up")

BACKOFF_START = 1.0
BACKOFF_CAP = 30.0
HEALTHY_AFTER = 60.0
"""A child that ran this long before exiting restarts with the backoff reset."""


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = BACKOFF_START
    restart_at: float | None = None
    history: list[int] = field(default_factory=list)
    """Exit codes of past runs."""


class Supervisor:
    def __init__(self, children: dict[str, list[str]], env: dict[str, str] | None = None) -> None:
        self.children = [Child(name, argv) for name, argv in children.items()]
        self.env = env
        self.stop = StopSignal(on_second=self._stop_now)
        """Ctrl-C or SIGTERM: stop the children gracefully; a second one: at once."""

    def _start(self, child: Child) -> None:
        child.proc = subprocess.Popen(child.argv, env=self.env, stdin=subprocess.DEVNULL)
        child.started_at = time.monotonic()
        child.restart_at = None
        log.info("up: started %s (pid %d)", child.name, child.proc.pid)

    @property
    def stopping(self) -> bool:
        return self.stop.requested

    def _stop_now(self, signum: int) -> None:
        # Second Ctrl-C: stop now. Children's unacknowledged entries are redelivered.
        for child in self.children:
            if child.proc and child.proc.poll() is None:
                child.proc.kill()
        os._exit(130)

    def run(self, poll: float = 0.2, on_tick: Callable[[], None] | None = None) -> int:
        for child in self.children:
            self._start(child)
        try:
            while not self.stopping:
                now = time.monotonic()
                for child in self.children:
                    self._check(child, now)
                if on_tick:
                    on_tick()
                time.sleep(poll)
        finally:
            self._stop_all()
        return 0

    def _check(self, child: Child, now: float) -> None:
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.restarts += 1
                self._start(child)
            return
        assert child.proc is not None
        code = child.proc.poll()
        if code is None:
            return
        child.history.append(code)
        if now - child.started_at > HEALTHY_AFTER:
            child.backoff = BACKOFF_START
        log.warning(
            "up: %s exited with %s; restarting in %.0f s",
            child.name,
            _describe(code),
            child.backoff,
        )
        child.restart_at = now + child.backoff
        child.backoff = min(BACKOFF_CAP, child.backoff * 2)

    def _stop_all(self, grace: float = 20.0) -> None:
        running = [c for c in self.children if c.proc and c.proc.poll() is None]
        for child in running:
            assert child.proc is not None
            child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in running:
            assert child.proc is not None
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("up: %s did not stop within %.0f s; killing it", child.name, grace)
                child.proc.kill()
                child.proc.wait()
            log.info("up: stopped %s", child.name)


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"
