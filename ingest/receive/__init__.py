"""`logs receive`: an HTTP front door for the shippers people already run.

OTLP/HTTP logs, the Elasticsearch `_bulk` API, Splunk HEC, Loki push and NDJSON, each turned
into stream entries in the canonical shape and XADDed before the client gets its answer.

- `app` — the ASGI application: routing, auth, limits, metrics, the access log;
- `server` — sockets, bind rules, uvicorn, graceful stop;
- `sink` — pipelined, all-or-nothing XADDs of one request, and backpressure;
- `body` — request bodies read and inflated within the size limit;
- `auth` — tokens in every header form the shippers use;
- `entries` — canonical documents and the stream entries that carry them;
- `otlp`, `elastic`, `hec`, `loki`, `ndjson` — one module per protocol;
- `metrics` — the `loglake_receive_*` counters and histograms.
"""
