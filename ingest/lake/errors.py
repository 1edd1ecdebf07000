"""What a failure to reach the lake means, in one line a user can act on: a missing bucket,
refused credentials, an unreachable endpoint, or the library's first line, never a secret
(storage secrets and URL query strings, e.g. Azure SAS signatures, are scrubbed).
"""

from __future__ import annotations

import os
import re

from ingest.errors import DataUnavailable, flat
from ingest.lake.location import Lake, secret_values

_MISSING_BUCKET = (
    "NoSuchBucket",
    "bucket does not exist",
    "ContainerNotFound",
    "container does not exist",
)
_REFUSED = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "Access Denied",
    "AuthenticationFailed",
    "AuthorizationFailure",
    "AuthorizationPermissionMismatch",
    "InvalidClientTokenId",
    "ExpiredToken",
    "403 Forbidden",
    "401 Unauthorized",
    "PermissionDenied",
)
_UNREACHABLE = (
    "error sending request",
    "Connection refused",
    "connection refused",
    "dns error",
    "operation timed out",
    "tcp connect error",
    "Connection reset",
    "client error (Connect)",
)
_MALFORMED_KEY = ("Invalid Access Key",)  # an Azure account key that is not base64
_PLAIN_HTTP = ("URL scheme is not allowed",)  # an http:// endpoint without *_ALLOW_HTTP
_ALLOW_HTTP = {"s3": "AWS_ALLOW_HTTP", "s3a": "AWS_ALLOW_HTTP", "gs": "GOOGLE_ALLOW_HTTP"}
_QUERY = re.compile(r"\?[^\s\"'<>]*")
_CREDENTIAL_HINTS = {
    "s3": "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)",
    "s3a": "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)",
    "gs": "check GOOGLE_APPLICATION_CREDENTIALS / GOOGLE_SERVICE_ACCOUNT",
}
_AZURE_CREDENTIALS = "check AZURE_STORAGE_ACCOUNT_NAME / AZURE_STORAGE_ACCOUNT_KEY"
_ENDPOINT_VARIABLES = {"s3": "AWS_ENDPOINT_URL", "s3a": "AWS_ENDPOINT_URL", "gs": "GOOGLE_BASE_URL"}


def scrub(text: str, lake: Lake | None = None) -> str:
    """`text` without secret storage values or URL query strings."""
    text = _QUERY.sub("?***", text)
    if lake is not None:
        for secret in secret_values(lake):
            text = text.replace(secret, "***")
    return text


def storage_error(exc: BaseException, lake: Lake, doing: str = "") -> DataUnavailable:
    """`exc` (deltalake, obstore, Polars, pyarrow) as one line with exit code 3."""
    text = str(exc)
    where = lake.display()
    what = f"{doing}: " if doing else ""
    bucket = lake.uri.split("://", 1)[-1].split("/", 1)[0]
    if any(marker in text for marker in _MISSING_BUCKET):
        return DataUnavailable(
            f"{what}the bucket or container {bucket!r} of the lake {where} does not exist",
            hint="create it first, or fix lake_uri",
        )
    if any(marker in text for marker in _REFUSED):
        return DataUnavailable(
            f"{what}the object store refused our credentials for the lake {where}",
            hint=_CREDENTIAL_HINTS.get(lake.scheme, _AZURE_CREDENTIALS),
        )
    if any(marker in text for marker in _MALFORMED_KEY):
        return DataUnavailable(
            f"{what}the storage account key for the lake {where} is not valid (not base64)",
            hint=_AZURE_CREDENTIALS,
        )
    if any(marker in text for marker in _PLAIN_HTTP):
        endpoint = endpoint_of(lake)
        allow = _ALLOW_HTTP.get(lake.scheme, "AZURE_ALLOW_HTTP")
        return DataUnavailable(
            f"{what}the endpoint{f' {endpoint}' if endpoint else ''} of the lake {where} is "
            "plain http, which the object store client refuses unless allowed",
            hint=f"set {allow}=true (environment or [storage]) for a local server, or use https",
        )
    if any(marker in text for marker in _UNREACHABLE):
        endpoint = endpoint_of(lake)
        variable = _ENDPOINT_VARIABLES.get(lake.scheme, "AZURE_STORAGE_ENDPOINT")
        return DataUnavailable(
            f"{what}cannot reach the object store{f' at {endpoint}' if endpoint else ''} "
            f"for the lake {where}",
            hint=f"check the endpoint ({variable}) and the network",
        )
    # The library's first line is often only "Generic S3 error": the causes chained on the
    # lines after it say what went wrong, so they are kept (on one line).
    causes = flat(text) or type(exc).__name__
    return DataUnavailable(f"{what}cannot use the lake {where}: {scrub(causes, lake)[:300]}")


def endpoint_of(lake: Lake) -> str | None:
    """The endpoint the lake is reached at, when one is configured (not a secret)."""
    names = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT", "AZURE_STORAGE_ENDPOINT", "GOOGLE_BASE_URL")
    options = {k.upper(): v for k, v in lake.options}
    for name in names:
        value = os.environ.get(name) or options.get(name)
        if value:
            return scrub(value)
    return None
