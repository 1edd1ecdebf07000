"""The receiver's Prometheus metrics (prefixed `loglake_receive_`), per protocol:

  requests_total{protocol,code}            answers given, by HTTP status
  records_total{protocol}                  records written to the stream
  bytes_total{protocol}                    request body bytes, as sent (before inflating)
  request_duration_seconds{protocol}       histogram, from the request line to the answer

Served on every receiver port at `/metrics`, and with `--metrics-port` beside the ingest
metrics (Redis gauges, group lag) on the same endpoint `logs ingest` serves.
"""

from __future__ import annotations

from typing import Any

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ReceiveMetrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "loglake_receive_requests",
            "Requests answered, by protocol and HTTP status.",
            ["protocol", "code"],
            registry=self.registry,
        )
        self.records = Counter(
            "loglake_receive_records",
            "Records written to the stream.",
            ["protocol"],
            registry=self.registry,
        )
        self.bytes = Counter(
            "loglake_receive_bytes",
            "Request body bytes received, as sent (compressed or not).",
            ["protocol"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "loglake_receive_request_duration_seconds",
            "Time from a request's arrival to its answer.",
            ["protocol"],
            buckets=_SECONDS,
            registry=self.registry,
        )
        self._children: dict[tuple[str, int], Any] = {}

    def observe(self, protocol: str, code: int, records: int, size: int, seconds: float) -> None:
        key = (protocol, code)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = (
                self.requests.labels(protocol, str(code)),
                self.records.labels(protocol),
                self.bytes.labels(protocol),
                self.duration.labels(protocol),
            )
        requests, records_, bytes_, duration = child
        requests.inc()
        if records:
            records_.inc(records)
        if size:
            bytes_.inc(size)
        duration.observe(seconds)

    def text(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
