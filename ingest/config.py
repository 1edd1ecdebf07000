"""Settings: flags > `LOGS_*` environment > `logs.toml` > defaults, with the source of every value.

Pure (stdlib only), so the read path and `logs --help` can import it for free.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ingest.errors import ConfigError

ENV_PREFIX = "LOGS_"


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = None
    """Redis URL (`redis://[:password@]host:port/db`). Unset: the embedded server (data/redis)."""
    data_dir: Path = Path("data")
    """This host's folder: the embedded Redis files, spill files, and the lake by default."""
    lake_uri: str | None = None
    """Where the lake lives: a directory, or s3://bucket/prefix, az://container/prefix
    (abfss://container@account.dfs.core.windows.net/prefix), gs://bucket/prefix.
    Unset: <data_dir>/lake."""
    storage: tuple[tuple[str, str], ...] = ()
    """Object-store options from logs.toml `[storage]` (e.g. AWS_REGION, AWS_ENDPOINT_URL);
    the AWS_*, AZURE_*, GOOGLE_* environment variables are read too and win over it."""
    stream: str = "logs"
    """Redis Stream the producers write to."""
    group: str = "lake"
    """Consumer group `logs ingest` reads with."""
    consumer: str = field(default_factory=lambda: f"{os.uname().nodename}-{os.getpid()}")
    """Consumer name inside the group; give each ingest process slot a stable one."""
    read_count: int = 10_000
    """Entries per XREADGROUP call; capped at batch_rows."""
    block_ms: int = 1000
    """XREADGROUP BLOCK time; the socket timeout is set well above it."""
    batch_rows: int = 75_000
    """Flush (one Delta commit) once this many entries are buffered (reads ask for no more, so a
    commit holds about this many)..."""
    batch_bytes: int = 64 * 1024 * 1024
    """...or this many bytes of entry payload..."""
    batch_age: float = 2.0
    """...or once the oldest buffered row is this many seconds old (an idle stream flushes too)."""
    claim_idle: float = 60.0
    """Seconds an entry must sit unacknowledged in another consumer before we claim it."""
    max_deliveries: int = 5
    """An entry delivered more often than this goes to the dead-letter stream."""
    max_entry_bytes: int = 1024 * 1024
    """Entries larger than this are dead-lettered."""
    max_json_depth: int = 64
    """JSON nested deeper than this is dead-lettered."""
    format: str = "table"
    """Default output format of `logs sql`."""
    compact_interval: float = 300.0
    """Seconds between compaction runs of `logs schedule`."""
    compact_grace: float = 600.0
    """An hour is closed (compactable) this many seconds after it ends."""
    target_file_size: int = 128 * 1024 * 1024
    """Target Parquet file size written by compaction, bytes."""
    rollup_minute: int = 5
    """Hourly rollups run at this minute past every hour."""
    nightly_at: str = "00:30"
    """UTC time of the nightly daily rollups and retention."""
    retention_days: int = 30
    """Raw partitions older than this are deleted."""
    rollup_retention_days: int = 400
    """Rollup partitions older than this are deleted."""
    vacuum_retention_hours: float = 1.0
    """Files removed from the table are deleted from disk only after this long."""
    maintain_interval: float = 3600.0
    """Seconds between maintenance runs (vacuum, checkpoint, log cleanup)."""
    lease_ttl: float = 30.0
    """Seconds the scheduler's Redis lease lasts unless renewed."""
    metrics_port: int | None = None
    """Serve Prometheus metrics on this port when set."""
    timezone: str = "UTC"
    """IANA zone naive times in log lines are read in (e.g. Europe/Berlin)."""
    parsers: tuple[tuple[str, str, str | None], ...] = ()
    """Your own text formats, from logs.toml `[parsers.NAME]` tables (pattern, time_format);
    tried before the built-in ones."""
    receive_tokens: str | None = None
    """`logs receive`: comma-separated tokens a client must present (Bearer, Basic, ApiKey,
    Splunk). Never printed. Unset: the receiver listens on 127.0.0.1 only."""
    receive_host: str | None = None
    """`logs receive`: address to listen on. Default: 0.0.0.0 with tokens, else 127.0.0.1."""
    receive_allow_open: bool = False
    """`logs receive`: allow listening beyond loopback without tokens (anyone can write)."""
    receive_otlp_port: int = 4318
    """`logs receive`: OTLP/HTTP port (0: not served). Every port serves every protocol's paths."""
    receive_elastic_port: int = 9200
    """`logs receive`: Elasticsearch `_bulk` port (0: not served)."""
    receive_hec_port: int = 8088
    """`logs receive`: Splunk HEC port (0: not served)."""
    receive_loki_port: int = 3100
    """`logs receive`: Loki push port, also the NDJSON `/ingest` one (0: not served)."""
    receive_max_lag: int = 1_000_000
    """`logs receive`: answer "retry later" while the group's lag or the stream's length is above
    this (ingest is behind or not running)."""
    receive_max_body: int = 32 * 1024 * 1024
    """`logs receive`: largest request body, bytes, after decompression (413 above)."""
    receive_max_records: int = 100_000
    """`logs receive`: most records in one request (413 above)."""
    receive_es_version: str = "8.17.0"
    """`logs receive`: Elasticsearch version the `_bulk` shim claims (Filebeat checks it)."""

    @property
    def dlq_stream(self) -> str:
        from ingest import keys

        return keys.dlq(self.stream)

    def masked_redis_url(self) -> str:
        return mask_url(self.redis_url) if self.redis_url else "(embedded)"

    @property
    def lake_location(self) -> str:
        """The lake's URI or directory as given (default `<data_dir>/lake`)."""
        return self.lake_uri if self.lake_uri else str(self.data_dir / "lake")


FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


@dataclass(frozen=True)
class Resolved:
    settings: Settings
    sources: dict[str, str]
    """Field name -> `flag`, `env LOGS_X`, `file PATH` or `default`."""


def mask_url(url: str) -> str:
    """`redis://user:secret@host/0` -> `redis://user:***@host/0`; never show a password."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _coerce(name: str, raw: Any, origin: str) -> Any:
    f = FIELDS[name]
    kind = str(f.type)
    if raw is None:
        return None
    if name == "parsers":
        return _parsers(raw, origin)
    if name == "storage":
        return _storage(raw, origin)
    try:
        if name == "data_dir":
            return Path(os.path.expanduser(str(raw)))
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind.startswith("int"):
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        if isinstance(raw, list) and name == "receive_tokens":
            return ",".join(str(item) for item in raw)  # a TOML array of tokens
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{origin}: {name} must be {kind.split(' ')[0]}, got {raw!r}") from None


def _parsers(raw: Any, origin: str) -> tuple[tuple[str, str, str | None], ...]:
    """`[parsers.NAME]` tables -> (name, pattern, time_format) triples, checked for shape."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: parsers must be a table of [parsers.NAME] tables")
    out = []
    for name, spec in raw.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("pattern"), str):
            raise ConfigError(f"{origin}: parsers.{name} needs a pattern (a regex string)")
        unknown = set(spec) - {"pattern", "time_format"}
        if unknown:
            raise ConfigError(f"{origin}: parsers.{name}: unknown key {sorted(unknown)[0]!r}")
        time_format = spec.get("time_format")
        if time_format is not None and not isinstance(time_format, str):
            raise ConfigError(f"{origin}: parsers.{name}.time_format must be a string")
        out.append((str(name), spec["pattern"], time_format))
    return tuple(out)


SECRET_WORDS = ("secret", "key", "token", "password", "sas", "credential", "signature")
"""A storage option whose name holds one of these is a secret: never printed."""
LAKE_SCHEMES = ("s3", "s3a", "az", "abfs", "abfss", "adl", "azure", "gs", "file")


def is_secret_option(name: str) -> bool:
    lowered = name.lower()
    if lowered.endswith(("key_id", "_id", "_url", "_endpoint", "endpoint", "region")):
        return "secret" in lowered
    return any(word in lowered for word in SECRET_WORDS)


