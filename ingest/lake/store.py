"""The lake as plain objects, for what Delta does not do for us: compaction's file uploads and
downloads, small state documents (JSON) beside the tables, and deleting files no commit took.

A local lake is a folder (atomic renames); a remote one goes through obstore, the same
object_store crate and option names as deltalake and Polars (AWS_*, AZURE_*, GOOGLE_* from the
environment, plus `[storage]`). obstore releases the GIL on every call.
"""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from ingest.errors import DataUnavailable
from ingest.lake.errors import storage_error
from ingest.lake.location import Lake

# object_store's HTTP client options: a separate dict in obstore, one namespace in deltalake.
_CLIENT_KEYS = {
    "allow_http",
    "allow_invalid_certificates",
    "connect_timeout",
    "default_content_type",
    "pool_idle_timeout",
    "pool_max_idle_per_host",
    "proxy_url",
    "proxy_ca_certificate",
    "proxy_excludes",
    "timeout",
    "user_agent",
}
_PREFIXES = ("aws_", "azure_", "google_")
# Fail within seconds on an unreachable endpoint (deltalake takes ~2.7 s): a lost network
# should read as "cannot reach", not as a command that hangs for minutes.
_RETRY = {"max_retries": 3, "retry_timeout": timedelta(seconds=15)}


class LakeStore:
    """Objects under the lake root, addressed by paths relative to it (`logs/date=…/x`)."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._remote: Any = None

    # -- reads ---------------------------------------------------------------------------------

    def read(self, path: str) -> bytes | None:
        """The object's bytes; None when there is none."""
        if self.lake.is_local:
            try:
                return (self.lake.root / path).read_bytes()
            except FileNotFoundError:
                return None
        import obstore

        try:
            return bytes(obstore.get(self._store(), path).bytes())
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - obstore's errors are many; all mean "can't"
            raise storage_error(exc, self.lake, f"reading {path}") from None

    def exists(self, path: str) -> bool:
        if self.lake.is_local:
            return (self.lake.root / path).exists()
        import obstore

        try:
            obstore.head(self._store(), path)
            return True
        except FileNotFoundError:
            return False
        except Exception as exc:  # noqa: BLE001
            raise storage_error(exc, self.lake, f"looking for {path}") from None

    def download(self, path: str, target: Path) -> None:
        """Copy the object to a local file (compaction merges local copies)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        if self.lake.is_local:
            shutil.copyfile(self.lake.root / path, target)
            return
        import obstore

        try:
            result = obstore.get(self._store(), path)
            with open(target, "wb") as out:
                for chunk in result.stream(min_chunk_size=8 << 20):
                    out.write(chunk)
        except Exception as exc:  # noqa: BLE001
            raise storage_error(exc, self.lake, f"downloading {path}") from None

    # -- writes --------------------------------------------------------------------------------

    def write(self, path: str, data: bytes) -> None:
        """Replace the object atomically (readers see the old bytes or the new ones)."""
        if self.lake.is_local:
            target = self.lake.root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
            return
        import obstore

        try:
            obstore.put(self._store(), path, data)
        except Exception as exc:  # noqa: BLE001
            raise storage_error(exc, self.lake, f"writing {path}") from None

    def upload(self, source: Path, path: str) -> None:
        """Move a finished local file to `path` (local: fsync + rename; remote: upload, in
        parts for big files)."""
        if self.lake.is_local:
            target = self.lake.root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(source, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(source, target)
            return
        import obstore

        try:
            with open(source, "rb") as handle:
                obstore.put(self._store(), path, handle, chunk_size=16 << 20)
        except Exception as exc:  # noqa: BLE001
            raise storage_error(exc, self.lake, f"uploading {path}") from None

    def delete(self, path: str) -> None:
        """Delete the object if it is there."""
        if self.lake.is_local:
            (self.lake.root / path).unlink(missing_ok=True)
            return
        import obstore

        try:
            obstore.delete(self._store(), path)
        except FileNotFoundError:
            return
        except Exception as exc:  # noqa: BLE001
            raise storage_error(exc, self.lake, f"deleting {path}") from None

    # -- the client ----------------------------------------------------------------------------

    def _store(self) -> Any:
        if self._remote is None:
            self._remote = open_store(self.lake)
        return self._remote


def open_store(lake: Lake) -> Any:
    """An obstore store rooted at the lake URI. Options obstore does not know (deltalake-only
    ones such as AWS_S3_ALLOW_UNSAFE_RENAME) are left out rather than refused."""
    from obstore.exceptions import UnknownConfigurationKeyError
    from obstore.store import from_url

    config: dict[str, str] = {}
    client: dict[str, str] = {}
    for name, value in lake.options:
        lowered = name.lower()
        bare = next((lowered[len(p) :] for p in _PREFIXES if lowered.startswith(p)), lowered)
        if bare in _CLIENT_KEYS:
            client[bare] = value
        else:
            config[lowered] = value
    for _ in range(len(config) + 1):
        try:
            build: Any = from_url  # overloads per store kind; our options are plain strings
            return build(
                lake.uri,
                config=config or None,
                client_options=client or None,
                retry_config=_RETRY,
            )
        except UnknownConfigurationKeyError as exc:
            unknown = [k for k in config if f"'{k}'" in str(exc)]
            if not unknown:
                raise DataUnavailable(f"lake {lake.display()}: {exc}") from None
            for key in unknown:
                config.pop(key)
        except Exception as exc:  # noqa: BLE001
            raise storage_error(exc, lake, "opening the object store") from None
    raise DataUnavailable(f"lake {lake.display()}: cannot configure the object store")
