"""The ``http`` trigger: one HTTP request per firing, over pooled connections.

What Argo's HTTP trigger sends, plus two headers of knevents': the idempotency
key ``Knevents-Event-Ids`` (sorted event ids of the firing) and the W3C
``traceparent`` of the firing. ``secureHeaders`` and ``basicAuth`` come from
Secrets (or ConfigMaps) through ``ctx.secrets``; ``tls`` builds an SSL context
from Secret PEMs. Clients are pooled per (TLS material, event loop): a sensor
replica keeps its connections warm across invocations; a loop's pools close
with it (:mod:`.pools`).

Outcomes: a status allowed by ``policy.status`` (default 2xx) is success; 5xx,
408 and 429 are retryable, other statuses permanent; timeouts and connection
errors are retryable. Errors name the method, URL (password removed) and
status, and any secret value is scrubbed from the text.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import ssl
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from knevents import errors, http11
from knevents.sensors import params
from knevents.spec import models, sensor_rules
from knevents.triggers import base, outbound, policy, pools

if TYPE_CHECKING:
    import httpx

    from knevents.sensors import engine

__all__ = ["TRIGGER", "HttpTrigger", "aclose", "ssl_context"]

_BODY_SNIPPET = 200
_ANSWER_KEPT = 64 * 1024
"""Bytes of an answer read through httpx; an error shows the first :data:`_BODY_SNIPPET` of them."""
_POOLS: pools.LoopPools[tuple[str, ...], httpx.AsyncClient] = pools.LoopPools(lambda client: client.aclose())
_CONTEXTS: dict[str, ssl.SSLContext] = {}
_FAST: pools.LoopPools[tuple[str, float], http11.Http11Pool] = pools.LoopPools(lambda pool: pool.close())
_FAST_POOLS_MAX = 256
"""Distinct (URL, timeout) pools kept per event loop; URLs set by parameters could otherwise grow it forever."""


def ssl_context(
    tls: Any, ctx: base.TriggerContext
) -> tuple[ssl.SSLContext | bool, tuple[str, ...], list[str]]:
    """The ``verify`` value for httpx, a pool key, and the secret values it used (for scrubbing)."""
    if tls is None:
        return True, ("default",), []
    secrets = ctx.secrets
    ca = secrets.secret(tls.ca_cert_secret) if getattr(tls, "ca_cert_secret", None) else None
    cert = secrets.secret(tls.client_cert_secret) if getattr(tls, "client_cert_secret", None) else None
    key = secrets.secret(tls.client_key_secret) if getattr(tls, "client_key_secret", None) else None
    insecure = bool(getattr(tls, "insecure_skip_verify", False))
    if (cert is None) != (key is None):
        raise errors.TriggerError(
            "tls needs both clientCertSecret and clientKeySecret for a client certificate"
        )
    digest = hashlib.sha256("\0".join(v or "" for v in (ca, cert, key, str(insecure))).encode()).hexdigest()
    context = _CONTEXTS.get(digest)
    if context is None:  # building one loads the system CA store: do it once per TLS configuration
        context = _CONTEXTS[digest] = _build_context(ca, cert, key, insecure)
    return context, ("tls", digest), [v for v in (cert, key) if v]


def _build_context(ca: str | None, cert: str | None, key: str | None, insecure: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        if ca:
            context.load_verify_locations(cadata=ca)
        if cert and key:
            _load_client_cert(context, cert, key)
    except (ssl.SSLError, ValueError) as exc:
        raise errors.TriggerError(
            f"tls: the certificate or key in the referenced secrets is not valid PEM ({exc.__class__.__name__})"
        ) from None
    return context


def _load_client_cert(context: ssl.SSLContext, cert: str, key: str) -> None:
    # ssl only loads a certificate chain from files: write both to a private temp dir, load, remove.
    with tempfile.TemporaryDirectory(prefix="knevents-tls-") as tmp:
        cert_path, key_path = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        for path, text in ((cert_path, cert), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(text if text.endswith("\n") else text + "\n")
        context.load_cert_chain(cert_path, key_path)


def _client(
    key: tuple[str, ...], verify: ssl.SSLContext | bool, ctx: base.TriggerContext
) -> httpx.AsyncClient:
    import httpx

    pool = _POOLS.here()
    client = pool.get(key)
    if client is None or client.is_closed:
        limits = httpx.Limits(max_connections=ctx.settings.http.max_connections)
        client = pool[key] = httpx.AsyncClient(verify=verify, limits=limits, follow_redirects=False)
    return client


async def aclose() -> None:
    """Close the pooled clients of the running event loop."""
    await _POOLS.aclose()
    await _FAST.aclose()


def _fast_path(url: str, spec: Any) -> bool:
    """Plain ``http://``, no TLS settings, no credentials in the URL and no proxy: the small client serves it.

    httpx costs ~4 ms of CPU per request under concurrency on these machines (pool contention in
    httpcore), ten times the small keep-alive client; TLS, proxies and URL credentials keep httpx.
    """
    if not url.startswith("http://") or getattr(spec, "tls", None) is not None:
        return False
    netloc = url[len("http://"):].split("/", 1)[0]
    if "@" in netloc:
        return False
    return not any(os.environ.get(name) for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"))


def _fast_pool(url: str, timeout: float, ctx: base.TriggerContext) -> http11.Http11Pool:
    here = _FAST.here()
    pool = here.get((url, timeout))
    if pool is None:
        if len(here) >= _FAST_POOLS_MAX:  # the oldest goes, its connections closed rather than left behind
            _FAST.retire(here.pop(next(iter(here))))
        pool = here[(url, timeout)] = http11.Http11Pool(
            url, timeout=timeout, max_connections=ctx.settings.http.max_connections
        )
    return pool


async def _send_fast(
    method: str, url: str, headers: dict[str, str], body: bytes, auth: tuple[str, str] | None,
    timeout: float, ctx: base.TriggerContext,
) -> tuple[int, str, dict[str, str]]:
    if auth is not None:
        import base64

        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
        headers = {**headers, "Authorization": f"Basic {token}"}
    answer = await _fast_pool(url, timeout, ctx).request(method, headers, body)
    return answer.status, answer.body[:_BODY_SNIPPET * 4].decode("utf-8", "replace"), answer.headers


def _headers(
    spec: Any, resolved: engine.Resolved, ctx: base.TriggerContext
) -> tuple[dict[str, str], list[str]]:
    headers: dict[str, str] = {}
    secret_values: list[str] = []
    if resolved.payload is not None:
        headers["Content-Type"] = "application/json"
    headers.update({str(k): str(v) for k, v in (getattr(spec, "headers", None) or {}).items()})
    for secure in getattr(spec, "secure_headers", None) or []:
        source = secure.value_from
        if source is None:
            raise errors.TriggerError(f"secureHeaders {secure.name}: valueFrom is required")
        if getattr(source, "secret_key_ref", None) is not None:
            value = ctx.secrets.secret(source.secret_key_ref)
        elif getattr(source, "config_map_key_ref", None) is not None:
            value = ctx.secrets.configmap(source.config_map_key_ref)
        else:
            raise errors.TriggerError(
                f"secureHeaders {secure.name}: valueFrom needs secretKeyRef or configMapKeyRef"
            )
        headers[secure.name] = value
        secret_values.append(value)
    headers.update(_dynamic_headers(spec, resolved))
    if getattr(spec, "host", None):
        headers["Host"] = str(spec.host)
    headers[base.EVENT_IDS_HEADER] = base.event_ids(resolved.events)
    if ctx.traceparent:
        headers["traceparent"] = ctx.traceparent
    return headers, secret_values


def _dynamic_headers(spec: Any, resolved: engine.Resolved) -> dict[str, str]:
    """``dynamicHeaders``: header name (``dest``) to a value taken from the firing's events, as parameters are."""
    found = getattr(spec, "dynamic_headers", None) or []
    names = [p.src.dependency_name for p in found if p.src is not None]
    try:
        compiled = params.compile_params(found, "http.dynamicHeaders", names)
        headers = {}
        for param in compiled:
            value, _ = params.resolve_value(param, resolved.events)
            if value is not None and param.dest:
                headers[param.dest] = value
    except (params.ParamError, params.ParamSpecError) as exc:
        raise errors.TriggerError(f"dynamicHeaders: {exc}") from None
    return headers


