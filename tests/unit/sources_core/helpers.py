"""Small builders shared by the event-source tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from knevents import bus, errors, validation, web
from knevents.runtime import source
from knevents.secrets import SecretResolver
from knevents.settings import SecretSettings


def event_source(spec_body: Mapping[str, Any], name: str = "es") -> Any:
    """An EventSource model from its ``spec``."""
    return validation.parse_event_source(
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "EventSource", "metadata": {"name": name}, "spec": spec_body}
    )


def runtime(
    spec_body: Mapping[str, Any],
    publisher: Any = None,
    *,
    secrets: Mapping[str, str] | None = None,
    name: str = "es",
) -> tuple[source.SourceRuntime, bus.MemoryPublisher]:
    """A runtime over a memory bus; ``secrets`` maps ``name/key`` to values (env fallback)."""
    env = {}
    for ref, value in (secrets or {}).items():
        secret_name, key = ref.split("/")
        from knevents.secrets import env_name

        env[env_name("SECRET", secret_name, key)] = value
    resolver = SecretResolver(SecretSettings(secrets_dir="/nonexistent", configmaps_dir="/nonexistent"), env)
    memory = bus.MemoryPublisher()
    rt = source.SourceRuntime(event_source(spec_body, name), publisher or memory, secrets=resolver)
    return rt, memory


def request(
    method: str,
    path: str,
    body: bytes = b"",
    headers: Mapping[str, str] | list[tuple[str, str]] | None = None,
    query: str = "",
) -> web.Request:
    """A web.Request."""
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    return web.Request(method=method, path=path, headers=web.Headers(pairs), body=body, query_string=query)


class QuotaBus:
    """A batch-publishing bus that accepts the first ``quota`` events and refuses every later one.

    It stands for a bus that goes down in the middle of a burst: a source must ack exactly the accepted
    events upstream. ``batches`` records the size of each ``publish_many`` (a source batches when some
    are larger than one); ``refusals`` counts the calls that refused something (once it is 2, the source
    has acted on the first refusal: what it acks for the accepted ones was sent); ``quota = None``
    accepts everything.
    """

    def __init__(self, quota: int | None) -> None:
        self.quota = quota
        self.events: list[Any] = []
        self.batches: list[int] = []
        self.refusals = 0

    def _take(self, event: Any) -> BaseException | None:
        if self.quota is not None and len(self.events) >= self.quota:
            return errors.BusUnavailableError(f"quota bus refused event {event.id}")
        self.events.append(event)
        return None

    async def publish(self, event: Any) -> None:
        """Accept ``event`` or raise BusUnavailableError."""
        self.batches.append(1)
        if (refused := self._take(event)) is not None:
            self.refusals += 1
            raise refused

    async def publish_many(self, batch: Any) -> list[BaseException | None]:
        """Per event: ``None`` when accepted, BusUnavailableError once the quota is used."""
        self.batches.append(len(batch))
        outcomes = [self._take(event) for event in batch]
        self.refusals += any(outcomes)
        return outcomes

    async def close(self) -> None:
        """Nothing to release."""
