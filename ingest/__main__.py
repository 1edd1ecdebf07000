"""`python -m ingest` == `logs`."""

from ingest.cli import app

app(prog_name="logs")
