"""The lake on disk: where tables and partitions live (layout), the row schemas, what the
Delta log says of each hour (state), and the one place rows are committed (writer).
`queries/` reads through this package."""
