"""logfmt (`time=... level=info msg="hello world" user=bob n=42`) -> the JSON text it stands for.

A logfmt line is read by turning it into a JSON object's text and decoding that as any JSON
entry is decoded, so every key is mapped to the columns by the same aliases, and the columnar
lane can make the same JSON text with Polars and hand it to its JSON reader. Quoted values stay
strings (their escapes must be JSON's); bare numbers become numbers (up to 15 digits a part, so
none is rounded), `true`/`false` booleans, any other bare word a string. A line is logfmt only
when it is two pairs or more and nothing else.
"""

from __future__ import annotations

import re

KEY = r"[A-Za-z_@][A-Za-z0-9_@./-]{0,127}"
QUOTED = r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'
BARE = r'[^ "\\=\x00-\x1f\x7f]*'
PAIR = rf"{KEY}=(?:{QUOTED}|{BARE})"
LINE = rf"{PAIR}(?: +{PAIR})+ *"
"""A whole logfmt line (matched to its end)."""
NUMBER = r"-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,15})?"

_LINE = re.compile(LINE)
_PAIR = re.compile(rf"({KEY})=({QUOTED}|{BARE})")
_NUMBER = re.compile(NUMBER)


def to_json(line: str) -> str | None:
    """The JSON object text of a logfmt line (with `"_format":"logfmt"` first), or None."""
    if "=" not in line or _LINE.fullmatch(line) is None:
        return None
    parts = ['{"_format":"logfmt"']
    for key, value in _PAIR.findall(line):
        if value[:1] == '"' or value in ("true", "false") or _NUMBER.fullmatch(value):
            parts.append(f'"{key}":{value}')
        else:
            parts.append(f'"{key}":"{value}"')
    return ",".join(parts) + "}"
