"""terraform/modules/knevents-hooks: `terraform apply` runs `knevents hooks apply`, `destroy` runs `hooks delete`.

Offline: the module needs no provider plugin (terraform_data is built in); the GitHub API is the stand-in of
tests/fixtures/provider_api.py, the token is passed as knevents reads secrets (an environment variable).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from unittest import mock

import yaml

from tests.deploy import tfrun
from tests.fixtures.provider_api import ProviderApi

TOKEN = "ghp_terraform_token_0123"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_apply_creates_the_hook_and_destroy_deletes_it(tmp_path: Path) -> None:
    api = ProviderApi("github", TOKEN, {"repos/argoproj/argo-events"})
    try:
        manifests = tmp_path / "manifests"
        manifests.mkdir()
        (manifests / "github.yaml").write_text(yaml.safe_dump({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "EventSource", "metadata": {"name": "github"},
            "spec": {"github": {"example": {
                "repositories": [{"owner": "argoproj", "names": ["argo-events"]}], "events": ["push"],
                "webhook": {"endpoint": "/push", "port": str(_port()), "method": "POST"},
                "apiToken": {"name": "github-access", "key": "token"}, "active": True,
                "githubBaseURL": api.url, "githubUploadURL": api.url}}}}))
        root = tfrun.scratch(tmp_path)
        module = root / "terraform" / "modules" / "knevents-hooks"
        (module / "terraform.tfvars.json").write_text(json.dumps({
            "manifests_dir": str(manifests), "public_url": "https://hooks.example.com",
            "knevents_command": f"{sys.executable} -m knevents"}))
        config = tfrun.cli_config(tmp_path)
        env = {"KNEVENTS_SECRET_GITHUB_ACCESS_TOKEN": TOKEN, "HOME": str(tmp_path)}
        with mock.patch.dict(os.environ, env):
            tfrun.terraform(module, "init", "-backend=false", "-input=false", config=config)
            tfrun.terraform(module, "apply", "-auto-approve", config=config)
            assert [h["config"]["url"] for h in api.all_hooks()] == ["https://hooks.example.com/push"]
            tfrun.terraform(module, "apply", "-auto-approve", config=config)  # nothing changed: no new call
            assert len(api.mutations("POST")) == 1
            tfrun.terraform(module, "destroy", "-auto-approve", config=config)
        assert api.all_hooks() == []
    finally:
        api.close()
