"""`logs ingest`: the loop that reads the stream with a consumer group, its collaborators
(the Redis side, the batch, the committer) and the columnar decode lanes."""
