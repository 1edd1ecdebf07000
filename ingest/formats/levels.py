"""Level words and numbers -> TRACE DEBUG INFO WARN ERROR FATAL (design §3). Pure.

One table for every path: JSON and field entries, text headers, OTLP severity numbers,
`logs tail --level`. Unknown words are kept, upper-cased; a missing level is INFO.
"""

from __future__ import annotations

from typing import Any

LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
"""Known levels, least to most severe."""

LEVEL_WORDS = {
    "TRACE": "TRACE",
    "FINEST": "TRACE",  # java.util.logging
    "FINER": "TRACE",
    "VERBOSE": "TRACE",  # Serilog, Android's V
    "DEBUG": "DEBUG",
    "DBG": "DEBUG",
    "FINE": "DEBUG",
    "CONFIG": "DEBUG",
    "INFO": "INFO",
    "INFORMATION": "INFO",
    "INFORMATIONAL": "INFO",
    "NOTICE": "INFO",
    "INF": "INFO",
    "DEFAULT": "INFO",  # Google Cloud's "no severity given"
    "WARN": "WARN",
    "WARNING": "WARN",
    "WRN": "WARN",
    "ERR": "ERROR",
    "ERROR": "ERROR",
    "ERRO": "ERROR",
    "SEVERE": "ERROR",  # java.util.logging, BGL
    "FAILURE": "ERROR",
    "FATAL": "FATAL",
    "CRIT": "FATAL",
    "CRITICAL": "FATAL",
    "ALERT": "FATAL",
    "EMERG": "FATAL",
    "EMERGENCY": "FATAL",
    "PANIC": "FATAL",
    "LOG": "INFO",  # PostgreSQL
}
LEVEL_WORDS.update({f"TRACE{n}": "TRACE" for n in range(1, 9)})  # Apache httpd 2.4
LEVEL_WORDS.update({f"DEBUG{n}": "DEBUG" for n in range(1, 6)})  # PostgreSQL

LEVEL_NUMBERS = {
    0: "FATAL",
    1: "FATAL",
    2: "FATAL",
    3: "ERROR",
    4: "WARN",
    5: "INFO",
    6: "INFO",
    7: "DEBUG",
    10: "TRACE",
    20: "DEBUG",
    30: "INFO",
    40: "WARN",
    50: "ERROR",
    60: "FATAL",
}
"""Syslog severities 0-7 (RFC 5424) and pino/bunyan levels 10-60."""

LEVEL_LETTERS = {"V": "TRACE", "T": "TRACE", "D": "DEBUG", "I": "INFO", "N": "INFO"}
LEVEL_LETTERS.update({"W": "WARN", "E": "ERROR", "F": "FATAL", "A": "FATAL", "C": "FATAL"})
"""Single letters where a format defines them: klog I/W/E/F, Android V/D/I/W/E/F/A, Ruby's
Logger D/I/W/E/F, syslog-ng's and others' initials."""

LEVEL_FAST = {
    variant: level
    for word, level in LEVEL_WORDS.items()
    for variant in (word, word.lower(), word.capitalize())
}
"""Every word in the three cases real logs write it: one dict lookup on the hot path."""
LEVEL_FAST.update({str(n): level for n, level in LEVEL_NUMBERS.items()})  # journald PRIORITY

SEVERITY_NUMBERS = {n: LEVELS[min((n - 1) // 4, 5)] for n in range(1, 25)}
"""OpenTelemetry SeverityNumber 1-24: TRACE 1-4, DEBUG 5-8, INFO 9-12, WARN 13-16, ERROR 17-20,
FATAL 21-24."""


def normalize_level(value: Any) -> str:
    if value is None:
        return "INFO"
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, int | float):
        if value == int(value) and int(value) in LEVEL_NUMBERS:
            return LEVEL_NUMBERS[int(value)]
        return str(value)
    text = str(value).strip()
    word = LEVEL_WORDS.get(text.upper())
    if word is not None:
        return word
    if text.isdecimal() and int(text) in LEVEL_NUMBERS:
        return LEVEL_NUMBERS[int(text)]
    return text.upper() if text else "INFO"
