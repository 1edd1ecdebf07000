"""A local Azure Blob server for the tests: Azurite (Microsoft's emulator, an npm package) on
127.0.0.1 and a port it picks, in a process of its own, killed by PID. Azurite enforces
`If-None-Match: *` (one winner per blob under a race) and checks SharedKey signatures.

Where the binary comes from, first found wins:
  1. $TEST_AZURITE_BLOB (a path to `azurite-blob`),
  2. the pinned version in the cache ($XDG_CACHE_HOME or ~/.cache, `loglake/azurite-<version>`),
  3. `npm install` of the pinned version into that cache (node and npm on PATH, the npm registry
     reachable: ~20 s once per machine; nothing lands in the repository).
With none of them the Azure tests are skipped with the reason (`-ra` shows it), unless
TEST_AZURITE=required, which makes that a failure (CI leaves it unset: a registry outage
skips these tests rather than failing the run, as the JS SDK's do).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

VERSION = "3.37.0"
"""The first Azurite release that honours List Blobs' `startFrom`, which object_store sends to
list a Delta log from a version on: older ones ignore it and hand back the whole log, and every
second commit then fails ("Invalid table version: 1"). It declares Node.js >= 22; the blob
server runs on the Node.js 20 of this machine (npm only warns, and --loglevel=error hides it)."""
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""Azurite's well-known development account and key (published, not a secret)."""


class Unavailable(Exception):
    """No Azurite binary here and none could be installed (the reason is the message)."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "loglake" / f"azurite-{VERSION}"


def binary() -> str:
    """The `azurite-blob` to run, installing the pinned version into the cache if need be."""
    given = os.environ.get("TEST_AZURITE_BLOB")
    if given:
        if not os.access(given, os.X_OK):
            raise Unavailable(f"TEST_AZURITE_BLOB={given} is not an executable")
        return given
    cache = cache_dir()
    found = cache / "node_modules" / ".bin" / "azurite-blob"
    if found.exists():
        return str(found)
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        raise Unavailable(
            "Azurite is not installed and node/npm are not on PATH to install it "
            f"(set TEST_AZURITE_BLOB, or install Node.js so the tests can fetch azurite@{VERSION})"
        )
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.parent / f".azurite-{VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one install at a time (parallel sessions)
        if found.exists():
            return str(found)
        staging = cache.parent / f".azurite-{VERSION}.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            res = subprocess.run(
                [npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund"]
                + ["--no-save", "--no-package-lock", "--loglevel=error"]
                + ["--fetch-retries=1", "--fetch-timeout=60000", f"azurite@{VERSION}"],
                capture_output=True,
                text=True,
                timeout=240,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            shutil.rmtree(staging, ignore_errors=True)
            raise Unavailable(f"npm install azurite@{VERSION} timed out (no registry?)") from None
        if res.returncode != 0 or not (staging / "node_modules" / ".bin" / "azurite-blob").exists():
            shutil.rmtree(staging, ignore_errors=True)
            lines = [line.removeprefix("npm error").strip() for line in res.stderr.splitlines()]
            why = next((line for line in lines if "Error" in line), lines[0] if lines else "")
            raise Unavailable(f"npm install azurite@{VERSION} failed: {why or 'no output'}")
        os.replace(staging, cache)
    return str(found)


@dataclass
class Azurite:
    """A running azurite-blob we started (killed by PID)."""

    proc: subprocess.Popen[bytes]
    port: int
    containers: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        """The account's blob endpoint (Azurite addresses accounts by the first path segment)."""
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    def env(self, key: str = KEY) -> dict[str, str]:
        """The standard AZURE_* variables deltalake, Polars and obstore read."""
        return {
            "AZURE_STORAGE_ACCOUNT_NAME": ACCOUNT,
            "AZURE_STORAGE_ACCOUNT_KEY": key,
            "AZURE_STORAGE_ENDPOINT": self.endpoint,
            "AZURE_ALLOW_HTTP": "true",
        }

    def new_container(self) -> str:
        name = f"lake-{uuid.uuid4().hex[:12]}"
        self._request("PUT", name, {"restype": "container"})
        self.containers.append(name)
        return name

    def blobs(self, container: str, prefix: str = "") -> list[str]:
        """Blob names under `prefix` (one page: enough for a test's container)."""
        query = {"restype": "container", "comp": "list", "prefix": prefix, "maxresults": "5000"}
        body = self._request("GET", container, query)
        return sorted(re.findall(r"<Name>([^<]*)</Name>", body.decode()))

    def _request(self, method: str, container: str, query: dict[str, str]) -> bytes:
        """A SharedKey-signed request on a container (the Blob REST API, stdlib only)."""
        from urllib.parse import quote

        headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": "2021-08-06"}
        canonical = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
        resource = f"/{ACCOUNT}/{ACCOUNT}/{container}" + "".join(
            f"\n{k}:{v}" for k, v in sorted(query.items())
        )
        # VERB, then 11 standard headers we leave empty, then the x-ms-* headers and resource.
        to_sign = method + "\n" * 12 + canonical + resource
        digest = hmac.new(base64.b64decode(KEY), to_sign.encode(), hashlib.sha256).digest()
        headers["Authorization"] = f"SharedKey {ACCOUNT}:{base64.b64encode(digest).decode()}"
        url = f"{self.endpoint}/{container}?" + "&".join(
            f"{k}={quote(v, safe='')}" for k, v in query.items()
        )
        request = urllib.request.Request(url, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            return bytes(response.read())

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


def start(location: Path) -> Azurite:
    """Start azurite-blob on a port it picks (it prints the one it listens on) and wait."""
    location.mkdir(parents=True, exist_ok=True)
    log = location / "azurite.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary(), "--blobHost", "127.0.0.1", "--blobPort", "0", "--location", str(location)]
            + ["--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    text = ""
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        found = re.search(r"successfully listens on http://127\.0\.0\.1:(\d+)", text)
        if found:
            return Azurite(proc, int(found.group(1)))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    raise RuntimeError(f"azurite-blob did not start: {text.strip()[-500:]!r}")
