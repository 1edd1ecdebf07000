"""Ctrl-C that reaches a running DuckDB query.

While DuckDB runs, the main thread is inside C++ and Python's SIGINT handler cannot run until
the query returns (possibly minutes later). The C-level handler still writes the signal number
to the wakeup fd at once: a watcher thread reading it calls `con.interrupt()`, DuckDB stops
with InterruptException, and the pending KeyboardInterrupt takes the CLI to exit 130.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb


@contextlib.contextmanager
def interruptible(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except ValueError:
        os.close(read_end)
        os.close(write_end)
        yield
        return
    done, interrupted = threading.Event(), threading.Event()

    def watch() -> None:
        while True:
            data = os.read(read_end, 64)
            if done.is_set() or not data:
                return
            if signal.SIGINT in data:
                interrupted.set()
                con.interrupt()

    watcher = threading.Thread(target=watch, name="duckdb-interrupt", daemon=True)
    watcher.start()
    try:
        yield
    except Exception as exc:
        # DuckDB reports an interrupted query as InterruptException, or as a bare RuntimeError
        # when its own signal check consumed the KeyboardInterrupt before our watcher ran.
        bare = isinstance(exc, RuntimeError) and str(exc).strip() == "Query interrupted"
        if interrupted.is_set() or bare:
            raise KeyboardInterrupt from None
        raise
    finally:
        done.set()
        signal.set_wakeup_fd(previous)
        os.write(write_end, b"\0")  # wake the watcher so it sees `done`
        watcher.join(1.0)
        os.close(write_end)
        os.close(read_end)
