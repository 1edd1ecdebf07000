"""What `logs` answers before Typer is imported: `logs --version`, `logs --help`, and `logs sql`
with plain arguments.

People run `logs sql` dozens of times in a row, and importing Typer costs more than everything
else `logs` adds to DuckDB's own start-up (27 ms with bytecode cached, 55 ms in an environment
that never caches it: PYTHONDONTWRITEBYTECODE=1 and an installer that does not compile). So a
`logs sql` whose arguments are all options this table knows, written the plain way, is parsed
here and runs the same code the Typer command runs (cli/sqlcmd.py, behind the same error
edge). Anything else (`--help`, an unknown or repeated option, a value Typer would reject or
convert, a global option before `sql`, shell completion) returns None: Typer parses it and
answers it, errors included, exactly as it always did. tests/test_cli_fast.py holds this table
to the Typer command's declarations and the two paths' answers to each other.

`logs --help` prints cli/help.txt, Typer's own rendering of it (cli/root.py writes it; a test
keeps it current), on terminals at least 80 columns wide, where click's layout no longer
depends on the width; a narrower one gets Typer.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

SQL_OPTIONS: dict[str, tuple[str, int]] = {
    "--file": ("file", 1),
    "--param": ("param", 2),
    "-p": ("param", 2),
    "--since": ("since", 1),
    "--until": ("until", 1),
    "--live": ("live", 0),
    "--format": ("fmt", 1),
    "-F": ("fmt", 1),
    "--output": ("output", 1),
    "-o": ("output", 1),
    "--max-rows": ("max_rows", 1),
    "--no-header": ("no_header", 0),
    "--data-dir": ("data_dir", 1),
    "-d": ("data_dir", 1),
    "--lake-uri": ("lake_uri", 1),
    "--redis-url": ("redis_url", 1),
    "--stream": ("stream", 1),
    "--group": ("group", 1),
}
"""`logs sql`'s options: the parameter each sets, and how many values it takes (0: a flag)."""

_INTEGER = re.compile(r"-?[0-9]+")
_PATHS = ("file", "output", "data_dir")
_SETTINGS = ("data_dir", "lake_uri", "redis_url", "stream", "group")


def answer(argv: list[str]) -> int | None:
    """The exit code of a command answered here, or None to hand `argv` to Typer."""
    if "_LOGS_COMPLETE" in os.environ:
        return None  # shell completion: Typer's
    if argv == ["--version"]:
        print(versions())
        return 0
    if argv in (["--help"], ["-h"]) and shutil.get_terminal_size().columns >= 80:
        sys.stdout.write((Path(__file__).parent / "help.txt").read_text(encoding="utf-8"))
        return 0
    if argv[:1] != ["sql"]:
        return None
    parsed = parse_sql(argv[1:])
    if parsed is None:
        return None
    from ingest.cli import plain, sqlcmd

    plain.setup_logging()
    flags = {name: parsed.pop(name, None) for name in _SETTINGS}
    pairs = parsed.pop("param", [])
    query = parsed.pop("query", None)
    return plain.guard(
        lambda: sqlcmd.sql(
            plain.resolve(None, **flags).settings, query, params=dict(pairs), **parsed
        )
    )


def parse_sql(args: list[str]) -> dict[str, Any] | None:
    """`logs sql`'s arguments as the keywords of cli/sqlcmd.py's `sql` (plus the settings flags,
    `param` as pairs and `query`), or None when Typer should read them."""
    found: dict[str, Any] = {}
    pairs: list[tuple[str, str]] = []
    rest = iter(args)
    for token in rest:
        if _bad_text(token):
            return None  # Typer names the argument in its error
        if token == "-" or not token.startswith("-"):
            if "query" in found:
                return None
            found["query"] = token
            continue
        name, equals, attached = token.partition("=")
        spec = SQL_OPTIONS.get(name)
        if spec is None or (equals and not name.startswith("--")):
            return None  # --help, --, -Fcsv, an unknown option
        dest, count = spec
        if count == 0:
            if equals or dest in found:
                return None
            found[dest] = True
            continue
        if equals and count != 1:
            return None
        values = [attached] if equals else [v for _, v in zip(range(count), rest, strict=False)]
        if len(values) != count or any(v == "" or _bad_text(v) for v in values):
            return None  # missing: Typer's usage error; empty: whatever Typer makes of it
        if dest == "param":
            pairs.append((values[0], values[1]))
            continue
        if dest in found:
            return None  # repeated: Typer keeps the last one, and says nothing
        found[dest] = _convert(dest, values[0])
        if found[dest] is None:
            return None
    if pairs:
        found["param"] = pairs
    return found


def _convert(dest: str, value: str) -> Any:
    if dest in _PATHS:
        return Path(value)
    if dest == "max_rows":
        return int(value) if _INTEGER.fullmatch(value) else None
    if dest == "fmt":
        from queries.formats import Format

        chosen = value.casefold()
        return chosen if chosen in {f.value for f in Format} else None
    return value


def _bad_text(value: str) -> bool:
    """Not UTF-8 (Python passes such bytes on as lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def versions() -> str:
    """`logs --version`: ours and the main libraries' versions, and Python's."""
    import platform

    libraries = ("duckdb", "polars", "deltalake", "redis")
    found = _installed(("loglake", *libraries))
    parts = [f"{dist} {found[dist]}" for dist in libraries if found[dist]]
    parts.append(f"python {platform.python_version()}")
    return f"logs {found['loglake'] or 'dev'} ({', '.join(parts)})"


def _installed(dists: tuple[str, ...]) -> dict[str, str | None]:
    """Versions from the `NAME-VERSION.dist-info` folder names on sys.path (what an installer
    writes; importlib.metadata would parse every METADATA file, 10x slower), else from
    importlib.metadata."""
    found: dict[str, str | None] = {}
    for folder in sys.path:
        try:
            names = os.listdir(folder or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info") and "-" in name:
                dist, _, number = name[: -len(".dist-info")].partition("-")
                if dist.lower() in dists and dist.lower() not in found:
                    found[dist.lower()] = number
    for dist in dists:
        if dist not in found:
            from importlib.metadata import PackageNotFoundError, version

            try:
                found[dist] = version(dist)
            except PackageNotFoundError:
                found[dist] = None
    return found
