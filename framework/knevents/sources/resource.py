"""The ``resource`` event source: watch Kubernetes objects, as Argo's resource event source does.

Argo runs a dynamic informer on ``group/version/resource`` in ``namespace``
(all namespaces when empty) with the ``filter.labels`` as label selector, and
sends one event per ``eventTypes`` entry (``ADD``, ``UPDATE``, ``DELETE``)
that passes ``filter`` (``prefix`` of the name, ``afterStart``, ``createdBy``,
``fields`` as gjson path + regexp). The data is Argo's ``ResourceEventData``:
``{"type", "body", "oldBody", "group", "version", "resource", "metadata"?}``,
``oldBody`` being the previous object on ``UPDATE`` and ``null`` otherwise.

knevents lists, then watches from the list's ``resourceVersion`` with the
official ``kubernetes`` client (raw list/watch calls, no discovery), and
keeps its place in the progress store (:mod:`knevents.sources.progress`):
the last ``resourceVersion`` (bookmarks included) and the version of every
object it knows. A restarted function resumes the watch from there instead
of replaying the whole list as ``ADD`` (Argo does replay it); when the API
answers ``410 Gone`` it lists again and reports only the differences (new
objects as ``ADD``, changed ones as ``UPDATE``, vanished ones as ``DELETE``).
``afterStart`` counts from the source's first start (kept with its place),
not from the latest restart. The previous body of an object is kept in memory only, so the first
``UPDATE`` of an object after a restart carries ``oldBody: null``.

The client blocks, so the list/watch loop runs in a worker thread and hands
each event to the event loop, publishing in order; the place is saved after
the bus accepted the event. On Knative the function runs one replica and
needs ``list`` and ``watch`` on the resource (``knevents render`` derives
the Role).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from knevents import access, errors, events
from knevents.sensors import paths
from knevents.sources import base, common, progress
from knevents.spec import models

__all__ = ["SOURCE", "ResourceSource", "create", "label_selector", "passes"]

log = logging.getLogger(__name__)

_TYPES = {"ADDED": "ADD", "MODIFIED": "UPDATE", "DELETED": "DELETE"}
_WATCH_SECONDS = 60


def label_selector(selectors: list[Any] | None) -> str:
    """Argo's ``filter.labels`` as a Kubernetes label selector string."""
    terms = []
    for sel in selectors or []:
        op = (sel.operation or "=").strip()
        value = sel.value or ""
        if op in ("in", "notin"):
            terms.append(f"{sel.key} {op} ({value})")
        elif op == "exists":
            terms.append(sel.key)
        elif op in ("!", "doesnotexist"):
            terms.append(f"!{sel.key}")
        else:
            terms.append(f"{sel.key}{op}{value}")
    return ",".join(terms)


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _event_time(obj: dict[str, Any], kind: str) -> datetime | None:
    meta = obj.get("metadata") or {}
    created = _time(meta.get("creationTimestamp"))
    if kind == "DELETE":
        return _time(meta.get("deletionTimestamp")) or datetime.now(UTC)
    if kind == "UPDATE":
        times = [_time(f.get("time")) for f in meta.get("managedFields") or [] if f.get("operation") == "Update"]
        return max([t for t in (created, *times) if t is not None], default=None)
    return created


def passes(obj: dict[str, Any], kind: str, flt: Any, started: datetime) -> bool:
    """Argo's passFilters: prefix, afterStart, createdBy and fields (gjson path, regexp, = / == / !=)."""
    if flt is None:
        return True
    meta = obj.get("metadata") or {}
    if flt.prefix and not str(meta.get("name", "")).startswith(flt.prefix):
        return False
    when = _event_time(obj, kind)
    if flt.after_start and when is not None and when < started:
        return False
    created, limit = _time(meta.get("creationTimestamp")), _time(flt.created_by)
    if limit is not None and created is not None and created > limit:
        return False
    document = json.dumps(obj).encode()
    for sel in flt.fields or []:
        found = paths.get(document, sel.key)
        if found is None:
            return False
        text = found.text if found.type == paths.STRING else ""  # gjson's Str is empty for non-strings
        try:
            match = re.search(sel.value or "", text) is not None
        except re.error:
            return False
        op = sel.operation or ""
        if (op in ("=", "==") and not match) or (op == "!=" and match) or op not in ("=", "==", "!="):
            return False
    return True


def _key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


