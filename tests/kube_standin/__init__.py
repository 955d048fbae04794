"""A Kubernetes API stand-in for tests. NOT a Kubernetes API server; never used outside tests.

No kube-apiserver can run on the test machines, so the k8s and argoWorkflow
triggers are tested against this small threaded HTTP server instead. It speaks
the parts of the real API that the official ``kubernetes`` client's dynamic
client uses, with the real wire formats:

* discovery: ``/version``, ``/api``, ``/api/v1``, ``/apis`` and ``/apis/<group>/<version>``
  (core ConfigMap/Pod/Service/Secret/Namespace, apps Deployment, batch Job, and
  argoproj.io Workflow/WorkflowTemplate/ClusterWorkflowTemplate/CronWorkflow);
* namespaced and cluster-scoped create (``generateName`` gets a random 5-character
  suffix; ``uid``, ``resourceVersion``, ``creationTimestamp``, ``generation`` are set),
  get, list (``labelSelector`` with ``k=v`` / ``k!=v`` / ``k`` terms), update (PUT,
  with the ``resourceVersion`` conflict check), patch (merge, JSON, strategic —
  refused with 415 for custom resources as the real server does), delete;
* watch (``?watch=1``: chunked watch events, bookmarks, 410 Gone after :meth:`KubeStandIn.compact`;
  see :mod:`tests.kube_standin.watching`);
* errors as ``Status`` objects with the real ``reason``/``code``: 403 Forbidden
  (configured per test with :meth:`KubeStandIn.forbid`, or as RBAC would with
  :meth:`KubeStandIn.authorize`), 404 NotFound,
  409 AlreadyExists / Conflict, 422 Invalid, 415, and injected failures
  (:meth:`KubeStandIn.fail_next`) for retry tests.

Every request is recorded (:attr:`KubeStandIn.requests`) for assertions.
Run it by hand with ``python -m tests.kube_standin --port N``.
"""

from __future__ import annotations

import copy
import json
import random
import string
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.kube_standin import discovery, patching, watching
from tests.kube_standin.discovery import RESOURCES, ApiResource

__all__ = ["RESOURCES", "ApiResource", "KubeStandIn", "RecordedRequest"]


_PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the stand-in saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    verb: str | None = None
    resource: str | None = None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()


class _ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


@dataclass
class _Route:
    resource: ApiResource
    namespace: str | None
    name: str | None


