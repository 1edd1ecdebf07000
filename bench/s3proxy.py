"""A counting HTTP proxy in front of a local S3 server: how many requests a query made and how
many response bytes it read. Bench-only (loopback, plain HTTP, no signature rewriting: moto
does not check signatures)."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.bytes_in = 0

    def reset(self) -> None:
        with self.lock:
            self.requests = 0
            self.bytes_in = 0


class CountingProxy:
    """Forwards every request to `upstream_port` and counts requests and response bytes."""

    def __init__(self, upstream_port: int) -> None:
        self.counts = Counts()
        counts = self.counts

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                upstream.request(self.command, self.path, body=body, headers=headers)
                reply = upstream.getresponse()
                data = reply.read()
                upstream.close()
                with counts.lock:
                    counts.requests += 1
                    counts.bytes_in += len(data)
                self.send_response(reply.status, reply.reason)
                head = self.command == "HEAD"  # its Content-Length is the object's size
                skip = ("transfer-encoding", "connection") + (() if head else ("content-length",))
                for key, value in reply.getheaders():
                    if key.lower() not in skip:
                        self.send_header(key, value)
                if not head:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
