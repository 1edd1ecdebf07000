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
