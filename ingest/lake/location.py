"""Where the lake is: a directory on this host or a prefix in an object store (s3://, az://,
abfss://, gs://), the storage options every library is handed, and the host-local scratch
folder (the data dir). Pure (stdlib only).

URIs are joined as strings, never with `Path` (`Path("s3://b/x")` is `s3:/b/x`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.config import is_secret_option
from ingest.lake import layout

if TYPE_CHECKING:
    from ingest.config import Settings

ENV_PREFIXES = ("AWS_", "AZURE_", "GOOGLE_")
"""The object stores' own environment variables: deltalake, Polars and obstore read them
themselves; we only show them (masked) and keep `[storage]` from overriding them."""
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


@dataclass(frozen=True)
class Lake:
    uri: str
    """The lake's root: an absolute directory, or `scheme://bucket/prefix` (no trailing /)."""
    scratch: Path
    """This host's data dir: spill files and local locks, never anything shared."""
    options: tuple[tuple[str, str], ...] = ()
    """Storage options handed to deltalake and Polars (from logs.toml `[storage]`)."""
    settings: Settings | None = field(default=None, compare=False, repr=False)
    """The settings it came from (how to reach Redis for cross-host locks), when known."""

    @property
    def is_local(self) -> bool:
        return _SCHEME.match(self.uri) is None

    @property
    def scheme(self) -> str:
        match = _SCHEME.match(self.uri)
        return match.group(1).lower() if match else "file"

    @property
    def storage_options(self) -> dict[str, str] | None:
        """For deltalake/Polars: None when there is nothing to add to the environment."""
        return dict(self.options) or None

    def table_uri(self, table: str = layout.LOGS_TABLE) -> str:
        return f"{self.uri}/{table}"

    def table_path(self, table: str = layout.LOGS_TABLE) -> Path:
        """A local table's folder (only for a local lake)."""
        assert self.is_local, self.uri
        return Path(self.uri) / table

    @property
    def root(self) -> Path:
        """A local lake's folder (only for a local lake)."""
        assert self.is_local, self.uri
        return Path(self.uri)

    def state_dir(self) -> Path:
        """This host's state folder: local locks and spill files."""
        return layout.state_dir(self.scratch)

    def display(self) -> str:
        return self.uri


def lake_of(where: Lake | Path | str | Settings) -> Lake:
    """The lake of settings (lake_uri, [storage]), of a data dir (`<dir>/lake`), or itself."""
    if isinstance(where, Lake):
        return where
    if isinstance(where, Path | str):
        folder = Path(where)
        return Lake(str(layout.lake_dir(folder)), folder)
    settings = where
    uri = settings.lake_location
    if _SCHEME.match(uri) is None or uri.lower().startswith("file://"):
        path = Path(os.path.expanduser(uri.removeprefix("file://")))
        uri = str(path)
    else:
        uri = uri.rstrip("/")
    return Lake(uri, settings.data_dir, storage_options(settings.storage), settings)


def storage_options(
    configured: tuple[tuple[str, str], ...], env: Mapping[str, str] | None = None
) -> tuple[tuple[str, str], ...]:
    """`[storage]` minus what the environment sets itself (env wins, as LOGS_* beat the file;
    the libraries read AWS_*/AZURE_*/GOOGLE_* on their own)."""
    env = os.environ if env is None else env
    return tuple((k, v) for k, v in configured if not env.get(k.upper()))


def environment_options(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The object-store variables set in the environment (for `logs config`)."""
    env = os.environ if env is None else env
    return {k: v for k, v in sorted(env.items()) if k.startswith(ENV_PREFIXES) and v}


def secret_values(lake: Lake, env: Mapping[str, str] | None = None) -> list[str]:
    """Every secret storage value in effect, to scrub from messages."""
    env = os.environ if env is None else env
    pairs = list(lake.options) + list(environment_options(env).items())
    return sorted({v for k, v in pairs if is_secret_option(k) and len(v) >= 4}, key=len)[::-1]


def masked(name: str, value: str) -> str:
    return "***" if is_secret_option(name) else value
