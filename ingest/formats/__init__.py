"""What loglake knows of log formats, in one place (design §3).

- `levels` — level words and numbers, one table for every path;
- `times` — times written in text, time zones, years and dates inferred;
- `noise` — ANSI codes, byte-order marks, line ends;
- `text` — the text-format engine (declared patterns, read one way by both decode lanes);
- `builtin` — the built-in text formats, in the order they are tried;
- `jsondocs` — known JSON schemas (journald, ECS, CLEF, Docker, ...) mapped to the columns;
- `otlp` — OpenTelemetry log records;
- `registry` — the one entry point: a text line or a JSON document -> canonical document(s).

Everything here is pure and imports nothing heavy: `logs send`, `logs tail`, `logs receive` and
the decoders all read formats through it.
"""
