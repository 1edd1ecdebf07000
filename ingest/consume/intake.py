"""Entries in, a batch of decoded rows out: each entry goes down the decode lane that fits it
(one JSON field, a field per column, one text field: columnar.py, a chunk at a time on the
decode threads) or is decoded on its own (`records.decode_rows`); each bad entry becomes a
dead letter on its own, never failing the batch it came in.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ingest import faults
from ingest.config import Settings
from ingest.consume.stats import Stats
from ingest.consume.stream import DeadLetter, Entry
from ingest.errors import BadEntry, one_line
from ingest.formats.registry import Formats
from ingest.records import ALIASES, Row, decode_rows

log = logging.getLogger("logs.ingest")

Decoded = tuple[Any, list[Row], list[DeadLetter]]
"""What a lane made of a chunk: an Arrow table, rows decoded one by one, dead letters."""
LaneEntry = tuple[bytes, list[bytes]]

DECODE_CHUNK = 5_000
"""JSON entries handed to the columnar decoder at once: a full read's worth goes at once (its
fixed cost is ~5 ms a call; chunks of 30k instead of 10k were no faster and took 70 MB more)."""
TEXT_CHUNK = 20_000
"""Text entries handed to the columnar text lane at once: its fixed cost per call is larger
(~25 ms: a regex pass per format tried, then a few steps per format found), so it takes bigger
chunks (CPU per line, generated mix: 9.9 µs at 5k, 5.2 µs at 20k, 4.5 µs at 40k)."""
DECODE_THREADS = 2
"""Two: while one chunk is in Python glue (holding the GIL), the other is in native code
(bench: +5-10 % over one)."""

_SINGLE_VALUE_KEYS = frozenset(
    name.encode() for column, names in ALIASES.items() if column != "message" for name in names
)
"""A lone field named for a column other than the message (`ts`, `level`...) is that column's
value, not a line of text to parse (records.decode)."""


@dataclass
class Batch:
    rows: list[Row] = field(default_factory=list)
    """Entries decoded one by one (records.decode)."""
    json: list[LaneEntry] = field(default_factory=list)
    """Entries of one JSON field, and..."""
    fielded: list[LaneEntry] = field(default_factory=list)
    """...entries of a field per column, and..."""
    text: list[LaneEntry] = field(default_factory=list)
    """...entries of one plain-text field, to be decoded together on a decode thread..."""
    decoding: list[Future[Decoded]] = field(default_factory=list)
    """...where earlier chunks of them are being decoded already..."""
    lane_count: int = 0
    """...; entries sent down those lanes so far."""
    parts: list[Any] = field(default_factory=list)
    """Arrow tables the columnar decoder made."""
    ids: list[bytes] = field(default_factory=list)
    """Ids to acknowledge once the rows are committed (rows and dead letters)."""
    dead: list[DeadLetter] = field(default_factory=list)
    nbytes: int = 0
    started: float = 0.0
    table: Any = None
    """`rows` as an Arrow table, when prepared ahead of the commit."""

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def entries(self) -> int:
        """Entries read into the batch, dead letters aside."""
        return len(self.rows) + self.lane_count

    def absorb(self, later: Batch) -> None:
        """Append a later batch (after a failed commit, both are committed together)."""
        self.rows.extend(later.rows)
        self.json.extend(later.json)
        self.fielded.extend(later.fielded)
        self.text.extend(later.text)
        self.decoding.extend(later.decoding)
        self.lane_count += later.lane_count
        self.parts.extend(later.parts)
        self.ids.extend(later.ids)
        self.dead.extend(later.dead)
        self.nbytes += later.nbytes
        self.table = None


class _LaneMiscount(Exception):
    """The columnar decoder lost or repeated entries (a bug): the chunk is decoded one by one."""


class Intake:
    def __init__(self, settings: Settings, formats: Formats, stats: Stats) -> None:
        self.settings = settings
        self.formats = formats
        self.stats = stats
        self.batch = Batch()
        """The batch being filled."""
        self.oversized: list[DeadLetter] = []
        """Entries over max_entry_bytes, kept out of the batch: their dead letters are written
        (and they are acknowledged) at once, not held until the batch commits."""
        self.largest = 0
        """The largest of them in the last `take` (the loop reads fewer at a time after one)."""
        self._pool: ThreadPoolExecutor | None = None

    # -- filling the batch -------------------------------------------------------------------

    def take(self, entries: list[Entry], deliveries: dict[bytes, int]) -> None:
        """Decode entries into the batch. `deliveries`: for recovered or claimed entries, how
        often each was delivered (too often: a dead letter); they are decoded right here, to
        be committed at once. New ones go down a columnar lane when they fit one."""
        if not entries:
            return
        batch = self.batch
        if not batch:
            batch.started = time.monotonic()
        max_bytes = self.settings.max_entry_bytes
        limit = self.settings.max_deliveries
        rows, dead = batch.rows, batch.dead
        add_json, add_fielded, add_text = batch.json.append, batch.fielded.append, batch.text.append
        batch.ids.extend([entry[0] for entry in entries])
        lanes_before = len(batch.json) + len(batch.fielded) + len(batch.text)
        nbytes = largest = 0
        for entry in entries:
            entry_id, fields = entry
            if deliveries and deliveries.get(entry_id, 0) >= limit:
                reason = f"delivered {deliveries[entry_id] + 1} times without being committed"
                dead.append((entry_id, fields or [], reason))
                continue
            # An oversized entry is dead-lettered alone, below, not sent down a lane.
            if not deliveries and fields:
                if len(fields) == 2:
                    size = len(fields[0]) + len(fields[1])
                    if size <= max_bytes:
                        if fields[1][:1] == b"{":
                            add_json(entry)  # type: ignore[arg-type]
                            nbytes += size
                            continue
                        if fields[0] not in _SINGLE_VALUE_KEYS:
                            add_text(entry)  # type: ignore[arg-type]
                            nbytes += size
                            continue
                elif len(fields) > 2:
                    size = sum(map(len, fields))
                    if size <= max_bytes:
                        add_fielded(entry)  # type: ignore[arg-type]
                        nbytes += size
                        continue
            try:
                rows.extend(self.decode_one(entry_id, fields))
            except BadEntry as exc:
                size = sum(map(len, fields or []))
                if size > max_bytes:
                    self.oversized.append((entry_id, fields or [], exc.reason))
                    largest = max(largest, size)
                else:
                    dead.append((entry_id, fields or [], exc.reason))
                continue
            nbytes += sum(map(len, fields))  # type: ignore[arg-type]
        batch.nbytes += nbytes
        self.largest = largest
        if largest:
            apart = {letter[0] for letter in self.oversized}
            batch.ids = [i for i in batch.ids if i not in apart]
        batch.lane_count += len(batch.json) + len(batch.fielded) + len(batch.text) - lanes_before
        # Decode on a decode thread while we read on.
        if len(batch.json) >= DECODE_CHUNK:
            batch.decoding.append(self._decode_later(batch.json, "json"))
            batch.json = []
        if len(batch.fielded) >= DECODE_CHUNK:
            batch.decoding.append(self._decode_later(batch.fielded, "fields"))
            batch.fielded = []
        if len(batch.text) >= TEXT_CHUNK:
            batch.decoding.append(self._decode_later(batch.text, "text"))
            batch.text = []
        self.stats.read += len(entries)
        faults.crash_point("after_read")

    def due(self, stopping: bool) -> bool:
        """The batch is to be committed: full, large or old enough, or we are stopping."""
        b = self.batch
        if not b:
            return False
        return (
            b.entries >= self.settings.batch_rows
            or b.nbytes >= self.settings.batch_bytes
            or time.monotonic() - b.started >= self.settings.batch_age
            or stopping
        )

    def hand_over(self) -> Batch:
        """The batch in hand, for the committer; a new one is started."""
        batch, self.batch = self.batch, Batch()
        return batch

    def put_back(self, failed: Batch) -> None:
        """A batch whose commit failed goes back in front of the one being filled: both are
        committed together, unacknowledged until then."""
        failed.absorb(self.batch)
        self.batch = failed

    # -- decoding ----------------------------------------------------------------------------

    def finish(self, batch: Batch) -> None:
        """Collect the batch's decoded chunks and decode what is left of its lanes (on the
        commit thread, just before its commit)."""
        if not (batch.json or batch.fielded or batch.text or batch.decoding):
            return
        decoded = [f.result() for f in batch.decoding]
        if batch.json:
            decoded.append(self.decode_lane(batch.json, "json"))
        if batch.fielded:
            decoded.append(self.decode_lane(batch.fielded, "fields"))
        if batch.text:
            decoded.append(self.decode_lane(batch.text, "text"))
        for table, rows, dead in decoded:
            batch.parts.append(table)
            batch.rows.extend(rows)
            batch.dead.extend(dead)
            if rows:
                batch.table = None
        batch.json, batch.fielded, batch.text, batch.decoding = [], [], [], []
        # The lanes' entries are rows now (in `parts`, or in `rows` when decoded one by one):
        # count them once (a batch put back after a failed commit is counted again).
        batch.lane_count = sum(t.num_rows for t in batch.parts if t is not None)

    def decode_one(self, entry_id: bytes, fields: list[bytes] | None) -> list[Row]:
        """records.decode_rows of one entry, with this consumer's limits and formats."""
        return decode_rows(
            entry_id.decode(),
            fields,
            max_bytes=self.settings.max_entry_bytes,
            max_depth=self.settings.max_json_depth,
            formats=self.formats,
        )

    def decode_lane(self, entries: list[LaneEntry], lane: str) -> Decoded:
        """Entries of one lane (`json`: one JSON field; `fields`: a field per column; `text`:
        one plain-text field) -> Arrow rows in one go. What the columnar decoder leaves (see
        columnar.py) is decoded entry by entry, bad entries becoming dead letters as usual.
        Never raises: an entry no decoder can take is a dead letter, not a stuck batch."""
        from ingest.consume import columnar

        table = None
        try:
            ids = [entry[0] for entry in entries]
            if lane == "fields":
                table, left = columnar.decode_fields(ids, [entry[1] for entry in entries])
            elif lane == "text":
                table, left = columnar.decode_text(
                    ids, [entry[1][1] for entry in entries], self.formats
                )
            else:
                table, left = columnar.decode_json(ids, [entry[1][1] for entry in entries])
            if table.num_rows + len(left) != len(entries):
                # Every entry must come back as a row or a leftover: one that came back as
                # neither would be acknowledged with no row and no dead letter.
                raise _LaneMiscount(
                    f"{table.num_rows} rows and {len(left)} left for {len(entries)} entries"
                )
        except Exception as exc:  # noqa: BLE001 - the per-entry path below decodes them all
            log.warning(
                "columnar decoding failed (%s): decoding %d entries one by one",
                one_line(exc),
                len(entries),
            )
            table, left = None, list(range(len(entries)))
        rows: list[Row] = []
        dead: list[DeadLetter] = []
        for i in left:
            entry_id, fields = entries[i]
            try:
                rows.extend(self.decode_one(entry_id, fields))
            except BadEntry as exc:
                dead.append((entry_id, fields, exc.reason))
            except Exception as exc:  # noqa: BLE001 - a decoder bug must not stall ingest
                dead.append((entry_id, fields, f"decoder error: {one_line(exc)}"))
        return table, rows, dead

    def warm(self) -> None:
        """Import and warm the columnar decoders (~0.3 s) on a decode thread, while the first
        entries are read, not when the first chunk is due."""
        if self._pool is None:
            self._threads().submit(_warm_decoders)

    def _decode_later(self, entries: list[LaneEntry], lane: str) -> Future[Decoded]:
        return self._threads().submit(self.decode_lane, entries, lane)

    def _threads(self) -> ThreadPoolExecutor:
        """The decode threads: they mostly run native code that releases the GIL, so decoding,
        committing and reading overlap."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="decode")
        return self._pool

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def _warm_decoders() -> None:
    from ingest.consume import columnar

    columnar.decode_json([b"0-1"], [b'{"ts":"2026-01-01T00:00:00Z","message":"warm-up"}'])
    # A line no format takes: every format's pattern is compiled once (~2 ms each), here
    # beside the first reads rather than in the first batch.
    columnar.decode_text([b"0-1"], [b"warm-up"])
