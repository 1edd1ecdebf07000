"""The `logs` command line: a thin edge over ingest/ and queries/.

`main` is the `logs` program. It answers `logs --version` and a plain `logs sql` before Typer is
imported (cli/fast.py: Typer's import is a third of a short query's time); everything else,
`--help`, completion and every usage error included, goes to the Typer app (cli/root.py).
"""

from __future__ import annotations

import sys
from typing import Any


def main() -> None:
    from ingest.cli.fast import answer

    code = answer(sys.argv[1:])
    if code is not None:
        raise SystemExit(code)
    from ingest.cli.root import app

    app(prog_name="logs")


def __getattr__(name: str) -> Any:
    """`from ingest.cli import app`: the Typer app, imported when asked for."""
    if name == "app":
        from ingest.cli.root import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
