"""``knevents hooks apply|delete`` and the hook lifecycle of ``knevents run``, against a GitHub API stand-in."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.e2e import harness
from tests.fixtures.provider_api import ProviderApi

TOKEN = "ghp_e2e_token_value_0123"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write(folder: Path, api: str, delete_on_finish: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"apiVersion": "argoproj.io/v1alpha1", "kind": "EventSource", "metadata": {"name": "github"},
           "spec": {"github": {"example": {
               "repositories": [{"owner": "argoproj", "names": ["argo-events"]}],
               "webhook": {"endpoint": "/push", "port": str(_free_port()), "method": "POST", "url": "https://spec.example.com"},
               "events": ["push"], "apiToken": {"name": "github-access", "key": "token"},
               "githubBaseURL": api, "githubUploadURL": api, "active": True, "contentType": "json",
               "deleteHookOnFinish": delete_on_finish}}}}
    (folder / "github.yaml").write_text(yaml.safe_dump(doc))
    return folder


def test_cli_apply_is_idempotent_delete_cleans_up_and_dry_run_masks(tmp_path: Path) -> None:
    api = ProviderApi("github", TOKEN, {"repos/argoproj/argo-events"})
    try:
        folder = _write(tmp_path / "m", api.url)
        env = harness.knevents_env(tmp_path, {"KNEVENTS_SECRET_GITHUB_ACCESS_TOKEN": TOKEN})
        url = ["--url", "https://hooks.example.com"]
        dry = harness.cli(["hooks", "apply", str(folder), *url, "--dry-run"], env, tmp_path)
        assert dry.returncode == 0 and "[dry-run]" in dry.stdout and TOKEN not in dry.stdout + dry.stderr
        assert api.requests == []
        first = harness.cli(["hooks", "apply", str(folder), *url], env, tmp_path)
        assert first.returncode == 0, first.stderr
        assert "repos/argoproj/argo-events: created" in first.stdout
        second = harness.cli(["hooks", "apply", str(folder), *url], env, tmp_path)
        assert "unchanged" in second.stdout and len(api.mutations("POST")) == 1
        assert api.all_hooks()[0]["config"]["url"] == "https://hooks.example.com/push"
        gone = harness.cli(["hooks", "delete", str(folder), *url], env, tmp_path)
        assert gone.returncode == 0 and "deleted" in gone.stdout and api.all_hooks() == []
        bad = harness.cli(["hooks", "apply", str(folder), *url], {**env, "KNEVENTS_SECRET_GITHUB_ACCESS_TOKEN": "nope"},
                          tmp_path)
        assert bad.returncode == 1
        assert "github repos/argoproj/argo-events: bad credentials" in bad.stderr and "nope" not in bad.stderr
    finally:
        api.close()


def test_run_applies_hooks_at_start_and_deletes_them_on_stop(tmp_path: Path) -> None:
    api = ProviderApi("github", TOKEN, {"repos/argoproj/argo-events"})
    runner = None
    try:
        folder = _write(tmp_path / "m", api.url, delete_on_finish=True)
        env = harness.knevents_env(tmp_path, {"KNEVENTS_SECRET_GITHUB_ACCESS_TOKEN": TOKEN})
        runner = harness.RunnerProcess([folder], tmp_path / "state", env).start()
        runner.wait_for(lambda r: "hook github repos/argoproj/argo-events: created" in str(r.get("msg")), "hook line")
        assert api.all_hooks()[0]["config"]["url"] == "https://spec.example.com/push"
        assert runner.stop() == 0
        assert api.all_hooks() == [] and len(api.mutations("DELETE")) == 1
        assert TOKEN not in runner.output()
        quiet = harness.RunnerProcess([folder], tmp_path / "state2", env, args=["--no-hooks"]).start()
        assert quiet.stop() == 0 and len(api.mutations("POST")) == 1
    finally:
        if runner is not None:
            runner.kill()
        api.close()