def _basic_auth(spec: Any, ctx: base.TriggerContext) -> tuple[tuple[str, str] | None, list[str]]:
    auth = getattr(spec, "basic_auth", None)
    if auth is None:
        return None, []
    username = ctx.secrets.secret(auth.username) if getattr(auth, "username", None) else ""
    password = ctx.secrets.secret(auth.password) if getattr(auth, "password", None) else ""
    return (username, password), [password]


def _retry_after(headers: Any) -> float | None:
    """Seconds from a numeric ``Retry-After`` header (the HTTP-date form is ignored)."""
    value = str(headers.get("retry-after") or "").strip()
    return float(value) if value.isdigit() else None


class HttpTrigger:
    """Sends the firing's payload to ``template.http.url``."""

    async def execute(self, resolved: engine.Resolved, ctx: base.TriggerContext) -> base.TriggerResult:
        spec = resolved.spec.template.http
        if spec is None:
            raise errors.TriggerError("the trigger has no template.http section")
        method = (getattr(spec, "method", None) or "POST").upper()
        url = str(spec.url or "")
        shown = f"{method} {base.redact_url(url)}"
        if not url.startswith(("http://", "https://")):
            raise errors.TriggerError(
                f"http trigger url {base.redact_url(url)!r} must start with http:// or https://"
            )
        if outbound.url_from_event(resolved.spec) and not ctx.settings.http.allow_internal_targets:
            await outbound.check(url, shown)  # before any connection: event data must not pick internal hosts
        headers, secret_values = _headers(spec, resolved, ctx)
        auth, auth_secrets = _basic_auth(spec, ctx)
        verify, pool_key, tls_secrets = ssl_context(getattr(spec, "tls", None), ctx)
        hidden = [*secret_values, *auth_secrets, *tls_secrets]
        if ctx.dry_run:
            return base.TriggerResult(resolved.trigger, resolved.kind, f"dry run: would send {shown}")
        timeout = float(getattr(spec, "timeout", None) or ctx.settings.http.timeout)
        if _fast_path(url, spec):
            try:
                status, text, answer_headers = await _send_fast(
                    method, url, headers, resolved.payload or b"", auth, timeout, ctx
                )
            except TimeoutError:
                raise errors.TriggerRetryableError(f"{shown} timed out after {timeout:g}s") from None
            except (OSError, asyncio.IncompleteReadError) as exc:
                reason = base.scrub(str(exc) or exc.__class__.__name__, hidden)
                raise errors.TriggerRetryableError(f"{shown} failed: {reason}") from None
        else:
            status, text, answer_headers = await _send_httpx(
                method, url, headers, resolved.payload or b"", auth, timeout, (pool_key, verify), ctx, shown,
                hidden,
            )
        try:
            policy.check_status(status, resolved.spec.policy, shown)
        except errors.KneventsError as exc:
            snippet = base.scrub(text[:_BODY_SNIPPET], hidden).strip()
            detail = f"{exc}: {snippet}" if snippet else str(exc)
            if isinstance(exc, errors.TemporaryError):  # keep the server's Retry-After for the broker answer
                raise errors.TriggerRetryableError(detail, delay=_retry_after(answer_headers)) from None
            raise errors.TriggerError(detail) from None
        return base.TriggerResult(
            resolved.trigger, resolved.kind, f"{shown} -> {status}", status=status
        )


