"""AWS Signature Version 4 for one request without a body (MinIO's ListenBucketNotification, S3 GetObject).

MinIO authenticates its S3 API with SigV4, as AWS does. Pulling boto3 into
the minio source (or the k8s trigger reading ``source.s3``) only to sign one
GET would cost ~0.3 s of import; the
algorithm is short and fully specified ("Signature Version 4 signing process"
in the AWS General Reference), so it is written out here. Pure functions;
the secret key never leaves :func:`sign_get`'s arguments.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import quote

__all__ = ["EMPTY_SHA256", "sign_get"]

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
"""``x-amz-content-sha256`` of an empty body."""


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def canonical_query(params: list[tuple[str, str]]) -> str:
    """Sorted, RFC 3986-encoded ``name=value`` pairs (also the query string sent)."""
    encoded = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in encoded)


def sign_get(host: str, path: str, params: list[tuple[str, str]], access_key: str, secret_key: str, *,
             region: str = "us-east-1", service: str = "s3", now: datetime | None = None) -> dict[str, str]:
    """The headers (``Host``, ``X-Amz-Date``, ``X-Amz-Content-Sha256``, ``Authorization``) of a signed GET."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    headers = {"host": host, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": stamp}
    signed = ";".join(sorted(headers))
    canonical = "\n".join([
        "GET", quote(path, safe="/-_.~"), canonical_query(params),
        "".join(f"{name}:{headers[name]}\n" for name in sorted(headers)), signed, EMPTY_SHA256,
    ])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret_key).encode(), day), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "Host": host,
        "X-Amz-Date": stamp,
        "X-Amz-Content-Sha256": EMPTY_SHA256,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, "
                         f"Signature={signature}",
    }
