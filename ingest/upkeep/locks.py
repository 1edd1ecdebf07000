"""One compaction (and one rollup run) per lake at a time, wherever it runs.

A local lake lives on one host: an flock in the data dir's state/ (released by the kernel when
the process dies). A remote lake is shared by hosts: a Redis lock (`SET key holder NX PX`,
renewed by a thread, released only by its holder), keyed by the lake's URI, so every host and
every stream writing one bucket agrees on it. Correctness never rests on the lock (each job's
commit is atomic and the state it derives from is in the lake); it only keeps two runs from
doing the same work twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator

from ingest import keys, procs
from ingest.errors import UsageError
from ingest.lake.location import Lake
from ingest.upkeep.lease import Lease

log = logging.getLogger("logs.upkeep")

LOCK_TTL = 60.0
"""Seconds a remote lake's lock lives unless renewed (renewed every third of it)."""
WAIT_EVERY = 0.5
"""Seconds between attempts while another host holds the lock."""


@contextlib.contextmanager
def lake_lock(lake: Lake, name: str) -> Iterator[None]:
    """Hold `name` for the lake for the block, waiting while someone else holds it."""
    if lake.is_local:
        with procs.state_lock(lake.state_dir(), name):
            yield
        return
    if lake.settings is None:
        raise UsageError(
            f"{name} of the shared lake {lake.display()} needs its Redis lock: "
            "pass settings, not a bare location"
        )
    from ingest.redis_conn import connect, resolve_url

    client = connect(resolve_url(lake.settings), block_ms=0)
    key = keys.lake_lock(lake.uri, name)
    holder = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    lease = Lease(client, key, holder, LOCK_TTL)  # the scheduler's lease, held for one block
    waited = False
    while not lease.try_acquire():
        if not waited:
            log.info("%s: waiting for the lock %s (held by %s)", name, key, lease.current_holder())
            waited = True
        time.sleep(WAIT_EVERY)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(LOCK_TTL / 3):
            try:
                if not lease.renew():
                    log.warning("%s: lost the lock %s (expired)", name, key)
                    return
            except Exception as exc:  # noqa: BLE001 - Redis away: the lock simply expires
                log.warning("%s: could not renew the lock %s: %s", name, key, exc)

    renewer = threading.Thread(target=renew, name=f"lock-{name}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join(timeout=5)
        try:
            lease.release()
        except Exception as exc:  # noqa: BLE001 - the lock then expires, LOCK_TTL s later
            log.warning("%s: could not release the lock %s: %s", name, key, exc)
        client.close()
