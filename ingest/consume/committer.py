"""Batches into the lake, one Delta commit each, on a thread of their own (Delta's Rust writer
releases the GIL, so a commit overlaps with reading the next batch); then, and only then, their
entries are acknowledged: dead letters written first, XACK after (design §5).

At most one commit is in flight. A commit that fails puts its batch back in front of the one
being filled (intake.py), unacknowledged, to be committed with it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ingest import faults
from ingest.config import Settings
from ingest.consume.chores import Chores
from ingest.consume.intake import Batch, Intake
from ingest.consume.stats import Stats
from ingest.consume.stream import DeadLetter, GroupStream
from ingest.errors import one_line
from ingest.lake.location import lake_of
from ingest.lake.writer import LakeWriter, rows_to_arrow, unique_ids

log = logging.getLogger("logs.ingest")


class CommitFailed(Exception):
    """The lake refused a commit of `rows` rows; the batch stays unacknowledged."""

    def __init__(self, reason: str, rows: int) -> None:
        super().__init__(reason)
        self.rows = rows


class Committer:
    def __init__(
        self,
        settings: Settings,
        intake: Intake,
        stats: Stats,
        chores: Chores,
        on_commit: Callable[[Stats], None] | None = None,
    ) -> None:
        self.settings = settings
        self.intake = intake
        self.stats = stats
        self.chores = chores
        self.on_commit = on_commit
        self.writer = LakeWriter(lake_of(settings))
        self.in_flight: tuple[Future[None], Batch] | None = None
        """The commit running on the commit thread, and its batch."""
        self.to_acknowledge: list[bytes] = []
        """Ids of entries whose rows (or dead letters) are committed..."""
        self.to_dead_letter: list[DeadLetter] = []
        """...and the dead letters to write before they are acknowledged."""
        self._thread: ThreadPoolExecutor | None = None
        self.failures = 0
        """Commits failed in a row (disk full, permissions...); 0 once one lands."""
        self._failing_since = 0.0

    @property
    def has_unacknowledged(self) -> bool:
        return bool(self.to_acknowledge or self.to_dead_letter or self.intake.oversized)

    # -- committing --------------------------------------------------------------------------

    def hand_over(self) -> None:
        """Commit the batch in hand on the commit thread while reading goes on, once the
        commit before it has landed."""
        self.collect()
        batch = self.intake.hand_over()
        if batch:
            # Arrow columns are built here, not on the commit thread: that work holds the GIL
            # and would only contend with reading.
            try:
                batch.table = rows_to_arrow(batch.rows) if batch.rows else None
            except Exception:  # noqa: BLE001 - retried on the commit thread, which reports it
                batch.table = None
            self.in_flight = (self._commit_thread().submit(self.write, batch), batch)

    def commit_now(self) -> None:
        """Commit everything read so far, here and now; its ids wait to be acknowledged."""
        self.collect()
        batch = self.intake.hand_over()
        if not batch:
            return
        self.in_flight = (_done_future(self.write, batch), batch)
        self.collect()

    def collect(self, wait: bool = True) -> None:
        """Collect the commit in flight (if it is done, or `wait`): its ids become ready to be
        acknowledged. A failed one puts its batch back and raises CommitFailed."""
        if self.in_flight is None:
            return
        future, batch = self.in_flight
        if not wait and not future.done():
            return
        self.in_flight = None
        try:
            future.result()
        except CommitFailed:
            self.intake.put_back(batch)
            if not self.failures:
                self._failing_since = time.monotonic()
            self.failures += 1
            raise
        if self.failures:
            log.warning(
                "consumer %s: commit succeeded after %d failed attempts over %.0f s: %d rows "
                "committed",
                self.settings.consumer,
                self.failures,
                time.monotonic() - self._failing_since,
                self.stats.last_batch_rows,
            )
            self.failures = 0
        self.to_dead_letter.extend(batch.dead)
        self.to_acknowledge.extend(batch.ids)
        if self.on_commit:
            self.on_commit(self.stats)

    def write(self, batch: Batch) -> None:
        """Decode what is left of the batch and commit it: one Delta commit (any thread)."""
        self.intake.finish(batch)
        if batch.rows or batch.parts:
            started = time.perf_counter()
            table = None
            try:
                table = _assemble(batch)
                hours = self.writer.write(table)
            except Exception as exc:  # noqa: BLE001 - disk full, permissions, a broken table
                rows = table.num_rows if table is not None else batch.entries
                raise CommitFailed(one_line(exc), rows) from exc
            elapsed = time.perf_counter() - started
            self.stats.commits += 1
            self.stats.commit_seconds += elapsed
            self.stats.ingested += table.num_rows
            self.stats.last_batch_rows = table.num_rows
            log.info(
                "consumer %s: committed %d rows (%d hours) in %.0f ms",
                self.settings.consumer,
                table.num_rows,
                hours,
                elapsed * 1000,
            )
        faults.crash_point("after_commit")

    # -- acknowledging -----------------------------------------------------------------------

    def acknowledge(self, stream: GroupStream) -> None:
        """Dead letters first, then XACK: an entry is never acknowledged before its row or its
        dead letter exists. A crash in between leaves at worst a duplicate dead letter. Dead
        letters Redis refuses (no permission on the dead-letter stream) are not acknowledged:
        those entries stay pending in the group, to be claimed and tried again. Oversized
        entries (intake.py) need no commit: theirs are written and acknowledged here, now."""
        if self.intake.oversized:
            letters, self.intake.oversized = self.intake.oversized, []
            self.to_dead_letter.extend(letters)
            self.to_acknowledge.extend(entry_id for entry_id, _, _ in letters)
        if self.to_dead_letter:
            letters, self.to_dead_letter = self.to_dead_letter, []
            now = str(int(time.time() * 1000))
            if self.chores.run("dead-lettering", lambda: stream.dead_letter(letters, now)):
                self.stats.dead_lettered += len(letters)
                for entry_id, _, reason in letters[:20]:
                    log.warning("dead-lettered %s: %s", entry_id.decode(), reason)
            else:
                unwritten = {entry_id for entry_id, _, _ in letters}
                self.to_acknowledge = [i for i in self.to_acknowledge if i not in unwritten]
        if self.to_acknowledge:
            faults.crash_point("before_ack")
            stream.acknowledge(self.to_acknowledge)
            self.to_acknowledge = []

    def _commit_thread(self) -> ThreadPoolExecutor:
        """One thread: batches are committed in order (a commit waits for its batch's chunks)."""
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="commit")
        return self._thread

    def shutdown(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)


def _done_future(fn: Callable[[Batch], None], batch: Batch) -> Future[None]:
    """Run `fn(batch)` here and now, wrapped as a finished future."""
    future: Future[None] = Future()
    try:
        fn(batch)
    except BaseException as exc:  # noqa: BLE001 - handed to whoever collects the future
        future.set_exception(exc)
    else:
        future.set_result(None)
    return future


def _assemble(batch: Batch) -> Any:
    """The batch's one Arrow table: the rows decoded one by one and the columnar parts, each
    `stream_id` once."""
    import pyarrow as pa

    if batch.table is None:
        batch.table = rows_to_arrow(batch.rows)
    tables = [t for t in (batch.table, *batch.parts) if t is not None and t.num_rows]
    tables = tables or [batch.table]
    return unique_ids(pa.concat_tables(tables) if len(tables) > 1 else tables[0])
