"""Tokens, in every form the shippers send them. Tokens are compared in constant time and never
logged or echoed.

`Authorization: Bearer <t>` (OTLP exporters, Loki clients), `Splunk <t>` (HEC), `ApiKey <t>`
(Elasticsearch clients: the token itself, or base64 of `id:<t>` as Elasticsearch issues keys),
`Basic base64(user:<t>)` (any client with a username and password: the password is the token;
a token given as the username alone, or as `user:password` whole, is accepted too).
"""

from __future__ import annotations

import base64
import binascii
import hmac

from ingest.receive.problems import Forbidden, Unauthorized


def parse_tokens(raw: str | None) -> tuple[bytes, ...]:
    """`receive_tokens` (comma-separated) -> the tokens, empty ones dropped."""
    if not raw:
        return ()
    return tuple(t.strip().encode() for t in raw.split(",") if t.strip())


def _candidates(header: str) -> list[bytes]:
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    scheme = scheme.lower()
    if not value:
        raise Unauthorized("malformed Authorization header", "malformed")
    if scheme in ("bearer", "splunk"):
        return [value.encode()]
    if scheme in ("basic", "apikey"):
        found = [value.encode()] if scheme == "apikey" else []
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            if found:
                return found
            raise Unauthorized("malformed Basic credentials", "malformed") from None
        user, colon, secret = decoded.partition(b":")
        if colon:
            found += [secret, user, decoded]
        else:
            found.append(decoded)
        return found
    raise Unauthorized(
        "unsupported Authorization scheme (Bearer, Basic, ApiKey or Splunk)", "malformed"
    )


def check(tokens: tuple[bytes, ...], header: str | None) -> None:
    """Pass, or raise `Unauthorized` (no or unreadable credentials) / `Forbidden` (no match)."""
    if not tokens:
        return
    if not header:
        raise Unauthorized("credentials are required", "missing")
    matched = False
    for candidate in _candidates(header):
        for token in tokens:
            # No early exit: the time taken does not say which token came close.
            matched |= hmac.compare_digest(candidate, token)
    if not matched:
        raise Forbidden("invalid token")
