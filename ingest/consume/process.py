"""The `logs ingest` process: Redis checked (or waited for), signals, Arrow's allocator, the
metrics server beside the consumer (consumer.py)."""

from __future__ import annotations

import gc
import logging

from ingest.config import Settings
from ingest.consume.consumer import Consumer, stopping
from ingest.consume.memory import arrow_from_malloc, pause_gc
from ingest.consume.stats import Stats
from ingest.errors import RedisRefused, RedisUnavailable
from ingest.redis_conn import connect, resolve_url
from ingest.signals import StopSignal

log = logging.getLogger("logs.ingest")


def run(settings: Settings, drain: bool = False, install_signals: bool = True) -> Stats:
    """Entry point of `logs ingest`."""
    # Off from here, not only in Consumer.run: the imports below (Redis, Arrow, Delta, then
    # Polars) allocate enough for the collector to cost them ~10 % too.
    gc_was_on = pause_gc()
    try:
        url = resolve_url(settings)  # no URL and no embedded server: nothing to wait for
        down = None
        try:
            connect(url, settings.block_ms).close()
        except RedisRefused:
            raise
        except RedisUnavailable as exc:
            if drain:
                raise  # scripts want an answer now
            down = exc
        stop = StopSignal(on_first=stopping)
        if install_signals:
            stop.install()
        arrow_from_malloc()
        consumer = Consumer(settings, drain=drain, stop=stop)
        if down is not None:
            log.warning("%s; waiting for it, retrying with backoff (--drain exits 3)", down)
            consumer.start_without_redis()
        if settings.metrics_port is None:
            return consumer.run()
        from ingest.consume import metrics

        server = metrics.serve(settings.metrics_port, settings, lambda: consumer.stats)
        consumer.on_commit = server.on_commit
        log.info("consumer %s: metrics on %s/metrics", settings.consumer, server.url)
        try:
            return consumer.run()
        finally:
            server.close()
    finally:
        if gc_was_on:
            gc.enable()
