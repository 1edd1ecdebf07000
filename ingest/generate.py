"""`logs gen`: realistic synthetic logs for the demo, tests and benchmarks.

About 20 services on 50 hosts, skewed levels, varied messages, trace ids and `latency_ms`,
event times spread over the last H hours. Deterministic for a given seed and `now`.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from ingest.producer import Fields

SERVICES = [
    "api",
    "auth",
    "billing",
    "cart",
    "catalog",
    "checkout",
    "email",
    "frontend",
    "gateway",
    "inventory",
    "notifications",
    "orders",
    "payments",
    "pricing",
    "recommendations",
    "search",
    "shipping",
    "users",
    "worker",
    "scheduler",
]
HOSTS = [f"ip-10-0-{i // 10}-{10 + i}" for i in range(50)]
LEVELS = ["DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
LEVEL_WEIGHTS = [12, 74, 9, 4.8, 0.2]
PATHS = [
    "/v1/orders",
    "/v1/users/{id}",
    "/v1/cart",
    "/v1/search",
    "/healthz",
    "/v1/login",
    "/v1/payments",
    "/v1/items/{id}",
    "/v2/checkout",
    "/metrics",
]
METHODS = ["GET", "GET", "GET", "POST", "POST", "PUT", "DELETE"]
TEMPLATES = {
    "DEBUG": [
        "cache lookup key={key} hit={hit}",
        "sql: select * from {table} where id = $1 ({ms} ms)",
        "retry budget left={n}",
    ],
    "INFO": [
        "{method} {path} {status} {ms}ms",
        "{method} {path} {status} {ms}ms",
        "{method} {path} {status} {ms}ms",
        "user {user} logged in from {ip}",
        "order {order} created total={amount} EUR",
        "job {job} finished in {ms} ms",
        "published {n} events to {table}",
    ],
    "WARN": [
        "slow request {method} {path} took {ms}ms",
        "retrying call to {peer} (attempt {n})",
        "connection pool {table} at {pct}% capacity",
        "deprecated header X-Legacy-Auth used by {ip}",
    ],
    "ERROR": [
        "{method} {path} 500 upstream {peer} timed out after {ms}ms",
        "payment {order} declined: insufficient funds",
        "failed to send email to {user}@example.com: SMTP 451",
        "database error: deadlock detected on {table}",
        "unhandled exception in handler {path}: KeyError('{key}')",
    ],
    "FATAL": [
        "out of memory: killing worker {n}",
        "cannot open database {table}: disk I/O error",
    ],
}
TABLES = ["orders", "users", "carts", "payments", "items", "sessions"]


class _Fields(dict[str, object]):
    """Template values computed only when a template names them."""

    def __init__(self, rng: random.Random, latency: float) -> None:
        super().__init__()
        self.rng = rng
        self.latency = latency

    def __missing__(self, key: str) -> object:
        rng = self.rng
        value: object
        if key == "method":
            value = rng.choice(METHODS)
        elif key == "path":
            value = rng.choice(PATHS).replace("{id}", str(rng.randint(1, 99999)))
        elif key == "status":
            value = rng.choice((200, 200, 200, 201, 204, 301, 404))
        elif key == "ms":
            value = int(self.latency)
        elif key == "key":
            value = f"k{rng.randint(1, 5000)}"
        elif key == "hit":
            value = rng.choice(("true", "false"))
        elif key == "table":
            value = rng.choice(TABLES)
        elif key == "n":
            value = rng.randint(1, 9)
        elif key == "user":
            value = f"user{rng.randint(1, 20000)}"
        elif key == "ip":
            value = f"203.0.113.{rng.randint(1, 254)}"
        elif key == "order":
            value = f"ord_{rng.getrandbits(40):010x}"
        elif key == "amount":
            value = f"{rng.uniform(5, 500):.2f}"
        elif key == "job":
            value = f"job-{rng.randint(1, 999)}"
        elif key == "peer":
            value = rng.choice(SERVICES)
        elif key == "pct":
            value = rng.randint(80, 99)
        else:
            raise KeyError(key)
        self[key] = value
        return value


def _message(rng: random.Random, level: str, latency: float) -> str:
    return rng.choice(TEMPLATES[level]).format_map(_Fields(rng, latency))


def entries(
    count: int,
    hours: float = 1.0,
    seed: int = 0,
    shape: str = "json",
    now: float | None = None,
    malformed: float = 0.0,
) -> Iterator[Fields]:
    """`count` entries with event times uniform over [now - hours, now)."""
    rng = random.Random(seed)
    now = time.time() if now is None else now
    span = hours * 3600
    service_weights = list(itertools.accumulate(1 / (i + 1) ** 0.8 for i in range(len(SERVICES))))
    level_weights = list(itertools.accumulate(LEVEL_WEIGHTS))
    for _ in range(count):
        if malformed and rng.random() < malformed:
            yield _malformed(rng)
            continue
        level = rng.choices(LEVELS, cum_weights=level_weights)[0]
        service = rng.choices(SERVICES, cum_weights=service_weights)[0]
        latency = rng.lognormvariate(3.2, 0.9) * (8 if level in ("ERROR", "FATAL") else 1)
        event = now - rng.random() * span
        ts = datetime.fromtimestamp(event, UTC).isoformat(timespec="milliseconds")
        ts = ts.replace("+00:00", "Z")
        message = _message(rng, level, latency)
        doc = {
            "ts": ts,
            "level": level,
            "service": service,
            "host": rng.choice(HOSTS),
            "message": message,
            "trace_id": f"{rng.getrandbits(64):016x}",
            "latency_ms": round(latency, 2),
        }
        if rng.random() < 0.3:
            doc["user_id"] = rng.randint(1, 20000)
        if shape == "json":
            yield {"data": orjson.dumps(doc)}
        elif shape == "fields":
            yield {k: str(v) for k, v in doc.items()}
        else:
            yield {"line": _text_line(rng, doc, event)}


_SEVERITY = {"DEBUG": 7, "INFO": 6, "WARN": 4, "ERROR": 3, "FATAL": 2}
_AGENTS = ("curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0", "okhttp/4.12.0")


def _text_line(rng: random.Random, doc: dict[str, Any], event: float) -> str:
    """One plain-text line in a mix real hosts ship: RFC 3164 syslog (4 in 10), NCSA combined
    access logs (3 in 10), and `time LEVEL service: message` application lines (3 in 10)."""
    when = datetime.fromtimestamp(event, UTC)
    kind = rng.random()
    level, service, host = str(doc["level"]), str(doc["service"]), str(doc["host"])
    if kind < 0.4:
        pri = 16 * 8 + _SEVERITY[level]  # facility local0
        stamp = f"{when:%b} {when.day:2d} {when:%H:%M:%S}"
        return f"<{pri}>{stamp} {host} {service}[{rng.randint(100, 32000)}]: {doc['message']}"
    if kind < 0.7:
        status = 500 if level in ("ERROR", "FATAL") else 404 if level == "WARN" else 200
        method = rng.choice(METHODS)
        path = rng.choice(PATHS).replace("{id}", str(rng.randint(1, 99999)))
        return (
            f"203.0.113.{rng.randint(1, 254)} - - [{when:%d/%b/%Y:%H:%M:%S} +0000] "
            f'"{method} {path} HTTP/1.1" {status} {rng.randint(0, 50000)} "-" '
            f'"{rng.choice(_AGENTS)}" {float(doc["latency_ms"]) / 1000:.3f}'
        )
    return f"{doc['ts']} {level} {service}: {doc['message']}"


def _malformed(rng: random.Random) -> Fields:
    kind = rng.randrange(3)
    if kind == 0:
        return {"data": b"\xff\xfe not utf-8 \xc3"}
    if kind == 1:
        return {"data": '{"msg": "lone surrogate \\ud800"}'}
    return {"data": '{"a":' * 200 + "1" + "}" * 200}
