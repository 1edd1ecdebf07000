"""Ingest's side of gap detection (the arithmetic is in ingest/gaps.py): check on every
(re)connect, before anything new is read, and with every trim; tell each gap once (a WARNING, a
counter, the record `logs status` shows); on Redis 7, correct the group's read counter so its
lag stops counting entries that no longer exist.
"""

from __future__ import annotations

import logging
import time

from ingest import gaps
from ingest.config import Settings
from ingest.consume.chores import Chores
from ingest.consume.stats import Stats
from ingest.consume.stream import GroupStream

log = logging.getLogger("logs.ingest")


class GapCheck:
    def __init__(
        self, settings: Settings, stream: GroupStream, stats: Stats, chores: Chores
    ) -> None:
        self.settings = settings
        self.stream = stream
        self.stats = stats
        self.chores = chores
        self._told = 0
        """Redis 7, counter not corrected (no permission): entries of the gap already told."""
        self._told_before: gaps.Id | None = None
        """Redis 6.2: the stream's first id when a gap was last told (counted from next time)."""

    def check(self) -> None:
        s, g = self.settings, self.settings.group
        client = self.stream.client()
        snap = gaps.snapshot(client, s.stream, g)
        if snap is None or snap.delivered is None:
            return
        if not snap.counted:
            gap = gaps.bounded(snap, self._told_before)
            if gap is not None:
                self._told_before = gap.before
                self._tell(gap)
            return
        gap = gaps.exact(snap)
        if gap is None:
            self._told = 0
            return
        corrected = [False]

        def correct() -> None:
            corrected[0] = gaps.correct_counter(client, s.stream, g, snap, gap)

        if self.chores.run("correcting the group's read counter after a gap", correct):
            if not corrected[0]:
                return  # read meanwhile: the next check counts again
            self._told = 0
            self._tell(gap)
        elif gap.entries > self._told:
            # The counter stays wrong: tell only what is new since last time.
            new = gap.entries - self._told
            self._told = gap.entries
            self._tell(gaps.Gap(new, True, gap.after, gap.before))

    def _tell(self, gap: gaps.Gap) -> None:
        s = self.settings
        message = gap.describe(s.stream, s.group)
        if not gap.exact:
            message += "; Redis 6.2 cannot count them (Redis 7 can)"
        log.warning("consumer %s: %s", s.consumer, message)
        self.stats.trimmed_before_delivery += gap.entries
        self.stats.gaps += 1
        client = self.stream.client()
        at_ms = int(time.time() * 1000)
        self.chores.run(
            "recording the gap", lambda: gaps.record(client, s.stream, s.group, gap, at_ms)
        )
