# The loglake image: the `logs` CLI with its locked dependencies. compose.yaml picks the
# subcommand per service; any other runs the same way:
#   docker compose run --rm ingest logs sql "select level, count(*) from logs group by 1"
FROM python:3.12-slim

ENV PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH="/app/.venv/bin:$PATH" \
    LOGS_DATA_DIR=/data

RUN pip install --no-cache-dir "uv>=0.8"

WORKDIR /app
# Dependencies first, in their own layer: rebuilt only when the lock file changes.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
COPY ingest ./ingest
COPY queries ./queries
RUN uv sync --locked --no-dev

# An unprivileged user owns the data volume (a fresh named volume copies this ownership).
RUN useradd --system --uid 10001 --home-dir /app loglake \
    && mkdir -p /data \
    && chown loglake /data
USER loglake
VOLUME ["/data"]

# No ENTRYPOINT: the command is the whole `logs ...` invocation, so `docker run IMAGE logs sql`
# and `docker compose run --rm ingest logs sql` both work.
CMD ["logs", "--help"]
