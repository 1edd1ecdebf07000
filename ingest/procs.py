"""Process-level coordination on one machine: is a PID alive, and a lock file. Pure."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """True while process `pid` exists (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    # A zombie child of ours still answers kill(0).
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


@contextmanager
def state_lock(folder: Path, name: str) -> Iterator[None]:
    """An exclusive flock on `<folder>/<name>.lock` (the data dir's state/), held for the
    block; released by the kernel if the process dies, so a crash never leaves it stuck."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