def _storage(raw: Any, origin: str) -> tuple[tuple[str, str], ...]:
    """`[storage]`: object-store options, names as deltalake and Polars take them."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: storage must be a table of NAME = value options")
    out = []
    for name, value in raw.items():
        if isinstance(value, dict | list):
            raise ConfigError(f"{origin}: storage.{name} must be a string, number or boolean")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        out.append((str(name), text))
    return tuple(out)


def _config_path(explicit: str | None, env: dict[str, str]) -> Path | None:
    if explicit:
        return Path(explicit)
    if env.get("LOGS_CONFIG"):
        return Path(env["LOGS_CONFIG"])
    local = Path("logs.toml")
    return local if local.is_file() else None


def _read_file(path: Path) -> dict[str, Any]:
    import tomllib  # only with a config file: ~1.5 ms of every command's start otherwise

    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    flat: dict[str, Any] = {}
    # Sections ([redis], [ingest], [schedule], ...) are for the reader's eye only; [parsers]
    # holds a table per format.
    for key, value in raw.items():
        if key in ("parsers", "storage"):
            flat[key] = value
            continue
        items = value.items() if isinstance(value, dict) else [(key, value)]
        for name, v in items:
            if name not in FIELDS:
                import difflib

                close = difflib.get_close_matches(name, FIELDS, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"config file {path}: unknown setting {name!r}{hint}")
            flat[name] = v
    return flat


def load(
    flags: dict[str, Any] | None = None,
    config_file: str | None = None,
    env: dict[str, str] | None = None,
) -> Resolved:
    """Resolve every setting; `flags` holds only the options the user actually passed."""
    env = dict(os.environ) if env is None else env
    values: dict[str, Any] = {}
    sources: dict[str, str] = {name: "default" for name in FIELDS}
    path = _config_path(config_file, env)
    if path is not None:
        for name, raw in _read_file(path).items():
            values[name] = _coerce(name, raw, f"config file {path}")
            sources[name] = f"file {path}"
    for name in FIELDS:
        if name in ("parsers", "storage"):
            continue  # a table: logs.toml only
        var = ENV_PREFIX + name.upper()
        if env.get(var, "") != "":
            values[name] = _coerce(name, env[var], var)
            sources[name] = f"env {var}"
    for name, raw in (flags or {}).items():
        if raw is None:
            continue
        values[name] = _coerce(name, raw, f"--{name.replace('_', '-')}")
        sources[name] = "flag"
    settings = Settings(**values)
    _validate(settings)
    if settings.read_count > settings.batch_rows:
        # Ingest weighs its batch after each read: a read larger than a batch would make every
        # commit a whole read (--batch-rows 1000 gave 10,000-row commits).
        sources["read_count"] += f": {settings.read_count} capped at batch_rows"
        settings = dataclasses.replace(settings, read_count=settings.batch_rows)
    return Resolved(settings, sources)


def _validate(s: Settings) -> None:
    positive = (
        "read_count",
        "batch_rows",
        "batch_bytes",
        "max_deliveries",
        "max_entry_bytes",
        "max_json_depth",
        "compact_interval",
        "maintain_interval",
        "lease_ttl",
        "target_file_size",
        "retention_days",
        "rollup_retention_days",
        "receive_max_lag",
        "receive_max_body",
        "receive_max_records",
    )
    for name in positive:
        if getattr(s, name) <= 0:
            raise ConfigError(f"{name} must be positive, got {getattr(s, name)}")
    if not 0 <= s.rollup_minute <= 59:
        raise ConfigError(f"rollup_minute must be 0-59, got {s.rollup_minute}")
    if s.compact_grace < 0 or s.vacuum_retention_hours < 0:
        raise ConfigError("compact_grace and vacuum_retention_hours must not be negative")
    if s.block_ms < 0 or s.batch_age <= 0 or s.claim_idle <= 0:
        raise ConfigError("block_ms, batch_age and claim_idle must be positive")
    if s.timezone != "UTC":  # the default needs no zone database (start-up of every command)
        from ingest.formats.times import check_timezone

        check_timezone(s.timezone)
    for name in (
        "receive_otlp_port",
        "receive_elastic_port",
        "receive_hec_port",
        "receive_loki_port",
    ):
        if not 0 <= getattr(s, name) <= 65535:
            raise ConfigError(f"{name} must be 0-65535, got {getattr(s, name)}")
    if s.lake_uri is not None:
        _check_lake_uri(s.lake_uri)
    if s.redis_url is not None and not s.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(
            f"redis_url must start with redis://, rediss:// or unix://, got {mask_url(s.redis_url)}"
        )


def _check_lake_uri(uri: str) -> None:
    if not uri.strip():
        raise ConfigError("lake_uri must not be empty")
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return  # a directory
    if scheme.lower() not in LAKE_SCHEMES:
        raise ConfigError(
            f"lake_uri: unknown scheme {scheme}:// in {mask_url(uri)}",
            hint="use a directory, s3://bucket/prefix, az://container/prefix or gs://bucket/prefix",
        )
    if scheme.lower() != "file" and not rest.split("/", 1)[0]:
        raise ConfigError(f"lake_uri: no bucket or container in {mask_url(uri)}")