class ResourceSource:
    """One ``resource`` entry: list, watch, publish, remember the place."""

    def __init__(self, event_name: str, config: Any, ctx: base.SourceContext,
                 store: progress.Progress | None = None) -> None:
        where = f"resource.{event_name}"
        if not config.version or not config.resource:
            raise errors.SpecError(f"{where}: version and resource are required")
        unknown = [t for t in config.event_types or [] if t not in ("ADD", "UPDATE", "DELETE")]
        if unknown:
            raise errors.SpecError(f"{where}.eventTypes: unknown event type {unknown[0]!r}")
        self.event_name = event_name
        self._config = config
        self._ctx = ctx
        self._types = set(config.event_types or [])
        self._store = store if store is not None else progress.for_source(ctx)
        group = f"/apis/{config.group}/{config.version}" if config.group else f"/api/{config.version}"
        scope = f"/namespaces/{config.namespace}" if config.namespace else ""
        self._path = f"{group}{scope}/{config.resource}"
        self._selector = label_selector(config.filter.labels if config.filter else None)
        self._started = datetime.now(UTC)
        self._bodies: dict[str, dict[str, Any]] = {}
        self._response: Any = None
        self._lock = threading.Lock()
        self._publish_fn: base.Publish | None = None

    # --- the Kubernetes calls (worker thread) ----------------------------------------------------------

    def _api(self) -> Any:
        from kubernetes import client as k8s_client
        from kubernetes import config as k8s_config

        kube = self._ctx.settings.kube
        if kube.kubeconfig:
            return k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kube.kubeconfig, context=kube.context, persist_config=False)
        configuration = k8s_client.Configuration()
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return k8s_client.ApiClient(configuration)

    def _get(self, api: Any, query: list[tuple[str, Any]], stream: bool) -> Any:
        """One GET through the client's own request path (auth, TLS, proxy); the raw urllib3 response."""
        if self._selector:
            query = [*query, ("labelSelector", self._selector)]
        method, url, headers, body, post = api.param_serialize(
            method="GET", resource_path=self._path, query_params=query,
            header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
        response = api.call_api(method, url, headers, body, post,
                                _request_timeout=(10, _WATCH_SECONDS + 30) if stream else 30).response
        if not 200 <= response.status < 300:
            try:
                message = json.loads(response.data).get("message", "")
            except (ValueError, AttributeError):
                message = ""
            raise errors.TemporaryError(f"{self._path}: {response.status} {response.reason}: {message}"[:300])
        return response

    def _list(self, api: Any) -> tuple[str, list[dict[str, Any]]]:
        body = json.loads(self._get(api, [], stream=False).data)
        return str(body["metadata"]["resourceVersion"]), list(body.get("items") or [])

    def _watch(self, api: Any, version: str, halt: threading.Event) -> Iterator[dict[str, Any]]:
        query = [("watch", "true"), ("resourceVersion", version), ("allowWatchBookmarks", "true"),
                 ("timeoutSeconds", _WATCH_SECONDS)]
        response = self._get(api, query, stream=True)
        with self._lock:  # run() sets halt, then takes the lock to end the watch: one of the two ends it
            self._response = response
            if halt.is_set():
                _shut(response)
        try:
            buffer = b""
            for chunk in response.stream(4096, decode_content=False):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            with self._lock:
                self._response = None
            response.release_conn()

    # --- the loop (worker thread) --------------------------------------------------------------------

    def _data(self, kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        config = self._config
        data: dict[str, Any] = {"type": kind, "body": obj, "oldBody": old, "group": config.group or "",
                                "version": config.version, "resource": config.resource}
        if config.metadata:
            data["metadata"] = dict(config.metadata)
        return data

    def _emit(self, call: Any, kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        if kind not in self._types or not passes(obj, kind, self._config.filter, self._started):
            return
        meta = obj.get("metadata") or {}
        ident = f"{self._ctx.event_source_name}/{self.event_name}/{kind}/{meta.get('uid')}/{meta.get('resourceVersion')}"
        event = events.new_event(id=hashlib.sha256(ident.encode()).hexdigest()[:32],
                                 source=self._ctx.event_source_name, subject=self.event_name, type="resource",
                                 data=self._data(kind, obj, old))
        call(self._publish(event))

    async def _publish(self, event: events.Event) -> None:
        assert self._publish_fn is not None
        await self._publish_fn(event)

    def _apply(self, call: Any, kind: str, obj: dict[str, Any], known: dict[str, str]) -> None:
        key, version = _key(obj), str((obj.get("metadata") or {}).get("resourceVersion", ""))
        if kind == "DELETE":
            self._emit(call, kind, obj, None)
            known.pop(key, None)
            self._bodies.pop(key, None)
            return
        old = self._bodies.get(key)
        if kind == "UPDATE" and known.get(key) == version:
            return  # Argo drops updates with an unchanged resourceVersion (resyncs)
        self._emit(call, kind, obj, old if kind == "UPDATE" else None)
        known[key] = version
        self._bodies[key] = obj

    def _relist(self, api: Any, call: Any, known: dict[str, str]) -> str:
        """List again after 410 Gone (or on first start) and report only the differences."""
        version, items = self._list(api)
        seen = set()
        for obj in items:
            key = _key(obj)
            seen.add(key)
            self._apply(call, "UPDATE" if key in known else "ADD", obj, known)
        for key in [k for k in known if k not in seen]:
            namespace, _, name = key.partition("/")
            gone = self._bodies.get(key) or {"metadata": {"name": name, "namespace": namespace}}
            self._apply(call, "DELETE", gone, known)
        return version

    def _follow(self, api: Any, call: Any, place: dict[str, Any], stop: threading.Event) -> None:
        known: dict[str, str] = place.setdefault("known", {})
        if not place.get("rv"):
            place["rv"] = self._relist(api, call, known)
            call(self._save(place))
        while not stop.is_set():
            for item in self._watch(api, place["rv"], stop):
                obj, kind = item.get("object") or {}, item.get("type")
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        log.info("resource %s: resourceVersion %s expired; listing again", self.event_name, place["rv"])
                        place["rv"] = self._relist(api, call, known)
                        call(self._save(place))
                        break
                    raise errors.TemporaryError(f"watch error {obj.get('code')}: {obj.get('message')}")
                if kind in _TYPES:
                    self._apply(call, _TYPES[kind], obj, known)
                place["rv"] = str((obj.get("metadata") or {}).get("resourceVersion") or place["rv"])
                call(self._save(place))

    async def _save(self, place: dict[str, Any]) -> None:
        await self._store.save(self.event_name, json.dumps(place).encode())

    async def run(self, publish: base.Publish, stop: asyncio.Event) -> None:
        """List/watch in a worker thread until ``stop``; reconnects with backoff."""
        self._publish_fn = publish
        raw = await self._store.load(self.event_name)
        place: dict[str, Any] = json.loads(raw) if raw else {}
        # afterStart counts from the source's first start, kept with its place: what happened while a restarted
        # function was down is after that start and must not be filtered out (Argo restarts the clock and loses it)
        first = _time(place.get("started"))
        if first is not None:
            self._started = first
        place["started"] = self._started.isoformat()
        loop = asyncio.get_running_loop()
        halt = threading.Event()

        def call(coro: Any) -> Any:
            if halt.is_set():  # stopping: the store may be closed already and must not connect again
                coro.close()
                raise errors.TemporaryError("the source is stopping")
            return asyncio.run_coroutine_threadsafe(coro, loop).result()

        def work() -> None:
            delay = 1.0
            while not halt.is_set():
                try:
                    self._follow(self._api(), call, place, halt)
                except errors.BusUnavailableError as exc:
                    log.warning("resource %s: bus refused an event (%s); resuming from the saved place",
                                self.event_name, exc)
                    saved = call(self._store.load(self.event_name))
                    place.clear()
                    place.update(json.loads(saved) if saved else {})
                except Exception as exc:  # the API, the network, a bad config: log, wait, try again
                    if halt.is_set():
                        return
                    log.warning("resource %s: %s: %s; retrying in %.0fs", self.event_name, type(exc).__name__,
                                _short(exc), delay)
                    common.rejected(self._ctx.event_source_name, self.event_name, "api_error")
                    halt.wait(delay)
                    delay = min(delay * 2, 30.0)

        worker = asyncio.ensure_future(asyncio.to_thread(work))
        try:
            await stop.wait()
        finally:
            halt.set()
            with self._lock:
                response = self._response
                if response is not None:
                    _shut(response)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(worker, 10)

    async def close(self) -> None:
        """Release the progress store's connection."""
        await self._store.close()


def _shut(response: Any) -> None:
    """End a watch's streaming response from another thread (the reader then stops)."""
    with contextlib.suppress(Exception):
        response.shutdown() if hasattr(response, "shutdown") else response.close()


def _short(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None)
    return f"{status} {reason}" if status else str(exc)[:200]


def create(event_name: str, config: models.ResourceEventSource, ctx: base.SourceContext) -> base.Source:
    """Factory for the ``resource`` spec key."""
    return ResourceSource(event_name, config, ctx)


def _permissions(event_name: str, config: models.ResourceEventSource) -> Iterator[access.Grant | str]:
    # the source lists, then watches: it never gets one object; every namespace when none is named (a ClusterRole)
    if not config.resource:
        yield f"resource.{event_name}: no `resource` to grant access to"
        return
    yield access.Grant(config.namespace or access.CLUSTER, config.group or "", config.resource, ("list", "watch"))


def _check(config: models.ResourceEventSource, path: str) -> Iterator[tuple[str, str]]:
    if not config.version:
        yield f"{path}.version", "a resource event source needs `version`"
    if not config.resource:
        yield f"{path}.resource", "a resource event source needs `resource` (the plural, e.g. `workflows`)"
    if not config.event_types:
        yield f"{path}.eventTypes", "a resource event source needs `eventTypes` (ADD, UPDATE, DELETE)"
    for index, kind in enumerate(config.event_types or []):
        if kind not in ("ADD", "UPDATE", "DELETE"):
            yield f"{path}.eventTypes[{index}]", f"unknown event type `{kind}` (ADD, UPDATE or DELETE)"


SOURCE = base.SourceType(
    key="resource",
    model=models.ResourceEventSource,
    factory=create,
    # one watch; a second replica would report every change twice
    knative=base.always(base.Knative.ONE_REPLICA),
    check=_check,
    data='{"type": "ADD|UPDATE|DELETE", "body": <the object>, "oldBody"?: <before an UPDATE>, "group", "version", '
    '"resource", "metadata"?}',
    permissions=_permissions,
)
