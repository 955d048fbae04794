"""Settings, grouped by concern, as frozen dataclasses.

One precedence rule everywhere: command-line flag > environment variable >
default. ``Settings.from_env()`` reads the environment once; a flag is applied
by ``dataclasses.replace`` on the group it belongs to. Every field says its unit
and why its default was chosen. Nothing here does I/O beyond reading ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "BusSettings",
    "HttpSettings",
    "KubeSettings",
    "NatsSettings",
    "SecretSettings",
    "ServerSettings",
    "Settings",
    "SourceSettings",
    "StateSettings",
    "env_bool",
    "env_float",
    "env_int",
]


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value if value not in (None, "") else None


def env_float(env: Mapping[str, str], name: str, default: float) -> float:
    """A float from ``env[name]``, else ``default``; a bad value is a clear ValueError."""
    value = _get(env, name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not a number") from None


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    """An int from ``env[name]``, else ``default``."""
    value = _get(env, name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """A boolean from ``env[name]`` (1/true/yes/on, 0/false/no/off), else ``default``."""
    value = _get(env, name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"environment variable {name}={value!r} is not a boolean")


@dataclass(frozen=True)
class NatsSettings:
    """How to reach NATS (JetStream bus locally, KV state everywhere)."""

    url: str = "nats://127.0.0.1:4222"
    """``KNEVENTS_NATS_URL``. Comma-separated server URLs. The default is a local server."""
    connect_timeout: float = 2.0
    """``KNEVENTS_NATS_CONNECT_TIMEOUT``, seconds. Short: a function must answer 5xx quickly
    when NATS is down so the broker retries, rather than hang the request."""
    request_timeout: float = 5.0
    """``KNEVENTS_NATS_REQUEST_TIMEOUT``, seconds per JetStream API / KV request."""
    creds_file: str | None = None
    """``KNEVENTS_NATS_CREDS``: a NATS ``.creds`` file (user JWT + nkey seed), as mounted from a Secret by
    ``knevents render --nats-credentials-secret``. Decentralised (operator/account) auth."""
    nkey_seed_file: str | None = None
    """``KNEVENTS_NATS_NKEY``: a file holding an nkey seed (``SU…``), for servers configured with nkey users."""
    user: str | None = None
    """``KNEVENTS_NATS_USER``: user name for user/password auth (or put it in the URL)."""
    password: str | None = None
    """``KNEVENTS_NATS_PASSWORD``: its password; set from a Secret (``secretKeyRef``), never a literal."""

    def auth_options(self) -> dict[str, str]:
        """nats-py ``connect()`` keyword arguments for the configured credentials (empty: none, or in the URL)."""
        options: dict[str, str] = {}
        if self.creds_file:
            options["user_credentials"] = self.creds_file
        if self.nkey_seed_file:
            options["nkeys_seed"] = self.nkey_seed_file
        if self.user:
            options["user"] = self.user
            options["password"] = self.password or ""
        return options

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> NatsSettings:
        return cls(
            url=_get(env, "KNEVENTS_NATS_URL") or cls.url,
            connect_timeout=env_float(env, "KNEVENTS_NATS_CONNECT_TIMEOUT", cls.connect_timeout),
            request_timeout=env_float(env, "KNEVENTS_NATS_REQUEST_TIMEOUT", cls.request_timeout),
            creds_file=_get(env, "KNEVENTS_NATS_CREDS"),
            nkey_seed_file=_get(env, "KNEVENTS_NATS_NKEY"),
            user=_get(env, "KNEVENTS_NATS_USER"),
            password=_get(env, "KNEVENTS_NATS_PASSWORD"),
        )


@dataclass(frozen=True)
class StateSettings:
    """Sensor state in JetStream KV."""

    dedupe_ttl: float = 600.0
    """``KNEVENTS_DEDUPE_TTL``, seconds an event id is remembered. 10 minutes covers broker
    retry schedules (Knative's default backoff tops out well below that)."""
    max_value_size: int = 1024 * 1024
    """``KNEVENTS_STATE_MAX_VALUE``, bytes per KV value. NATS' default max payload is 1 MiB."""
    replicas: int = 1
    """``KNEVENTS_STATE_REPLICAS``: KV bucket replicas; 3 on a clustered NATS."""
    outbox_lease: float = 60.0
    """``KNEVENTS_OUTBOX_LEASE``, seconds a replica owns a satisfied firing it started; after that any
    event touching the trigger finishes it. Longer than a trigger with retries normally takes."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StateSettings:
        return cls(
            dedupe_ttl=env_float(env, "KNEVENTS_DEDUPE_TTL", cls.dedupe_ttl),
            max_value_size=env_int(env, "KNEVENTS_STATE_MAX_VALUE", cls.max_value_size),
            replicas=env_int(env, "KNEVENTS_STATE_REPLICAS", cls.replicas),
            outbox_lease=env_float(env, "KNEVENTS_OUTBOX_LEASE", cls.outbox_lease),
        )


@dataclass(frozen=True)
class BusSettings:
    """Where event sources publish."""

    sink: str | None = None
    """``K_SINK``: the broker URL injected by Knative (SinkBinding). When unset, publish to JetStream."""
    bus_name: str = "default"
    """``KNEVENTS_BUS``: the EventBus name; JetStream subjects are ``<bus>.<eventsource>.<event>``."""
    publish_retries: int = 3
    """``KNEVENTS_PUBLISH_RETRIES``: attempts after the first. Few, because the caller retries too."""
    publish_backoff: float = 0.1
    """``KNEVENTS_PUBLISH_BACKOFF``, seconds before the first retry, doubled each time."""
    publish_timeout: float = 5.0
    """``KNEVENTS_PUBLISH_TIMEOUT``, seconds per publish attempt."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BusSettings:
        return cls(
            sink=_get(env, "K_SINK"),
            bus_name=_get(env, "KNEVENTS_BUS") or cls.bus_name,
            publish_retries=env_int(env, "KNEVENTS_PUBLISH_RETRIES", cls.publish_retries),
            publish_backoff=env_float(env, "KNEVENTS_PUBLISH_BACKOFF", cls.publish_backoff),
            publish_timeout=env_float(env, "KNEVENTS_PUBLISH_TIMEOUT", cls.publish_timeout),
        )


@dataclass(frozen=True)
class SecretSettings:
    """Where Secret and ConfigMap keys are read from."""

    secrets_dir: str = "/var/run/secrets/knevents"
    """``KNEVENTS_SECRETS_DIR``: ``<dir>/<name>/<key>`` files mounted from Secret volumes."""
    configmaps_dir: str = "/var/run/configmaps/knevents"
    """``KNEVENTS_CONFIGMAPS_DIR``: ``<dir>/<name>/<key>`` files mounted from ConfigMap volumes."""
    files_dir: str = "."
    """``KNEVENTS_FILES_DIR``: the only directory (and below) a trigger's ``source.file`` may read; default the
    working directory, so a Sensor cannot print ``/etc`` or a mounted token in a dry run."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SecretSettings:
        return cls(
            secrets_dir=_get(env, "KNEVENTS_SECRETS_DIR") or cls.secrets_dir,
            configmaps_dir=_get(env, "KNEVENTS_CONFIGMAPS_DIR") or cls.configmaps_dir,
            files_dir=_get(env, "KNEVENTS_FILES_DIR") or cls.files_dir,
        )


@dataclass(frozen=True)
class HttpSettings:
    """Outgoing HTTP (HTTP triggers, the broker sink)."""

    timeout: float = 10.0
    """``KNEVENTS_HTTP_TIMEOUT``, seconds when a trigger sets none. Argo's HTTP trigger default is 60 s;
    10 s keeps a function's request well inside Knative's default 300 s request timeout with retries."""
    max_connections: int = 100
    """``KNEVENTS_HTTP_MAX_CONNECTIONS``: pooled connections per client."""
    argo_server_url: str | None = None
    """``KNEVENTS_ARGO_SERVER_URL``: Argo Server REST API, needed for resubmit/retry workflow operations."""
    allow_internal_targets: bool = False
    """``KNEVENTS_HTTP_ALLOW_INTERNAL_TARGETS``: let an HTTP trigger URL that event data chose (a trigger
    parameter with ``dest: http.url``) reach loopback, link-local and cloud metadata addresses. Off: an
    event must not make the sensor call its own pod or the metadata service (credentials)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HttpSettings:
        return cls(
            timeout=env_float(env, "KNEVENTS_HTTP_TIMEOUT", cls.timeout),
            max_connections=env_int(env, "KNEVENTS_HTTP_MAX_CONNECTIONS", cls.max_connections),
            argo_server_url=_get(env, "KNEVENTS_ARGO_SERVER_URL"),
            allow_internal_targets=env_bool(env, "KNEVENTS_HTTP_ALLOW_INTERNAL_TARGETS", cls.allow_internal_targets),
        )


@dataclass(frozen=True)
class ServerSettings:
    """Incoming HTTP: what a function or runner port reads before refusing (memory and connection guards)."""

    max_body: int = 4 * 1024 * 1024
    """``KNEVENTS_MAX_BODY``, bytes of request body read before answering 413 (checked while reading, never
    buffered past it). A runner port uses its routes' ``maxPayloadSize`` instead. 4 MiB is above NATS' and the
    Kafka broker's 1 MiB message defaults with room for the event's header map, far below a pod's memory."""
    max_header_bytes: int = 64 * 1024
    """``KNEVENTS_MAX_HEADER_BYTES``, bytes of request line plus headers; more is 431. GitHub and SNS send ~2 KiB."""
    max_headers: int = 100
    """``KNEVENTS_MAX_HEADERS``: header lines per request; more is 431 (gunicorn's default too)."""
    header_timeout: float = 10.0
    """``KNEVENTS_HEADER_TIMEOUT``, seconds from connect (or the previous answer) to the end of the headers;
    a slower client is disconnected, so slow-header clients cannot hold every connection."""
    body_timeout: float = 30.0
    """``KNEVENTS_BODY_TIMEOUT``, seconds to receive the whole body once the headers are in (1 MiB at ~35 KiB/s)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServerSettings:
        return cls(
            max_body=env_int(env, "KNEVENTS_MAX_BODY", cls.max_body),
            max_header_bytes=env_int(env, "KNEVENTS_MAX_HEADER_BYTES", cls.max_header_bytes),
            max_headers=env_int(env, "KNEVENTS_MAX_HEADERS", cls.max_headers),
            header_timeout=env_float(env, "KNEVENTS_HEADER_TIMEOUT", cls.header_timeout),
            body_timeout=env_float(env, "KNEVENTS_BODY_TIMEOUT", cls.body_timeout),
        )


@dataclass(frozen=True)
class KubeSettings:
    """How triggers reach the Kubernetes API (k8s and argoWorkflow triggers)."""

    kubeconfig: str | None = None
    """``KNEVENTS_KUBECONFIG``, else ``KUBECONFIG``: a kubeconfig file. Without one, in-cluster config is used
    when ``KUBERNETES_SERVICE_HOST`` is set; otherwise no cluster is configured and Kubernetes triggers run as a
    dry run. These settings never pick up ``~/.kube/config`` themselves; ``knevents run`` fills this field with it
    when it exists (:func:`knevents.local.runner.kubeconfig_in_use`) and names the file in its banner."""
    context: str | None = None
    """``KNEVENTS_KUBE_CONTEXT``: the kubeconfig context to use (default: the file's current context)."""
    in_cluster: bool = False
    """True when ``KUBERNETES_SERVICE_HOST`` is set (a pod with a ServiceAccount token)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KubeSettings:
        return cls(
            kubeconfig=_get(env, "KNEVENTS_KUBECONFIG") or _get(env, "KUBECONFIG"),
            context=_get(env, "KNEVENTS_KUBE_CONTEXT"),
            in_cluster=_get(env, "KUBERNETES_SERVICE_HOST") is not None,
        )


@dataclass(frozen=True)
class SourceSettings:
    """How the event-source function runs its sources."""

    calendar_in_process: bool = True
    """``KNEVENTS_CALENDAR_IN_PROCESS``: tick cron ``schedule`` calendars with an in-process timer. Default: yes,
    unless ``K_SERVICE`` is set (Knative Serving), where a PingSource posts the ticks and the function may scale
    to zero; ``interval`` calendars always tick in process."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SourceSettings:
        return cls(
            calendar_in_process=env_bool(env, "KNEVENTS_CALENDAR_IN_PROCESS", _get(env, "K_SERVICE") is None),
        )


@dataclass(frozen=True)
class Settings:
    """Every group, read from the environment once per process."""

    nats: NatsSettings = field(default_factory=NatsSettings)
    state: StateSettings = field(default_factory=StateSettings)
    bus: BusSettings = field(default_factory=BusSettings)
    secrets: SecretSettings = field(default_factory=SecretSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    kube: KubeSettings = field(default_factory=KubeSettings)
    sources: SourceSettings = field(default_factory=SourceSettings)
    server: ServerSettings = field(default_factory=ServerSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every group from ``env`` (default ``os.environ``)."""
        source = os.environ if env is None else env
        return cls(
            nats=NatsSettings.from_env(source),
            state=StateSettings.from_env(source),
            bus=BusSettings.from_env(source),
            secrets=SecretSettings.from_env(source),
            http=HttpSettings.from_env(source),
            kube=KubeSettings.from_env(source),
            sources=SourceSettings.from_env(source),
            server=ServerSettings.from_env(source),
        )
