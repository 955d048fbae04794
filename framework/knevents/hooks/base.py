"""What every provider's hook manager shares: one HTTP client with dry-run, masking and error translation.

``knevents hooks apply`` talks to six REST APIs (GitHub, GitLab, Bitbucket
Cloud, Bitbucket Server, Gerrit, Stripe) with plain HTTP (httpx, already a
dependency) rather than six SDKs: one code path prints a dry run with every
secret masked, one place turns a 401 into "bad credentials" naming the
provider and the repository (never the token), and nothing heavy is imported
on a function's start path (this package is only used by the CLI and the
local runner).

:class:`Api` sends one request, or in dry-run mode prints it and sends
nothing. Secrets (tokens, hook secrets) are registered with it and replaced
by ``***`` in everything it prints or raises.

Every provider pages its hook lists (GitLab by 20, Bitbucket Cloud by 10 …):
reading only the first page misses a hook further on, and ``apply`` would then
create it a second time, so the provider would send every event twice.
:meth:`Api.list_all` follows the pages; each provider module says only how
its next page is named (a :data:`NextPage` function). A next page given as a
URL is followed only on the API's own scheme and host (the credentials go
with it), and at most :data:`MAX_PAGES` pages are read.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from knevents import errors

__all__ = ["MASK", "MAX_PAGES", "Api", "Context", "HookError", "NextPage", "Outcome", "Target", "hook_url",
           "link_next", "reconcile", "remove", "same_set"]

MASK = "***"
MAX_PAGES = 100
"""Pages one list call may take (10 000 hooks at 100 a page): a server that keeps saying "next" is an error."""

NextPage = Callable[[Any, Mapping[str, str], Mapping[str, str]], "str | dict[str, str] | None"]
"""How a provider names the page after one: given that page's parsed answer, its headers (lower-case names) and
the query that fetched it, the next page's absolute URL, or the query that fetches it, or ``None`` after the last."""


class HookError(errors.KneventsError):
    """A provider refused or failed a hook call; the message names provider and scope, never a secret."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one hook: ``created``, ``updated``, ``unchanged``, ``deleted``, ``absent`` or ``planned``."""

    provider: str
    scope: str
    action: str
    hook_id: str = ""

    def line(self) -> str:
        ident = f" (id {self.hook_id})" if self.hook_id else ""
        return f"{self.provider} {self.scope}: {self.action}{ident}"


def hook_url(base: str, endpoint: str | None) -> str:
    """Argo's ``FormattedURL``: the public base URL joined with the webhook endpoint."""
    return base.rstrip("/") + "/" + (endpoint or "").lstrip("/")


def same_set(a: Iterable[Any] | None, b: Iterable[Any] | None) -> bool:
    """Whether two event lists name the same events, in any order."""
    return set(a or ()) == set(b or ())


@dataclass(frozen=True)
class Target:
    """One spec entry whose hooks are managed: its type key, where it lives, its config and the hook URL."""

    key: str
    event_source: str
    event_name: str
    config: Any
    url: str


@dataclass
class Context:
    """How hook calls are made: secrets, dry run, where lines go, API base overrides (tests, on-prem)."""

    secrets: Any
    dry_run: bool = False
    out: Callable[[str], None] = print
    api_bases: Mapping[str, str] = field(default_factory=dict)

    def secret(self, selector: Any, provider: str, what: str) -> str:
        """A secret's value; HookError naming the provider and field when it cannot be read (a dry run shows a
        placeholder instead, so a plan can be printed where the credentials are not)."""
        try:
            return str(self.secrets.secret(selector))
        except errors.SecretError as exc:
            if self.dry_run:  # a plan needs no credentials: show where the value would come from
                return f"<{what} from secret {getattr(selector, 'name', '?')}/{getattr(selector, 'key', '?')}>"
            raise HookError(f"{provider}: {what}: {exc}") from None

    def api(self, provider: str, base: str, headers: Mapping[str, str], secrets: list[str], scope: str,
            **extra: Any) -> Api:
        """An :class:`Api` for one scope, honouring this context's dry run and output."""
        return Api(provider, base, headers, secrets, self.dry_run, self.out, scope=scope, **extra)