@dataclass
class _State:
    objects: dict[tuple[str, str, str, str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    forbidden: set[tuple[str, str]] = field(default_factory=set)
    authorizer: Callable[[str, str, str, str | None], bool] | None = None
    failures: list[tuple[str, str, int]] = field(default_factory=list)
    version: int = 1000
    lock: threading.Lock = field(default_factory=threading.Lock)
    journal: watching.Journal = field(default_factory=watching.Journal)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _selector_matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class KubeStandIn:
    """The stand-in server. ``start()`` it, use ``url`` / ``kubeconfig()``, ``close()`` it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str = "standin-token") -> None:
        self.token = token
        self._state = _State()
        self._by_path = {(r.group, r.version, r.plural): r for r in RESOURCES}
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="kube-standin",
            daemon=True,
        )

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> KubeStandIn:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():  # shutdown() would wait forever for a loop that never started
            self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """Write a kubeconfig pointing at this server (bearer token auth) and return its path."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "standin", "cluster": {"server": self.url}}],
            "users": [{"name": "standin", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "standin",
                    "context": {"cluster": "standin", "user": "standin", "namespace": namespace},
                }
            ],
            "current-context": "standin",
        }
        path.write_text(json.dumps(config))
        return path

    # -- test controls -------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._state.lock:
            return list(self._state.requests)

    def resource_requests(
        self, verb: str | None = None, resource: str | None = None
    ) -> list[RecordedRequest]:
        """Recorded requests on resources (not discovery), optionally of one verb / plural."""
        return [
            r
            for r in self.requests
            if r.verb is not None
            and (verb is None or r.verb == verb)
            and (resource is None or r.resource == resource)
        ]

    def forbid(self, verb: str, resource: str) -> None:
        """Answer 403 to ``verb`` (get, list, create, update, patch, delete) on ``resource`` (a plural, or ``*``)."""
        with self._state.lock:
            self._state.forbidden.add((verb, resource))

    def authorize(self, allowed: Callable[[str, str, str, str | None], bool] | None) -> None:
        """Answer 403 to every resource request ``allowed(verb, group, plural, namespace)`` refuses, as RBAC would.

        ``namespace`` is None for a cluster-scoped resource (or a request across all namespaces).
        """
        with self._state.lock:
            self._state.authorizer = allowed

    def fail_next(self, verb: str, resource: str, status: int = 500, count: int = 1) -> None:
        """Answer ``status`` to the next ``count`` ``verb`` requests on ``resource`` (plural)."""
        with self._state.lock:
            self._state.failures.extend([(verb, resource, status)] * count)

    def objects(
        self, group: str, version: str, plural: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """Stored objects of a resource (in ``namespace``, or all), oldest first."""
        with self._state.lock:
            found = [
                copy.deepcopy(obj)
                for (g, v, p, ns, _), obj in self._state.objects.items()
                if (g, v, p) == (group, version, plural) and (namespace is None or ns == (namespace or ""))
            ]
        return sorted(found, key=lambda o: int(o["metadata"]["resourceVersion"]))

    def put_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store ``obj`` directly (seed a test); returns it with server-set metadata."""
        resource = self._resource_for(obj)
        namespace = obj.get("metadata", {}).get("namespace", "default") if resource.namespaced else None
        with self._state.lock:
            return copy.deepcopy(self._create(resource, namespace, copy.deepcopy(obj)))

    def set_labels(
        self, group: str, version: str, plural: str, namespace: str | None, name: str, labels: dict[str, str]
    ) -> None:
        """Add labels to a stored object, as a controller would."""
        with self._state.lock:
            key = (group, version, plural, namespace or "", name)
            obj = self._state.objects[key]
            obj["metadata"].setdefault("labels", {}).update(labels)
            obj["metadata"]["resourceVersion"] = self._next_version()
            self._state.journal.record("MODIFIED", key, obj)

    def delete_object(self, group: str, version: str, plural: str, namespace: str | None, name: str) -> None:
        """Delete a stored object, as another client would."""
        with self._state.lock:
            key = (group, version, plural, namespace or "", name)
            obj = self._state.objects.pop(key)
            obj["metadata"]["resourceVersion"] = self._next_version()
            self._state.journal.record("DELETED", key, obj)

    def compact(self) -> int:
        """Compact the change history as etcd does: watches from an older version get 410 Gone."""
        with self._state.lock:
            self._state.journal.compact(self._state.version)
            return self._state.version

    def watch_events(self, raw_path: str, headers: dict[str, str]) -> tuple[int, Any, Any]:
        """(status, error body, events iterator) for a ``watch=1`` request; events is None on an error."""
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query)
        route = self._route(parts.path)
        with self._state.lock:
            self._state.requests.append(
                RecordedRequest(
                    "GET", parts.path, query, headers, None, "watch", route.resource.plural if route else None
                )
            )
            if headers.get("authorization") != f"Bearer {self.token}":
                return 401, _ApiError(401, "Unauthorized", "Unauthorized").status(), None
            try:
                if route is None or route.name is not None:
                    raise _ApiError(404, "NotFound", "the server could not find the requested resource")
                self._check("watch", route)
            except _ApiError as exc:
                return exc.code, exc.status(), None
        r = route.resource

        def current() -> tuple[int, list[tuple[Any, dict[str, Any]]]]:
            with self._state.lock:
                return self._state.version, [(k, copy.deepcopy(o)) for k, o in self._state.objects.items()]

        events = watching.stream(
            self._state.journal,
            (r.group, r.version, r.plural),
            route.namespace,
            query,
            current,
            _selector_matches,
        )
        return 200, None, events

    def _resource_for(self, obj: dict[str, Any]) -> ApiResource:
        for resource in RESOURCES:
            if resource.group_version == obj.get("apiVersion") and resource.kind == obj.get("kind"):
                return resource
        raise ValueError(f"the stand-in does not serve {obj.get('apiVersion')} {obj.get('kind')}")

    # -- resources -----------------------------------------------------------------------------
    def _route(self, path: str) -> _Route | None:
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 2:
            return None
        resource = self._by_path.get((group, version, rest[0]))
        if resource is None:
            return None
        if namespace is not None and not resource.namespaced:
            return None
        return _Route(resource, namespace, rest[1] if len(rest) == 2 else None)

    def _next_version(self) -> str:
        self._state.version += 1
        return str(self._state.version)

    def _key(self, r: ApiResource, namespace: str | None, name: str) -> tuple[str, str, str, str, str]:
        return (r.group, r.version, r.plural, namespace or "", name)

    def _not_found(self, r: ApiResource, name: str) -> _ApiError:
        return _ApiError(
            404,
            "NotFound",
            f'{r.qualified} "{name}" not found',
            {"name": name, "group": r.group, "kind": r.plural},
        )

    def _create(self, r: ApiResource, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        metadata = body.setdefault("metadata", {})
        if not isinstance(metadata, dict):
            raise _ApiError(400, "BadRequest", "metadata must be an object")
        if r.namespaced:
            if metadata.get("namespace") and metadata["namespace"] != namespace:
                raise _ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            metadata["namespace"] = namespace
        if body.get("apiVersion") != r.group_version or body.get("kind") != r.kind:
            raise _ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({body.get('apiVersion')}) does not match the expected API version ({r.group_version})",
            )
        name = metadata.get("name")
        if not name:
            prefix = metadata.get("generateName")
            if not prefix:
                raise _ApiError(
                    422,
                    "Invalid",
                    f'{r.kind} "" is invalid: metadata.name: Required value: name or generateName is required',
                    {"kind": r.kind},
                )
            name = prefix + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
            metadata["name"] = name
        key = self._key(r, namespace, name)
        if key in self._state.objects:
            raise _ApiError(
                409,
                "AlreadyExists",
                f'{r.qualified} "{name}" already exists',
                {"name": name, "group": r.group, "kind": r.plural},
            )
        metadata.update(
            uid=str(uuid.uuid4()),
            resourceVersion=self._next_version(),
            creationTimestamp=_now(),
            generation=1,
        )
        self._state.objects[key] = body
        self._state.journal.record("ADDED", key, body)
        return body

    def _store_update(
        self, r: ApiResource, route: _Route, old: dict[str, Any], new: dict[str, Any]
    ) -> dict[str, Any]:
        metadata = new.setdefault("metadata", {})
        for fixed in ("uid", "creationTimestamp", "namespace", "name"):
            if fixed in old["metadata"]:
                metadata[fixed] = old["metadata"][fixed]
        metadata["resourceVersion"] = self._next_version()
        metadata["generation"] = int(old["metadata"].get("generation", 1)) + (
            1 if new.get("spec") != old.get("spec") else 0
        )
        new["apiVersion"], new["kind"] = r.group_version, r.kind
        self._state.objects[self._key(r, route.namespace, str(route.name))] = new
        self._state.journal.record("MODIFIED", self._key(r, route.namespace, str(route.name)), new)
        return new

    def _handle(
        self, method: str, route: _Route, query: dict[str, list[str]], content_type: str, body: Any
    ) -> tuple[int, Any]:
        r, namespace, name = route.resource, route.namespace, route.name
        if method == "POST" and name is None:
            if not isinstance(body, dict):
                raise _ApiError(400, "BadRequest", "the request body must be a JSON object")
            if r.namespaced and namespace is None:
                raise _ApiError(405, "MethodNotAllowed", "create needs a namespace in the path")
            return 201, self._create(r, namespace, body)
        if method == "GET" and name is None:
            selector = (query.get("labelSelector") or [""])[0]
            items = [
                obj
                for (g, v, p, ns, _), obj in self._state.objects.items()
                if (g, v, p) == (r.group, r.version, r.plural)
                and (namespace is None or ns == namespace)
                and _selector_matches(obj["metadata"].get("labels") or {}, selector)
            ]
            return 200, {
                "apiVersion": r.group_version,
                "kind": f"{r.kind}List",
                "metadata": {"resourceVersion": str(self._state.version)},
                "items": items,
            }
        if name is None:
            raise _ApiError(
                405, "MethodNotAllowed", f"the server does not allow this method on {r.qualified} collections"
            )
        key = self._key(r, namespace, name)
        current = self._state.objects.get(key)
        if current is None:
            raise self._not_found(r, name)
        if method == "GET":
            return 200, current
        if method == "DELETE":
            del self._state.objects[key]
            current["metadata"]["resourceVersion"] = self._next_version()
            self._state.journal.record("DELETED", key, current)
            return 200, {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    "name": name,
                    "group": r.group,
                    "kind": r.plural,
                    "uid": current["metadata"]["uid"],
                },
            }
        if method == "PUT":
            if not isinstance(body, dict):
                raise _ApiError(400, "BadRequest", "the request body must be a JSON object")
            sent = (body.get("metadata") or {}).get("resourceVersion")
            if sent and sent != current["metadata"]["resourceVersion"]:
                raise _ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {r.qualified} "{name}": the object has been modified; '
                    "please apply your changes to the latest version and try again",
                    {"name": name, "group": r.group, "kind": r.plural},
                )
            return 200, self._store_update(r, route, current, copy.deepcopy(body))
        if method == "PATCH":
            strategy = _PATCH_TYPES.get(content_type)
            if strategy is None or (strategy == "strategic" and not r.builtin):
                raise _ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: "
                    f"{', '.join(t for t, s in _PATCH_TYPES.items() if r.builtin or s != 'strategic')}",
                )
            try:
                if strategy == "json":
                    patched = patching.json_patch(current, body)
                elif strategy == "merge":
                    patched = patching.merge_patch(current, body)
                else:
                    patched = patching.strategic_merge_patch(current, body)
            except patching.PatchError as exc:
                raise _ApiError(422, "Invalid", f"the patch could not be applied: {exc}") from None
            return 200, self._store_update(r, route, current, copy.deepcopy(patched))
        raise _ApiError(405, "MethodNotAllowed", f"method {method} is not allowed")

    def _verb(self, method: str, route: _Route) -> str:
        if method == "GET":
            return "get" if route.name else "list"
        return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
            method, method.lower()
        )

    def _check(self, verb: str, route: _Route) -> None:
        r = route.resource
        state = self._state
        refused = state.authorizer is not None and not state.authorizer(
            verb, r.group, r.plural, route.namespace
        )
        if refused or {(verb, r.plural), (verb, "*"), ("*", r.plural)} & state.forbidden:
            where = f' in the namespace "{route.namespace}"' if route.namespace else " at the cluster scope"
            raise _ApiError(
                403,
                "Forbidden",
                f'{r.qualified} is forbidden: User "system:serviceaccount:{route.namespace or "default"}:default" '
                f'cannot {verb} resource "{r.plural}" in API group "{r.group}"{where}',
                {"group": r.group, "kind": r.plural, **({"name": route.name} if route.name else {})},
            )
        for i, (f_verb, f_resource, status) in enumerate(state.failures):
            if f_verb == verb and f_resource == r.plural:
                del state.failures[i]
                reason = "TooManyRequests" if status == 429 else "InternalError"
                raise _ApiError(status, reason, f"injected failure: {status} on {verb} {r.plural}")

    def serve(self, method: str, raw_path: str, headers: dict[str, str], raw_body: bytes) -> tuple[int, Any]:
        """Answer one request: (status, JSON value). Used by the HTTP handler."""
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query)
        content_type = headers.get("content-type", "").split(";")[0].strip()
        try:
            body = json.loads(raw_body) if raw_body else None
        except ValueError:
            body = raw_body.decode("utf-8", "replace")
        route = self._route(parts.path)
        verb = self._verb(method, route) if route else None
        record = RecordedRequest(
            method, parts.path, query, headers, body, verb, route.resource.plural if route else None
        )
        with self._state.lock:
            self._state.requests.append(record)
            if headers.get("authorization") != f"Bearer {self.token}":
                return 401, _ApiError(401, "Unauthorized", "Unauthorized").status()
            try:
                if method == "GET" and route is None:
                    found = discovery.document(parts.path)
                    if found is None:
                        raise _ApiError(404, "NotFound", "the server could not find the requested resource")
                    return 200, found
                if route is None:
                    raise _ApiError(404, "NotFound", "the server could not find the requested resource")
                if isinstance(body, str):
                    raise _ApiError(400, "BadRequest", "the request body is not valid JSON")
                self._check(str(verb), route)
                status, value = self._handle(method, route, query, content_type, body)
                return status, copy.deepcopy(value)
            except _ApiError as exc:
                return exc.code, exc.status()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                if self.command == "GET" and parse_qs(urlsplit(self.path).query).get("watch", [""])[0] in (
                    "1",
                    "true",
                ):
                    self._watch(headers)
                    return
                status, value = standin.serve(self.command, self.path, headers, raw)
                data = json.dumps(value).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _watch(self, headers: dict[str, str]) -> None:
                status, error, events = standin.watch_events(self.path, headers)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if events is None:
                    data = json.dumps(error).encode()
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                watching.write_chunked(self.wfile, events)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        return Handler
