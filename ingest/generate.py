"""`logs gen`: realistic synthetic logs for the demo, tests and benchmarks.

About 20 services on 50 hosts, skewed levels, varied messages, trace ids and `latency_ms`,
event times spread over the last H hours. Deterministic for a given seed and `now`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson

from ingest.producer import Fields

SERVICES = [
    "api", "auth", "billing", "cart", "catalog", "checkout", "email", "frontend", "gateway",
    "inventory", "notifications", "orders", "payments", "pricing", "recommendations", "search",
    "shipping", "users", "worker", "scheduler",
]
HOSTS = [f"ip-10-0-{i // 10}-{10 + i}" for i in range(50)]
LEVELS = ["DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
LEVEL_WEIGHTS = [12, 74, 9, 4.8, 0.2]
PATHS = ["/v1/orders", "/v1/users/{id}", "/v1/cart", "/v1/search", "/healthz", "/v1/login",
         "/v1/payments", "/v1/items/{id}", "/v2/checkout", "/metrics"]
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


def _message(rng: random.Random, level: str, latency: float) -> str:
    template = rng.choice(TEMPLATES[level])
    return template.format(
        method=rng.choice(METHODS),
        path=rng.choice(PATHS).replace("{id}", str(rng.randint(1, 99999))),
        status=rng.choice([200, 200, 200, 201, 204, 301, 404]),
        ms=int(latency),
        key=f"k{rng.randint(1, 5000)}",
        hit=rng.choice(["true", "false"]),
        table=rng.choice(TABLES),
        n=rng.randint(1, 9),
        user=f"user{rng.randint(1, 20000)}",
        ip=f"203.0.113.{rng.randint(1, 254)}",
        order=f"ord_{rng.getrandbits(40):010x}",
        amount=f"{rng.uniform(5, 500):.2f}",
        job=f"job-{rng.randint(1, 999)}",
        peer=rng.choice(SERVICES),
        pct=rng.randint(80, 99),
    )


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
    service_weights = [1 / (i + 1) ** 0.8 for i in range(len(SERVICES))]
    for _ in range(count):
        if malformed and rng.random() < malformed:
            yield _malformed(rng)
            continue
        level = rng.choices(LEVELS, LEVEL_WEIGHTS)[0]
        service = rng.choices(SERVICES, service_weights)[0]
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
            yield {"line": f"{ts} {level} {service}: {message}"}


def _malformed(rng: random.Random) -> Fields:
    kind = rng.randrange(3)
    if kind == 0:
        return {"data": b"\xff\xfe not utf-8 \xc3"}
    if kind == 1:
        return {"data": '{"msg": "lone surrogate \\ud800"}'}
    return {"data": '{"a":' * 200 + "1" + "}" * 200}
