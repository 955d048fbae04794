"""The Kubernetes API adapter of the k8s and argoWorkflow triggers.

The only module of knevents that imports the official ``kubernetes`` client,
and only when a Kubernetes trigger executes (``import kubernetes`` costs
~0.65 s of cold start). It talks through the client's dynamic client, so any
resource the API server serves (CRDs included) works without generated models.

Configuration, in order: ``KubeSettings.kubeconfig`` (``KNEVENTS_KUBECONFIG`` or
``KUBECONFIG``), then in-cluster config (``KUBERNETES_SERVICE_HOST``). With
neither, :func:`client` returns ``None`` and the triggers do a dry run.

The client blocks; :func:`call` runs it in a worker thread and translates its
exceptions into knevents errors at this boundary: 403 names the verb, the
resource and the ServiceAccount to grant; 404/409/400/422 carry the API's
``Status`` message and are permanent; 429, 5xx and connection failures are
retryable.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from knevents import errors
from knevents.settings import KubeSettings

__all__ = ["Kube", "Target", "call", "client", "forget_clients"]

T = TypeVar("T")
_CLIENTS: dict[KubeSettings, Kube] = {}
_LOCK = threading.Lock()
_TIMEOUT = 30.0


@dataclass(frozen=True)
class Target:
    """What a call is about, for error messages: verb, kind/plural, name, namespace."""

    verb: str
    api_version: str
    kind: str
    name: str | None = None
    namespace: str | None = None

    def __str__(self) -> str:
        what = f"{self.kind} {self.name}" if self.name else self.kind
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{self.verb} {what} ({self.api_version}){where}"


class Kube:
    """Blocking calls over the dynamic client; run them through :func:`call`."""

    def __init__(self, settings: KubeSettings) -> None:
        self._settings = settings
        self._dynamic: Any = None
        self._lock = threading.Lock()

    def dynamic(self) -> Any:
        """The dynamic client, built (config + discovery, blocking I/O) on first use in a worker thread."""
        with self._lock:
            if self._dynamic is None:
                self._dynamic = _build(self._settings)
            return self._dynamic

    def close(self) -> None:
        """Close the client's pooled connections (if it was ever built)."""
        with self._lock:
            dynamic, self._dynamic = self._dynamic, None
        if dynamic is None:
            return
        api = dynamic.client
        api.close()
        pool_manager = getattr(getattr(api, "rest_client", None), "pool_manager", None)
        if pool_manager is not None:
            pool_manager.clear()

    def resource(self, api_version: str, kind: str) -> Any:
        """The discovered API resource for ``apiVersion``/``kind``."""
        return self.dynamic().resources.get(api_version=api_version, kind=kind)

    def plural(self, api_version: str, kind: str) -> str:
        """The resource (plural) name of a kind, e.g. ``workflows``."""
        return str(self.resource(api_version, kind).name)

    def namespaced(self, api_version: str, kind: str) -> bool:
        """Whether the kind lives in a namespace."""
        return bool(self.resource(api_version, kind).namespaced)

    def create(self, obj: dict[str, Any], namespace: str | None) -> dict[str, Any]:
        res = self.resource(obj["apiVersion"], obj["kind"])
        return _plain(res.create(body=obj, namespace=namespace, _request_timeout=_TIMEOUT))

    def get(self, api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any]:
        res = self.resource(api_version, kind)
        return _plain(res.get(name=name, namespace=namespace, _request_timeout=_TIMEOUT))

    def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        res = self.resource(api_version, kind)
        answer = _plain(
            res.get(namespace=namespace, label_selector=label_selector, _request_timeout=_TIMEOUT)
        )
        return list(answer.get("items") or [])

    def replace(self, obj: dict[str, Any], namespace: str | None) -> dict[str, Any]:
        res = self.resource(obj["apiVersion"], obj["kind"])
        return _plain(res.replace(body=obj, namespace=namespace, _request_timeout=_TIMEOUT))

    def patch(
        self, api_version: str, kind: str, name: str, namespace: str | None, body: Any, content_type: str
    ) -> dict[str, Any]:
        res = self.resource(api_version, kind)
        return _plain(
            res.patch(
                body=body,
                name=name,
                namespace=namespace,
                content_type=content_type,
                _request_timeout=_TIMEOUT,
            )
        )

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any]:
        res = self.resource(api_version, kind)
        return _plain(res.delete(name=name, namespace=namespace, _request_timeout=_TIMEOUT))