@dataclass
class Api:
    """One provider's REST API for one scope (a repository, project, group …)."""

    provider: str
    base: str
    headers: Mapping[str, str]
    secrets: list[str] = field(default_factory=list)
    dry_run: bool = False
    out: Callable[[str], None] = print
    scope: str = ""
    prefix: str = ""
    """Bytes to strip before parsing an answer (Gerrit's ``)]}'`` guard)."""

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, MASK)
        return text

    def _show(self, method: str, url: str, body: str) -> None:
        auth = ", ".join(f"{k}: {MASK}" for k in self.headers if k.lower() in ("authorization", "private-token"))
        self.out(self.mask(f"[dry-run] {self.provider} {self.scope}: {method} {url} [{auth}] {body}".rstrip()))

    def call(self, method: str, path: str, *, body: Any = None, form: list[tuple[str, str]] | None = None,
             params: Mapping[str, str] | None = None) -> Any:
        """Send one request and return the parsed answer; in dry-run mode print it and return ``None``."""
        url = self._url(path)
        if params:
            url += "?" + urlencode(params)
        payload = json.dumps(body) if body is not None else urlencode(form) if form is not None else ""
        if self.dry_run:
            self._show(method, url, payload)
            return None
        return self._send(method, url, body, form)[0]

    def list_all(self, path: str, params: Mapping[str, str] | None, values: Callable[[Any], list[dict[str, Any]]
                 | None], next_page: NextPage) -> list[dict[str, Any]] | None:
        """Every item of a paged list (``values`` takes them out of one page); ``None`` in a dry run, which prints
        the first call only."""
        if self.dry_run:
            return values(self.call("GET", path, params=params))
        url, query, items = self._url(path), dict(params or {}), []
        for _ in range(MAX_PAGES):
            answer, headers = self._send("GET", url + ("?" + urlencode(query) if query else ""), None, None)
            items += values(answer) or []
            following = next_page(answer, headers, query)
            if following is None:
                return items
            if isinstance(following, str):
                url, query = self._same_origin(following), {}
            else:
                query = following
        raise HookError(self.mask(f"{self.provider} {self.scope}: GET {path} still announced a next page after "
                                  f"{MAX_PAGES} pages; stopped rather than loop forever"))

    def _url(self, path: str) -> str:
        return self.base.rstrip("/") + "/" + path.lstrip("/")

    def _same_origin(self, url: str) -> str:
        """A next-page URL, refused unless it is on the API's scheme and host (our credentials go with it)."""
        given, ours = urlsplit(url), urlsplit(self.base)
        if (given.scheme, given.netloc) != (ours.scheme, ours.netloc):
            raise HookError(self.mask(f"{self.provider} {self.scope}: the next page is on another host "
                                      f"({given.scheme}://{given.netloc}, not {ours.scheme}://{ours.netloc}); "
                                      "not sending the credentials there"))
        return url

    def _send(self, method: str, url: str, body: Any, form: list[tuple[str, str]] | None
              ) -> tuple[Any, dict[str, str]]:
        """The parsed answer and its headers (names lower-cased)."""
        import httpx  # lazily: only the hooks commands need an HTTP client here

        headers = dict(self.headers)
        content = None
        if form is not None:  # encoded here: Stripe's lists repeat a key, which a dict would lose
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            content = urlencode(form).encode()
        try:
            answer = _client().request(method, url, headers=headers, json=body, content=content)
        except httpx.HTTPError as exc:
            raise HookError(self.mask(f"{self.provider} {self.scope}: {method} {url} failed: {exc}")) from None
        if answer.status_code in (401, 403):
            raise HookError(f"{self.provider} {self.scope}: bad credentials or no permission to manage hooks "
                            f"(HTTP {answer.status_code} from {method} {self.mask(url)})")
        if answer.status_code >= 400:
            raise HookError(self.mask(f"{self.provider} {self.scope}: {method} {url} answered "
                                      f"{answer.status_code}: {answer.text[:200]}"))
        text = answer.text.removeprefix(self.prefix).strip()
        return (json.loads(text) if text else None), {k.lower(): v for k, v in answer.headers.items()}


@functools.lru_cache(maxsize=1)
def _client() -> Any:
    """One pooled client for every hook call of the process (a TLS context per call costs ~50 ms)."""
    import httpx

    return httpx.Client(timeout=30.0)


