"""A client TLS context from Argo's ``TLSConfig`` (CA, client cert and key from Secrets), for broker sources.

Argo's ``tls`` block names Secrets holding PEM text: ``caCertSecret``,
``clientCertSecret`` + ``clientKeySecret`` (both or neither),
``insecureSkipVerify`` and ``enabled`` (TLS with the system CAs when nothing else is set). The CA goes in as data; Python can load a client
certificate only from files, so cert and key are written to a private
temporary directory that is removed as soon as they are loaded. Secret values
never appear in an error message.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from typing import Any

from knevents import errors
from knevents.secrets import SecretResolver
from knevents.sources import common

__all__ = ["client_context"]


def client_context(tls: Any, secrets: SecretResolver, where: str) -> ssl.SSLContext | None:
    """The context for ``tls`` (``None`` when the block is absent or empty); SpecError/SecretError when unusable."""
    if tls is None:
        return None
    ca, cert, key = tls.ca_cert_secret, tls.client_cert_secret, tls.client_key_secret
    skip = bool(tls.insecure_skip_verify)
    if ca is None and cert is None and key is None and not skip and not getattr(tls, "enabled", None):
        return None  # Argo refuses an empty block; ``enabled: true`` alone is TLS against the system CAs
    if (cert is None) != (key is None):
        raise errors.SpecError(f"{where}: clientCertSecret and clientKeySecret go together")
    context = ssl.create_default_context()
    if skip:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        if ca is not None:
            context.load_verify_locations(cadata=common.read_secret(secrets, ca, f"{where}.caCertSecret"))
        if cert is not None and key is not None:
            _load_chain(context, common.read_secret(secrets, cert, f"{where}.clientCertSecret"),
                        common.read_secret(secrets, key, f"{where}.clientKeySecret"))
    except ssl.SSLError as exc:
        raise errors.SpecError(f"{where}: the certificate or key is not valid PEM ({exc.reason})") from None
    return context


def _load_chain(context: ssl.SSLContext, cert: str, key: str) -> None:
    with tempfile.TemporaryDirectory(prefix="knevents-tls-") as tmp:
        paths = []
        for name, text in (("cert.pem", cert), ("key.pem", key)):
            path = os.path.join(tmp, name)
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
                out.write(text)
            paths.append(path)
        context.load_cert_chain(paths[0], paths[1])
