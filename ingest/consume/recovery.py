"""What a consumer does on every (re)connect before it reads new entries: make sure the group
exists, take in the reads sent ahead, re-read its own pending list (entries read before a crash
or a Redis error), and claim entries stuck in dead or stalled consumers. Each page re-read or
claimed is committed and acknowledged before the next is read.
"""

from __future__ import annotations

import logging
import socket
import time

from ingest.config import Settings
from ingest.consume.committer import Committer
from ingest.consume.intake import Intake
from ingest.consume.stats import Stats
from ingest.consume.stream import GroupStream, before

log = logging.getLogger("logs.ingest")


class Recovery:
    def __init__(
        self,
        settings: Settings,
        stream: GroupStream,
        intake: Intake,
        committer: Committer,
        stats: Stats,
    ) -> None:
        self.settings = settings
        self.stream = stream
        self.intake = intake
        self.committer = committer
        self.stats = stats
        self.last_claim = 0.0
        """When entries were last claimed (monotonic): the loop claims again every claim_idle/2."""

    def ensure_group(self) -> None:
        s = self.settings
        found = self.stream.ensure_group()
        if found == "reset":
            # Redis restarted without persistence (or someone deleted the key): the stream and
            # the group's pending list are gone. Start over at 0 so nothing new is skipped.
            self.stats.stream_resets += 1
            log.error(
                "STREAM RESET: %s lost its group %s (Redis restarted without its data?); "
                "recreated it at id 0. Entries that were in Redis but not yet committed "
                "are lost at the source.",
                s.stream,
                s.group,
            )
        elif found == "created":
            log.info("created group %s on %s at id 0", s.group, s.stream)

    def take_reads_ahead(self) -> None:
        """Take in the reads sent ahead before anything else reads our pending list, so no
        entry is read twice."""
        while self.stream.reads_ahead:
            self.intake.take(self.stream.read_ahead(), {})

    def own_pending(self) -> None:
        """Re-read our own pending list: entries read before a crash or a Redis error."""
        self.take_reads_ahead()
        start, total = b"-", 0
        while pending := self.stream.own_pending(start, self.settings.read_count):
            if not total:
                self.committer.writer.warm()  # before the re-read, not between it and its commit
            counts = {p[0]: int(p[3]) for p in pending}
            # XREADGROUP with an id returns our pending entries after it; `0` starts at the head.
            cursor = b"0" if start == b"-" else before(pending[0][0])
            entries = [e for e in self.stream.read(cursor, len(pending)) if e[0] in counts]
            self.intake.take(entries, counts)
            # Ids still in the PEL whose payload was trimmed come back without fields above;
            # ids missing from the reply entirely were deleted: dead-letter them too.
            seen = {e[0] for e in entries}
            for missing in (i for i in counts if i not in seen):
                self.intake.take([(missing, None)], counts)
            total += len(pending)
            # Commit and acknowledge page by page, before reading on: every re-read counts
            # toward max_deliveries, so a consumer killed again and again while recovering
            # must make progress, not re-read the same first page until it is dead-lettered.
            self.committer.commit_now()
            self.committer.acknowledge(self.stream)
            self.stream.collect_acks()
            start = b"(" + pending[-1][0]
        if total:
            log.info(
                "consumer %s: recovered %d entries from its pending list",
                self.settings.consumer,
                total,
            )

    def claim(self) -> None:
        """Take over entries of dead consumers: idle longer than claim_idle, or any entry of a
        consumer on this host whose process no longer exists."""
        self.last_claim = time.monotonic()
        self.take_reads_ahead()
        claimed = sum(
            self.stream.take_over(name)
            for name in self.stream.dead_local_consumers(socket.gethostname())
        )
        claimed += self.stream.claim_idle(int(self.settings.claim_idle * 1000))
        if claimed:
            self.stats.claimed += claimed
            log.warning(
                "consumer %s: claimed %d entries from dead or stalled consumers",
                self.settings.consumer,
                claimed,
            )
            # Our batch is in our pending list too: commit and acknowledge it before re-reading
            # that list, so no entry is read twice into one commit.
            self.committer.commit_now()
            self.committer.acknowledge(self.stream)
            self.own_pending()
