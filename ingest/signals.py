"""How every long-running command stops: the first SIGINT/SIGTERM asks it to finish what it has
in hand; the second acts at once. `logs ingest`, `logs schedule` and `logs up` each say what
"at once" means for them (by default: exit now, 128 + the signal's number)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable


class StopSignal:
    def __init__(
        self,
        on_first: Callable[[], None] | None = None,
        on_second: Callable[[int], None] | None = None,
    ) -> None:
        self.requested = False
        """A stop was asked for: finish what is in hand, start nothing new."""
        self.event = threading.Event()
        """Set with `requested`, for threads that wait on it."""
        self._on_first = on_first
        self._on_second = on_second

    def install(self) -> StopSignal:
        """Handle SIGINT and SIGTERM from now on (main thread only)."""
        signal.signal(signal.SIGINT, self.handle)
        signal.signal(signal.SIGTERM, self.handle)
        return self

    def handle(self, signum: int = signal.SIGTERM, frame: object = None) -> None:
        if self.requested:
            if self._on_second is not None:
                self._on_second(signum)
            else:
                os._exit(128 + signum)
            return
        self.requested = True
        self.event.set()
        if self._on_first is not None:
            self._on_first()


class Backoff:
    """Waits that double after each failure (from a floor, up to a cap) and end early when a
    stop is asked for."""

    def __init__(self, stop: StopSignal, cap: float) -> None:
        self.stop = stop
        self.cap = cap
        self.current = 0.0

    def next(self, floor: float) -> float:
        """The next wait: twice the last, at least `floor`, at most the cap."""
        self.current = min(self.cap, max(floor, self.current * 2))
        return self.current

    def wait(self, floor: float) -> None:
        self.sleep(self.next(floor))

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early to stop."""
        import time

        deadline = time.monotonic() + seconds
        while not self.stop.requested and time.monotonic() < deadline:
            time.sleep(min(0.1, deadline - time.monotonic()))

    def reset(self) -> None:
        self.current = 0.0