async def _send_httpx(
    method: str, url: str, headers: dict[str, str], body: bytes, auth: tuple[str, str] | None,
    timeout: float, tls: tuple[tuple[str, ...], ssl.SSLContext | bool], ctx: base.TriggerContext,
    shown: str, hidden: list[str],
) -> tuple[int, str, Any]:
    """Send through httpx; ``timeout`` bounds the whole exchange, as Go's ``http.Client.Timeout`` does in Argo.

    httpx's own timeout bounds each network operation only, and ``request`` reads the whole answer into
    memory: a target sending a large or endless body held the firing and grew the process. The status is
    what decides the outcome (Argo reads nothing more), so at most :data:`_ANSWER_KEPT` bytes are read for an
    error's text, and a body still arriving at the deadline is cut there, the status standing.
    """
    import httpx

    client = _client(tls[0], tls[1], ctx)
    deadline = asyncio.get_running_loop().time() + timeout
    request = client.build_request(method, url, content=body, headers=headers, timeout=timeout)
    try:
        async with asyncio.timeout_at(deadline):
            response = await client.send(request, auth=auth, stream=True)
    except (httpx.TimeoutException, TimeoutError):
        raise errors.TriggerRetryableError(f"{shown} timed out after {timeout:g}s") from None
    except (httpx.HTTPError, OSError) as exc:  # OSError: ssl.SSLError can surface unwrapped (TLS 1.3 alerts)
        reason = base.scrub(str(exc) or exc.__class__.__name__, hidden)
        raise errors.TriggerRetryableError(f"{shown} failed: {reason}") from None
    kept = bytearray()
    try:
        with contextlib.suppress(TimeoutError, httpx.HTTPError, OSError):  # the status is known: it decides
            async with asyncio.timeout_at(deadline):
                async for chunk in response.aiter_bytes():
                    kept += chunk
                    if len(kept) >= _ANSWER_KEPT:  # the rest is not read: the connection closes, not reused
                        break
    finally:
        await response.aclose()
    return response.status_code, kept[:_ANSWER_KEPT].decode("utf-8", "replace"), response.headers


METHODS = ("GET", "DELETE", "PATCH", "POST", "PUT")
"""The methods Argo's HTTP trigger accepts (upper case only)."""


def _check(http: models.HTTPTrigger, ctx: base.CheckContext) -> Iterator[tuple[str, str]]:
    path = ctx.path
    if not http.url:
        yield f"{path}.url", "an http trigger needs a `url`"
    if http.method and http.method not in METHODS:
        hint = f" (write `{http.method.upper()}`)" if http.method.upper() in METHODS else ""
        yield (
            f"{path}.method",
            f"method `{http.method}` is not supported: use GET, DELETE, PATCH, POST or PUT{hint}",
        )
    yield from sensor_rules.check_parameters(http.parameters, f"{path}.parameters", ctx.dependencies)
    yield from sensor_rules.check_parameters(
        http.payload, f"{path}.payload", ctx.dependencies, dest_required=False
    )
    yield from policy.check_status_policy(ctx.trigger, ctx.trigger_path)


TRIGGER = base.TriggerKind(
    key="http",
    model=models.HTTPTrigger,
    executor=HttpTrigger(),
    summary="one HTTP request per firing; the payload built from the events is the body",
    check=_check,
)
