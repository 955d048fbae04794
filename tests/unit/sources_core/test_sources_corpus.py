"""Every EventSource of the corpus whose types this part runs builds a runtime and takes a request.

The corpus: the repository's ``examples/`` (the seed documents' manifests
included), and Argo Events' own ``examples/`` when ``$KNEVENTS_ARGO_EXAMPLES``
is there. For each push route a well-formed
request is sent (signed / authorised with the test secret) and must be
answered 2xx with one event on the bus.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest
import yaml
from knevents import bus, errors, validation, web
from knevents.runtime import source
from knevents.secrets import SecretResolver

from tests import upstream

ROOT = Path(__file__).resolve().parents[3]
MINE = {"webhook", "github", "gitlab", "calendar", "nats"}
SECRET = "corpus-secret"


def _upstream() -> Path | None:
    return upstream.examples_dir()


def _manifests() -> list[tuple[str, dict[str, Any]]]:
    roots = [ROOT / "examples"]
    upstream = _upstream()
    if upstream is not None:
        roots.append(upstream)
    out = []
    for root in roots:
        for path in sorted(root.rglob("*.yaml")):
            try:
                docs = list(yaml.safe_load_all(path.read_text()))
            except yaml.YAMLError:
                continue
            for i, doc in enumerate(docs):
                if not isinstance(doc, dict) or doc.get("kind") != "EventSource":
                    continue
                keys = {k for k, v in (doc.get("spec") or {}).items() if isinstance(v, dict) and v}
                keys -= {"template", "service"}
                if keys and keys <= MINE and _valid(doc):
                    out.append((f"{path.relative_to(root.parent)}#{i}", doc))
    return out


def _valid(doc: dict[str, Any]) -> bool:
    """Manifests the spec rejects (upstream's pre-1.0 ``spec.type`` tutorial) are the spec tests' concern."""
    try:
        validation.parse_event_source(doc)
    except errors.SpecError:
        return False
    return True


CORPUS = _manifests()


class _AnySecret(SecretResolver):
    def secret(self, selector: Any) -> str:
        return SECRET


def _request(key: str, method: str, endpoint: str) -> web.Request:
    body = b'{"corpus": true}'
    headers = [("Content-Type", "application/json"), ("Authorization", f"Bearer {SECRET}")]
    if key == "github":
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers += [("X-Hub-Signature-256", f"sha256={digest}"), ("X-GitHub-Event", "push"),
                    ("X-GitHub-Delivery", "d-1")]
    if key == "gitlab":
        headers += [("X-Gitlab-Token", SECRET), ("X-Gitlab-Event", "Push Hook")]
    if method == "GET":
        return web.Request("GET", endpoint, web.Headers(headers), b"", "a=1")
    return web.Request(method, endpoint, web.Headers(headers), body)


def test_the_corpus_is_not_empty() -> None:
    names = " ".join(name for name, _ in CORPUS)
    for expected in ("webhook", "github", "calendar"):
        assert expected in names


@pytest.mark.parametrize("name, doc", CORPUS, ids=[name for name, _ in CORPUS])
def test_corpus_event_source_runs(name: str, doc: dict[str, Any]) -> None:
    model = validation.parse_event_source(doc, file=name)
    memory = bus.MemoryPublisher()
    rt = source.SourceRuntime(model, memory, secrets=_AnySecret())
    keys = {k for k, v in doc["spec"].items() if isinstance(v, dict)}

    async def exercise() -> None:
        for port, endpoint, method in rt.routes():
            key = "github" if "github" in keys and endpoint in _endpoints(doc, "github") else \
                "gitlab" if "gitlab" in keys and endpoint in _endpoints(doc, "gitlab") else "webhook"
            if key == "github":
                events_list = [cfg.get("events") for cfg in doc["spec"]["github"].values()]
                if any(e and "*" not in e and "push" not in e for e in events_list):
                    continue
            if key == "gitlab":
                events_list = [cfg.get("events") for cfg in doc["spec"]["gitlab"].values()]
                if any(e and "PushEvents" not in e for e in events_list):
                    continue
            before = len(memory.events)
            answer = await rt.handle(_request(key, method or "POST", endpoint), port)
            assert 200 <= answer.status < 300, (endpoint, answer.status, answer.body)
            filtered = any((cfg or {}).get("filter") for v in doc["spec"].values() if isinstance(v, dict)
                           for cfg in v.values() if isinstance(cfg, dict))
            if not filtered:
                assert len(memory.events) == before + 1

    asyncio.run(exercise())


def _endpoints(doc: dict[str, Any], key: str) -> set[str]:
    out = set()
    for cfg in doc["spec"][key].values():
        endpoint = (cfg.get("webhook") or {}).get("endpoint") or ""
        out.add(endpoint if endpoint.startswith("/") else "/" + endpoint)
    return out