def _plain(value: Any) -> dict[str, Any]:
    if hasattr(value, "to_dict"):
        result: dict[str, Any] = value.to_dict()
        return result
    if isinstance(value, dict):
        return value
    if isinstance(value, str | bytes):
        try:
            loaded = json.loads(value)
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}
    return {}


def client(settings: KubeSettings) -> Kube | None:
    """The cached client for ``settings``; ``None`` when no cluster is configured. Does no I/O."""
    if not settings.kubeconfig and not settings.in_cluster:
        return None
    with _LOCK:
        cached = _CLIENTS.get(settings)
        if cached is None:
            cached = _CLIENTS[settings] = Kube(settings)
        return cached


def forget_clients() -> None:
    """Close and drop cached clients (shutdown, tests that start a new API server, a changed kubeconfig)."""
    with _LOCK:
        clients = list(_CLIENTS.values())
        _CLIENTS.clear()
    for cached in clients:
        cached.close()


def _build(settings: KubeSettings) -> Any:
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.dynamic import DynamicClient

    try:
        if settings.kubeconfig:
            api = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=settings.kubeconfig, context=settings.context, persist_config=False
            )
        else:
            configuration = k8s_client.Configuration()
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            api = k8s_client.ApiClient(configuration)
    except (k8s_config.ConfigException, OSError, ValueError, TypeError) as exc:
        source = f"kubeconfig {settings.kubeconfig}" if settings.kubeconfig else "in-cluster config"
        raise errors.TriggerError(f"cannot load {source}: {exc}") from None
    # A private discovery cache: the default file in /tmp is shared by every process talking to that host.
    cache = os.path.join(tempfile.mkdtemp(prefix="knevents-kube-"), "discovery.json")
    try:
        return DynamicClient(api, cache_file=cache)  # type: ignore[no-untyped-call]
    except Exception as exc:  # discovery failed: translate the client's exception
        raise _translate(exc, Target("discover", "", "API resources")) from None


async def call(target: Target, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` in a worker thread, translating Kubernetes client errors."""
    try:
        return await asyncio.to_thread(fn, *args)
    except errors.KneventsError:
        raise
    except Exception as exc:
        raise _translate(exc, target) from None


def status_message(exc: Any) -> str:
    """The ``message`` of the API's Status body, else the HTTP reason."""
    body = getattr(exc, "body", None)
    if body:
        try:
            parsed = json.loads(body)
        except (TypeError, ValueError):
            parsed = None
        if isinstance(parsed, dict) and parsed.get("message"):
            return str(parsed["message"])
    return str(getattr(exc, "reason", "") or exc.__class__.__name__)


def _translate(exc: Exception, target: Target) -> errors.KneventsError:
    from kubernetes.client.exceptions import ApiException
    from kubernetes.dynamic import exceptions as dynamic_errors

    if isinstance(exc, dynamic_errors.ResourceNotFoundError | dynamic_errors.ResourceNotUniqueError):
        return errors.TriggerError(
            f"{target}: the API server does not serve kind {target.kind} in {target.api_version} "
            "(is its CRD installed?)"
        )
    if isinstance(exc, ApiException):
        status = int(getattr(exc, "status", 0) or 0)
        message = status_message(exc)
        if status == 403:
            return errors.TriggerError(
                f"forbidden: cannot {target}: {message}. Grant the sensor's ServiceAccount the '{target.verb}' "
                f"verb on this resource (a Role and RoleBinding in the namespace)"
            )
        if status == 401:
            return errors.TriggerError(f"unauthorized: cannot {target}: {message} (check the credentials)")
        if status == 404:
            return errors.TriggerError(f"{target}: not found: {message}")
        if status == 409:
            return errors.TriggerError(f"{target}: conflict: {message}")
        if status == 429 or status >= 500 or status == 0:
            return errors.TriggerRetryableError(
                f"{target}: the API server answered {status or 'nothing'}: {message}"
            )
        return errors.TriggerError(f"{target}: rejected ({status}): {message}")
    if isinstance(exc, OSError | TimeoutError) or exc.__class__.__module__.startswith("urllib3"):
        return errors.TriggerRetryableError(
            f"{target}: the Kubernetes API is unreachable: {exc.__class__.__name__}"
        )
    return errors.TriggerError(f"{target}: {exc.__class__.__name__}: {exc}")
