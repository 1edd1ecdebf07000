"""A local S3 server for the tests: moto in server mode on 127.0.0.1 and a free port, in a
process of its own (deltalake's Python file handler holds the GIL while it waits on the
network, so a server thread inside the test process could deadlock with it). Moto enforces
`If-None-Match: *` (one winner per key under a race), keeps data in memory and, unless told
otherwise, does not check credentials.

    python -m tests.s3server            # prints "ready <port>" and serves until killed
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field

ACCESS_KEY = "loglake-test"
SECRET_KEY = "loglake-test-secret-0123456789"
REGION = "us-east-1"


@dataclass
class S3Server:
    """A running moto server we started (killed by PID)."""

    proc: subprocess.Popen[bytes]
    port: int
    buckets: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> dict[str, str]:
        """The standard AWS variables deltalake, Polars and obstore read."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
        }

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def new_bucket(self) -> str:
        name = f"lake-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        self.buckets.append(name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


def start(extra_env: dict[str, str] | None = None) -> S3Server:
    """Start a server process and wait for its port."""
    env = {**os.environ, **(extra_env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.s3server"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    line = b""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(b"ready"):
            return S3Server(proc, int(line.split()[1]))
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"moto server did not start: {line!r}")


def main() -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    sys.stdout.write(f"ready {port}\n")
    sys.stdout.flush()
    while True:  # until the test session kills us
        time.sleep(3600)


if __name__ == "__main__":
    main()
