"""The few HTTP types the protocol modules share: a request with its body already read and
inflated, a reply, and a route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

if TYPE_CHECKING:
    from ingest.receive.problems import Problem
    from ingest.receive.sink import Sink


@dataclass
class Request:
    method: str
    path: str
    raw_query: bytes
    headers: dict[str, str]
    """Lower-cased names; a repeated header keeps its last value."""
    client: str
    body: bytes = b""
    size: int = 0
    """Body bytes as sent (before inflating), for the metrics."""
    body_started: bool = False
    """The app began reading the body (a refusal before that drops what the client sends)."""

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.raw_query.decode("latin-1"), keep_blank_values=True))


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    records: int = 0
    """Records the request carried into the stream (for the metrics)."""


@dataclass(frozen=True)
class Limits:
    max_body: int
    max_records: int
    max_entry_bytes: int
    es_version: str
    max_json_depth: int = 64


@dataclass
class Context:
    """What a handler may use: the sink and the limits."""

    sink: Sink
    limits: Limits


Handler = Callable[[Request, Context], Awaitable[Reply]]
Renderer = Callable[["Problem", Request], Reply]


@dataclass(frozen=True)
class Route:
    protocol: str
    handler: Handler
    render: Renderer
    """The protocol's own form of an error answer."""
    writes: bool = True
    """Reads a body (within the limits) and XADDs..."""
    backpressure: bool = True
    """...and is refused while ingest is behind (not so for HEC's ack queries)."""
    public: bool = False
    """Answered without a token (health checks, CORS/driver probes)."""
    own_snappy: bool = False
    """The body is snappy-framed by the protocol itself: `Content-Encoding: snappy` is not
    decoded again by the app (Loki protobuf clients send that header on snappy bodies)."""