def reconcile(api: Api, existing: list[dict[str, Any]] | None, match: Callable[[dict[str, Any]], bool],
              differs: Callable[[dict[str, Any]], bool], create: Callable[[], Any],
              update: Callable[[dict[str, Any]], Any], ident: Callable[[Any], str]) -> Outcome:
    """Create the hook when none matches, update it when it differs, else leave it (a second apply is a no-op)."""
    found = next((hook for hook in existing or [] if match(hook)), None)
    if found is None:
        made = create()
        action = "planned" if api.dry_run else "created"
        return Outcome(api.provider, api.scope, action, ident(made) if made else "")
    if differs(found):
        update(found)
        return Outcome(api.provider, api.scope, "planned" if api.dry_run else "updated", ident(found))
    return Outcome(api.provider, api.scope, "unchanged", ident(found))


def remove(api: Api, existing: list[dict[str, Any]] | None, match: Callable[[dict[str, Any]], bool],
           delete: Callable[[dict[str, Any]], Any], ident: Callable[[Any], str]) -> list[Outcome]:
    """Delete every hook that matches (those ``apply`` made point at this URL); ``absent`` when none does."""
    if api.dry_run and existing is None:
        return [Outcome(api.provider, api.scope, "planned")]
    out = []
    for hook in existing or []:
        if match(hook):
            delete(hook)
            out.append(Outcome(api.provider, api.scope, "deleted", ident(hook)))
    return out or [Outcome(api.provider, api.scope, "absent")]


@dataclass(frozen=True)
class Listed:
    """A provider whose hooks are a REST collection under each scope: ``GET/POST {scope}/{collection}``,
    ``{update}/DELETE {scope}/{collection}/{id}``; ``values`` unwraps the list envelope, ``key`` names the id field."""

    collection: str
    update: str = "PUT"
    key: str = "id"
    values: Callable[[Any], list[dict[str, Any]] | None] = lambda answer: answer
    url_of: Callable[[dict[str, Any]], Any] = lambda hook: hook.get("url")
    params: Mapping[str, str] | None = None
    """Query of the list call (GitHub pages by 30 unless asked for more)."""
    next_page: NextPage = lambda answer, headers, query: link_next(headers)
    """How the provider names the next page of the list (the ``Link`` header unless said otherwise)."""

    def _path(self, api: Api, hook: dict[str, Any] | None = None) -> str:
        base_path = f"{api.scope}/{self.collection}"
        return base_path if hook is None else f"{base_path}/{quote(str(hook[self.key]), safe='')}"

    def ident(self, hook: Any) -> str:
        return str(hook.get(self.key, "")) if isinstance(hook, dict) else ""

    def apply(self, api: Api, desired: dict[str, Any], url: str,
              differs: Callable[[dict[str, Any]], bool]) -> Outcome:
        """List, then create / update / leave the hook pointing at ``url``."""
        existing = api.list_all(self._path(api), self.params, self.values, self.next_page)
        return reconcile(api, existing, lambda hook: self.url_of(hook) == url, differs,
                         create=lambda: api.call("POST", self._path(api), body=desired),
                         update=lambda hook: api.call(self.update, self._path(api, hook), body=desired),
                         ident=self.ident)

    def delete(self, api: Api, url: str) -> list[Outcome]:
        """List, then delete every hook pointing at ``url``."""
        existing = api.list_all(self._path(api), self.params, self.values, self.next_page)
        return remove(api, existing, lambda hook: self.url_of(hook) == url,
                      lambda hook: api.call("DELETE", self._path(api, hook)), self.ident)


def envelope(answer: Any) -> list[dict[str, Any]] | None:
    """The ``values`` list of a Bitbucket answer (``None`` in a dry run)."""
    return None if answer is None else list(answer.get("values") or [])


def link_next(headers: Mapping[str, str]) -> str | None:
    """The ``rel="next"`` URL of an RFC 8288 ``Link`` header (GitHub, GitLab), ``None`` on the last page."""
    found = re.search(r'<([^>]*)>\s*;[^,]*\brel="?next"?', headers.get("link", ""))
    return found[1] if found else None
