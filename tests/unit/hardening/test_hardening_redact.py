"""Issue 12 §6: the one redaction function masks secrets in their encoded forms, auth headers and URL user info."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from knevents import redact

SECRET = "s3cret/val+ue="


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    redact.clear()
    redact.register(SECRET)
    yield
    redact.clear()


@pytest.mark.parametrize("form", [SECRET, quote(SECRET, safe=""), base64.b64encode(SECRET.encode()).decode(),
                                  base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("=")])
def test_secret_forms_are_masked(form: str) -> None:
    assert form not in redact.redact(f"error: got {form} back")


@pytest.mark.parametrize("text", [
    "Authorization: Basic dXNlcjpwYXNzd29yZA==",
    '{"Authorization": "Bearer abc.def.ghi"}',
    "{'authorization': ['Token zzzzzzzzzzzz']}",
    "proxy-authorization=Basic dXNlcjpwYXNzd29yZA",
    "sent with basic dXNlcjpwYXNzd29yZA== to the target",
])
def test_auth_credentials_are_masked(text: str) -> None:
    out = redact.redact(text)
    assert "dXNlcjpwYXNzd29yZA" not in out and "abc.def.ghi" not in out and "zzzzzzzzzzzz" not in out


def test_url_user_info_is_masked_and_the_rest_kept() -> None:
    out = redact.redact("cannot connect to nats://app:hunter22@10.0.0.1:4222, https://u@h/x")
    assert "hunter22" not in out and "app:" not in out and "nats://***@10.0.0.1:4222" in out and "https://***@h/x" in out


def test_short_values_and_bytes() -> None:
    redact.register("ab")
    assert redact.redact("a cab") == "a cab"
    assert redact.redact_bytes(b"\xff" + SECRET.encode()) == b"\xff***"
    assert redact.redact_values({"a": [SECRET, 1]}) == {"a": ["***", 1]}
