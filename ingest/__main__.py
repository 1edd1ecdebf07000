"""`python -m ingest` == `logs`."""

from ingest.cli import main

main()
