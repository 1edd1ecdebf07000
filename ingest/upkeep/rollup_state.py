"""What each rollup partition was computed from: `_loglake/rollups.json` in the lake, beside
the tables, so every host sees it (`{"hourly": {"DATE/HH": [files]}, "daily": {"DATE":
[files]}}`, paths relative to the logs table). Written after the rollup commit by the holder of
the rollup lock (locks.py): a crash in between only makes partitions recomputed.
"""

from __future__ import annotations

import json
from pathlib import Path

from ingest.lake import state as lakestate
from ingest.lake.location import Lake, lake_of
from ingest.lake.store import LakeStore
from ingest.upkeep.locks import lake_lock

STATE = "_loglake/rollups.json"
"""Relative to the lake root."""


def load_state(lake: Lake) -> dict[str, dict[str, list[str]]]:
    try:
        raw = json.loads(LakeStore(lake).read(STATE) or b"{}")
    except ValueError:
        raw = {}
    if not isinstance(raw, dict):
        raw = {}
    return {"hourly": dict(raw.get("hourly", {})), "daily": dict(raw.get("daily", {}))}


def write_state(lake: Lake, state: dict[str, dict[str, list[str]]]) -> None:
    LakeStore(lake).write(STATE, json.dumps(state, sort_keys=True).encode())


def save_state(lake: Lake, kind: str, computed: dict[str, list[str]], keep_keys: set[str]) -> None:
    """Record what was computed; forget partitions whose raw data is gone (retention), their
    rollups stay as they are."""
    state = load_state(lake)
    section = {k: v for k, v in state[kind].items() if k in keep_keys}
    section.update(computed)
    state[kind] = section
    write_state(lake, state)


def forget(where: Lake | Path, kind: str, keys: list[str]) -> None:
    """Drop partitions from the state (after retention deleted their rollups)."""
    lake = lake_of(where)
    with lake_lock(lake, "rollup"):
        state = load_state(lake)
        for key in keys:
            state[kind].pop(key, None)
        write_state(lake, state)


def stale_hours(where: Lake | Path) -> list[str]:
    """Hours (`DATE/HH`) whose hourly rollup is missing or older than their raw files."""
    lake = lake_of(where)
    state = load_state(lake)["hourly"]
    return sorted(
        key for key, hour in lakestate.snapshot(lake).items() if state.get(key) != list(hour.files)
    )


__all__ = ["forget", "load_state", "save_state", "stale_hours"]
