"""Scheduled lake jobs: compaction, rollups, retention and maintenance, and the scheduler
that runs them under a Redis lease."""
