"""What real log text carries besides the log: ANSI colour codes, a byte-order mark, line ends.
Pure. The columnar text lane uses the same pattern with Polars (Rust's regex reads it alike)."""

from __future__ import annotations

import re

ANSI = r"\x1b\[[0-9;:?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\^_]"
"""CSI sequences (colours, cursor moves), OSC sequences (titles, links) and two-byte escapes."""
_ANSI = re.compile(ANSI)
BOM = "\ufeff"


def clean(text: str) -> str:
    """A text entry as the parsers read it: no leading BOM, no ANSI codes, no trailing CR/LF."""
    if text[:1] == BOM:
        text = text[1:]
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    return text.rstrip("\r\n")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text) if "\x1b" in text else text
