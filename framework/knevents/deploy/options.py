"""What the user chooses when rendering: image, namespace, NATS URL, delivery defaults.

Flags of ``knevents render`` map one-to-one onto :class:`RenderOptions`. The
defaults are chosen so that the output applies as-is on a cluster prepared
with the base manifests in ``knative/`` (a ``knevents-nats`` Service in the
namespace, the ``default`` Broker).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_IMAGE", "DEFAULT_NATS_URL", "NATS_CREDS_KEY", "RenderOptions"]

NATS_CREDS_KEY = "nats.creds"
"""The key of ``--nats-credentials-secret`` that holds the credentials file."""
NATS_CREDS_DIR = "/var/run/secrets/knevents"
"""Where Secrets are mounted (``SecretSettings.secrets_dir``)."""

DEFAULT_IMAGE = "ghcr.io/knevents/knevents:0.1.0"
"""The image built from ``functions/Dockerfile``; override with ``--image``."""

DEFAULT_NATS_URL = "nats://knevents-nats:4222"
"""The ``knevents-nats`` Service from ``knative/`` (an ExternalName to the NATS cluster)."""


@dataclass(frozen=True)
class RenderOptions:
    """Choices that apply to every rendered object."""

    namespace: str | None = None
    """``--namespace``: overrides each manifest's ``metadata.namespace`` (else it, else ``default``)."""
    image: str = DEFAULT_IMAGE
    """``--image``: the knevents function image."""
    nats_url: str = DEFAULT_NATS_URL
    """``--nats-url``: where sensors keep their dependency state (``KNEVENTS_NATS_URL``)."""
    nats_credentials_secret: str | None = None
    """``--nats-credentials-secret``: a Secret whose key ``nats.creds`` is a NATS credentials file (user JWT +
    nkey seed); mounted into every function that connects to NATS, named by ``KNEVENTS_NATS_CREDS``."""

    def nats_env(self) -> dict[str, str]:
        """The environment a function that connects to NATS gets: the URL and, when set, the credentials file."""
        env = {"KNEVENTS_NATS_URL": self.nats_url}
        if self.nats_credentials_secret:
            env["KNEVENTS_NATS_CREDS"] = f"{NATS_CREDS_DIR}/{self.nats_credentials_secret}/{NATS_CREDS_KEY}"
        return env
    dead_letter_sink: str | None = None
    """``--dead-letter-sink``: default DLQ for every sensor's Triggers (URI or Knative Service name);
    a sensor's ``events.knevents.io/dead-letter-sink`` annotation overrides it."""
    retry: int = 5
    """``--retry``: broker redeliveries to a sensor before dead-lettering. 5 with exponential
    backoff from 0.2 s spans ~6 s, enough for a sensor to scale from zero and NATS to fail over."""
    backoff_delay: str = "PT0.2S"
    """``--backoff-delay``: ISO-8601 duration of the first retry delay, doubled each time."""
    ui: bool = False
    """``--ui``: also render the web UI (:mod:`knevents.deploy.ui`), one per namespace and bus."""
    ui_allow_actions: bool = False
    """``--ui-allow-actions``: let the deployed UI replay and discard; read-only otherwise."""
    ui_token_secret: str = "knevents-ui"
    """``--ui-token-secret``: the Secret whose key ``token`` is the UI's bearer token (a prerequisite)."""
