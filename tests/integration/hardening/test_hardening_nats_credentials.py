"""Issue 12 §3 (cluster): functions authenticate to NATS from settings; render mounts the credentials Secret."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from knevents import errors
from knevents.bus import jetstream
from knevents.deploy import options, render
from knevents.local import natsd
from knevents.settings import NatsSettings, Settings
from knevents.state import jetstream as state_jetstream

PASSWORD = "cluster-pa55-1234"


@pytest.fixture
def auth_server(tmp_path: Path) -> Any:
    config = tmp_path / "auth.conf"
    config.write_text('authorization { users: [ {user: "fn", password: "' + PASSWORD + '"} ] }\n')
    with natsd.NatsServer(store_dir=tmp_path / "js", config_file=config) as server:
        yield server


async def test_bus_and_state_connect_with_user_and_password_settings(auth_server: natsd.NatsServer) -> None:
    anonymous = NatsSettings(url=auth_server.url, connect_timeout=2)
    with pytest.raises(errors.BusUnavailableError):
        await jetstream.connect(anonymous)
    authed = dataclasses.replace(anonymous, user="fn", password=PASSWORD)
    nc = await jetstream.connect(authed)
    await nc.close()
    store = await state_jetstream.JetStreamStore.connect(auth_server.url, settings=dataclasses.replace(
        Settings(), nats=authed))
    await store.close()


def test_auth_options_map_to_nats_py() -> None:
    settings = NatsSettings.from_env({"KNEVENTS_NATS_CREDS": "/s/nats.creds", "KNEVENTS_NATS_NKEY": "/s/seed",
                                      "KNEVENTS_NATS_USER": "u", "KNEVENTS_NATS_PASSWORD": "p"})
    assert settings.auth_options() == {"user_credentials": "/s/nats.creds", "nkeys_seed": "/s/seed",
                                       "user": "u", "password": "p"}
    assert NatsSettings.from_env({}).auth_options() == {}


def test_render_mounts_the_credentials_secret_into_functions_that_use_nats() -> None:
    sensor = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Sensor", "metadata": {"name": "s"},
              "spec": {"dependencies": [{"name": "d", "eventSourceName": "e", "eventName": "x"}],
                       "triggers": [{"template": {"name": "log", "log": {}}}]}}
    rendering = render.render([], [sensor], options=options.RenderOptions(nats_credentials_secret="nats-creds"))
    [service] = [o for o in rendering.objects if o["kind"] == "Service"]
    pod = service["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["KNEVENTS_NATS_CREDS"] == "/var/run/secrets/knevents/nats-creds/nats.creds"
    assert {"name": "secret-nats-creds", "secret": {"secretName": "nats-creds"}} in pod["volumes"] or any(
        v.get("secret", {}).get("secretName") == "nats-creds" for v in pod["volumes"])
    assert any(m["mountPath"] == "/var/run/secrets/knevents/nats-creds" for m in pod["containers"][0]["volumeMounts"])
    plain = render.render([], [sensor])
    [service] = [o for o in plain.objects if o["kind"] == "Service"]
    assert "KNEVENTS_NATS_CREDS" not in str(service)
