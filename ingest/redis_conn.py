"""Redis connections for loglake: the configured URL or the embedded server, sane timeouts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ingest import redis_server
from ingest.config import Settings, mask_url
from ingest.errors import RedisRefused, RedisUnavailable

if TYPE_CHECKING:
    import redis


def resolve_url(settings: Settings, start_embedded: bool = False) -> str:
    """LOGS_REDIS_URL, else the running embedded server (started first when asked to)."""
    if settings.redis_url:
        return settings.redis_url
    if start_embedded:
        url, _ = redis_server.start(settings.data_dir)
        return url
    running = redis_server.running_url(settings.data_dir)
    if running is None:
        raise RedisUnavailable(
            f"no Redis: set LOGS_REDIS_URL, or start the embedded one with `logs up` "
            f"(data dir {settings.data_dir})"
        )
    return running


def connect(url: str, block_ms: int = 1000, check: bool = True) -> redis.Redis:
    """A RESP2 client whose socket timeout stays well above the BLOCK time (redis-py 8 defaults
    to 5 s and retries, which strands entries in our pending list: we retry ourselves)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis.from_url(
        url,
        protocol=2,
        socket_timeout=block_ms / 1000 + 10,
        socket_connect_timeout=5,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )
    if check:
        try:
            client.ping()
        except redis.AuthenticationError:
            raise RedisRefused(f"Redis at {mask_url(url)} refused our credentials") from None
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise RedisUnavailable(f"cannot reach Redis at {mask_url(url)}: {exc}") from None
    return client
