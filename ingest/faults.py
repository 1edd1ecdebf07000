"""Named crash points for fault tests: `LOGS_CRASH_AT=after_commit:3` SIGKILLs this process the
3rd time it passes `after_commit`. Unset (always, outside tests) it costs one dict lookup."""

from __future__ import annotations

import os
import signal

_plan: dict[str, int] = {}
for _item in filter(None, os.environ.get("LOGS_CRASH_AT", "").split(",")):
    _point, _, _nth = _item.partition(":")
    _plan[_point.strip()] = int(_nth or 1)


def crash_point(name: str) -> None:
    if not _plan or name not in _plan:
        return
    _plan[name] -= 1
    if _plan[name] <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
