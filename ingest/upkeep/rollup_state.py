"""What each rollup partition was computed from: state/rollups.json,
`{"hourly": {"DATE/HH": [files]}, "daily": {"DATE": [files]}}` (paths relative to the logs
table). A partition whose raw files differ from its record is stale; the rollup tables themselves
are the record of which partitions exist at all.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ingest import procs
from ingest.lake import layout
from ingest.lake import state as lakestate

STATE = "rollups.json"
LOCK = "rollup"
"""The state lock rollup runs hold (procs.state_lock), so a forget never races a save."""

State = dict[str, dict[str, list[str]]]


def _path(data_dir: Path) -> Path:
    return layout.state_dir(data_dir) / STATE


def load(data_dir: Path) -> State:
    try:
        raw = json.loads(_path(data_dir).read_text())
    except (OSError, ValueError):
        raw = {}
    return {"hourly": dict(raw.get("hourly", {})), "daily": dict(raw.get("daily", {}))}


def _write(data_dir: Path, state: State) -> None:
    path = _path(data_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, sort_keys=True))
    os.replace(tmp, path)


def save(data_dir: Path, kind: str, computed: dict[str, list[str]], keep_keys: set[str]) -> None:
    """Record what was computed; forget partitions whose raw data is gone (retention), their
    rollups stay as they are. Called under the rollup lock."""
    state = load(data_dir)
    section = {k: v for k, v in state[kind].items() if k in keep_keys}
    section.update(computed)
    state[kind] = section
    _write(data_dir, state)


def forget(data_dir: Path, kind: str, keys: list[str]) -> None:
    """Drop partitions from the state (after retention deleted their rollups)."""
    with procs.state_lock(layout.state_dir(data_dir), LOCK):
        state = load(data_dir)
        for key in keys:
            state[kind].pop(key, None)
        _write(data_dir, state)


def stale_hours(data_dir: Path) -> list[str]:
    """Hours (`DATE/HH`) whose hourly rollup is missing or older than their raw files."""
    state = load(data_dir)["hourly"]
    return sorted(
        key
        for key, hour in lakestate.snapshot(data_dir).items()
        if state.get(key) != list(hour.files)
    )
