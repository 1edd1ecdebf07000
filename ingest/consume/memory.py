"""How `logs ingest` uses memory: the cycle collector paused while it runs, Arrow's buffers from
the C allocator. Both measured with bench/ingest.py."""

from __future__ import annotations

import gc

GC_EVERY = 30.0
"""Seconds between passes of the cycle collector, which is otherwise off while ingesting."""


def pause_gc() -> bool:
    """Ingest allocates millions of short-lived, acyclic objects (reply lists, row tuples): the
    cyclic collector's passes over the batch in hand cost throughput (a pass every 700
    allocations, Python's default: -20 %; every 50,000: -2 % median, 0-13 % over 7 alternating
    runs of bench/ingest.py). Freeze what start-up allocated and turn automatic collection off;
    the loop collects every GC_EVERY seconds instead. Returns whether it was on."""
    was_on = gc.isenabled()
    gc.freeze()
    gc.disable()
    return was_on


def arrow_from_malloc() -> None:
    """Arrow's buffers (the JSON reader's, the batch tables') from the C allocator: mimalloc,
    Arrow's default, keeps freed pages, and ingest peaked ~55 MB higher with it at the same
    speed (bench/ingest.py, 4 alternating runs: 406 vs 350 MB)."""
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())
