"""``source.git``: a k8s trigger's resource read with the real ``git`` CLI from real repositories.

Over smart HTTP with basic auth (``git http-backend`` behind the ``git_http`` fixture), over ``file://``
and over ssh to a real sshd; the runtime test sends the event through the sensor runtime and the
Workflow lands in the Kubernetes stand-in.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from knevents import errors, events, triggers, validation
from knevents.local.natsd import free_port
from knevents.runtime.sensor import SensorRuntime
from knevents.secrets import SecretResolver, env_name
from knevents.settings import KubeSettings, SecretSettings, Settings
from knevents.state.memory import MemoryStore
from knevents.triggers import kube

from tests.fixtures.git_http import PASSWORD, USER, GitHttp, git, make_repo
from tests.fixtures.kube import KubeApi
from tests.fixtures.sshd import Sshd
from tests.unit.triggers import trigger_support as support

WORKFLOW = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: hello-world-}
spec:
  entrypoint: whalesay
  arguments: {parameters: [{name: message, value: none}]}
"""
# the first trigger of Argo's examples/sensors/trigger-source-git.yaml, pointed at the test server
SENSOR = """
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: trigger-source-git, namespace: argo-events}
spec:
  dependencies:
    - {name: test-dep, eventSourceName: webhook, eventName: example}
  triggers:
    - template:
        name: workflow-trigger-1
        k8s:
          operation: create
          source:
            git:
              url: URL
              cloneDirectory: /git/argoproj
              creds:
                username: {name: github-secret, key: username}
                password: {name: github-secret, key: password}
              filePath: examples/hello-world.yaml
              tag: v2.4.0
          parameters:
            - src: {dependencyName: test-dep, dataKey: body.message}
              dest: spec.arguments.parameters.0.value
"""
CREDS = {
    env_name("SECRET", "github-secret", "username"): USER,
    env_name("SECRET", "github-secret", "password"): PASSWORD,
}


def cm(name: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """master, main and a feature branch, a tag on main, a symlink and a directory."""
    path = make_repo(tmp_path / "repo", {
        "master": {"wf.yaml": cm("from-master"), "link.yaml": "->wf.yaml", "dir/inner.yaml": cm("inner"),
                   "bad.yaml": "kind: [unclosed\n"},
        "main": {"wf.yaml": cm("from-main")},
        "feature": {"deep/wf.yaml": cm("from-feature")},
    })
    git(path, "tag", "v1", "main")
    return path


@pytest.fixture
def settings(kube_api: KubeApi) -> Iterator[Settings]:
    kube.forget_clients()
    yield Settings(kube=KubeSettings(kubeconfig=str(kube_api.kubeconfig_path)))
    kube.forget_clients()


async def _fetch(spec: dict[str, Any], secrets: dict[str, str] | None = None) -> Any:
    trigger = support.trigger({"name": "t", "k8s": {"operation": "create", "source": {"git": spec}}})
    return await triggers.fetch_resource(trigger, support.context(secrets=secrets))


def test_argos_git_sensor_creates_the_workflow_over_http_with_creds(
    git_http: GitHttp, kube_api: KubeApi, settings: Settings, tmp_path: Path
) -> None:
    served = make_repo(git_http.root / "argo.git", {"master": {"examples/hello-world.yaml": WORKFLOW}})
    git(served, "tag", "v2.4.0")
    sensor = validation.parse_sensor(yaml.safe_load(SENSOR.replace("URL", git_http.url("argo.git"))))
    secrets = SecretResolver(SecretSettings(secrets_dir=str(tmp_path)), env=CREDS)
    runtime = SensorRuntime(sensor, MemoryStore(), settings=settings, secrets=secrets, observe=False)
    event = events.new_event(source="webhook", subject="example", type="webhook", data={"body": {"message": "hi"}})

    outcome = asyncio.run(runtime.process(event))

    assert [f.trigger for f in outcome.fired] == ["workflow-trigger-1"], outcome.to_json()
    [workflow] = kube_api.objects("argoproj.io", "v1alpha1", "workflows", "argo-events")
    assert workflow["metadata"]["name"].startswith("hello-world-")
    assert workflow["spec"]["arguments"]["parameters"][0]["value"] == "hi"
    assert git_http.seen_users  # the server saw authenticated requests


async def test_the_password_is_never_on_a_command_line(
    git_http: GitHttp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_repo(git_http.root / "r.git", {"master": {"wf.yaml": cm("seen")}})
    # a `git` first on PATH that records its arguments, then runs the real git
    wrapper, log = tmp_path / "bin", tmp_path / "argv.log"
    wrapper.mkdir()
    real = shutil.which("git")
    (wrapper / "git").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec {real} "$@"\n')
    (wrapper / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper}:{os.environ['PATH']}")
    spec = {"url": git_http.url("r.git"), "filePath": "wf.yaml",
            "creds": {"username": {"name": "github-secret", "key": "username"},
                      "password": {"name": "github-secret", "key": "password"}}}
    assert (await _fetch(spec, CREDS))["metadata"]["name"] == "seen"
    commands = log.read_text()
    assert "fetch" in commands and "cat-file" in commands
    assert PASSWORD not in commands


async def test_a_wrong_password_is_refused_and_never_shown(git_http: GitHttp) -> None:
    make_repo(git_http.root / "r.git", {"master": {"wf.yaml": cm("x")}})
    wrong = "not-the-pa55word-1234"
    spec = {"url": git_http.url("r.git"), "filePath": "wf.yaml",
            "creds": {"username": {"name": "github-secret", "key": "username"},
                      "password": {"name": "github-secret", "key": "password"}}}
    secrets = {**CREDS, env_name("SECRET", "github-secret", "password"): wrong}
    with pytest.raises(errors.TriggerError, match="Authentication failed") as refused:
        await _fetch(spec, secrets)
    assert not isinstance(refused.value, errors.TriggerRetryableError)
    assert wrong not in str(refused.value) and PASSWORD not in str(refused.value)
    with pytest.raises(errors.TriggerError, match="Authentication failed"):
        await _fetch({k: v for k, v in spec.items() if k != "creds"})  # no creds at all: no prompt, refused


async def test_a_failing_or_unreachable_server_is_retryable(git_http: GitHttp) -> None:
    make_repo(git_http.root / "r.git", {"master": {"wf.yaml": cm("x")}})
    git_http.fail_with = 503
    with pytest.raises(errors.TriggerRetryableError, match="returned error: 503"):
        await _fetch({"url": git_http.url("r.git"), "filePath": "wf.yaml"})
    url = f"http://bot:url-pa55word@127.0.0.1:{free_port()}/r.git"  # a password written in the URL
    with pytest.raises(errors.TriggerRetryableError, match=r"source\.git http://bot:\*\*\*@127\.0\.0\.1") as down:
        await _fetch({"url": url, "filePath": "wf.yaml"})
    assert "url-pa55word" not in str(down.value)


@pytest.mark.parametrize(
    ("choice", "name"),
    [
        ({}, "from-master"),  # Argo's default branch
        ({"branch": "main"}, "from-main"),
        ({"tag": "v1"}, "from-main"),
        ({"ref": "refs/heads/feature", "filePath": "/deep/wf.yaml"}, "from-feature"),
        ({"branch": "master", "tag": "v1"}, "from-main"),  # tag wins over branch, as in Argo
    ],
)
async def test_branch_tag_and_ref_choose_the_commit(repo: Path, choice: dict[str, str], name: str) -> None:
    resource = await _fetch({"url": f"file://{repo}", "filePath": "wf.yaml", **choice})
    assert resource["metadata"]["name"] == name


async def test_a_remote_is_fetched_from_its_first_url(repo: Path, tmp_path: Path) -> None:
    fork = make_repo(tmp_path / "fork", {"master": {"wf.yaml": cm("from-fork")}})
    remote = {"name": "upstream", "urls": [f"file://{fork}"]}
    resource = await _fetch({"url": f"file://{repo}", "filePath": "wf.yaml", "remote": remote})
    assert resource["metadata"]["name"] == "from-fork"


async def test_without_master_the_default_branch_is_read(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"trunk": {"wf.yaml": cm("from-trunk")}})
    assert (await _fetch({"url": f"file://{repo}", "filePath": "wf.yaml"}))["metadata"]["name"] == "from-trunk"


async def test_only_a_regular_file_of_the_repository_is_read(repo: Path) -> None:
    url = f"file://{repo}"
    assert (await _fetch({"url": url, "filePath": "dir/inner.yaml"}))["metadata"]["name"] == "inner"
    with pytest.raises(errors.TriggerError, match="is a symlink, not a file"):
        await _fetch({"url": url, "filePath": "link.yaml"})
    with pytest.raises(errors.TriggerError, match="is a directory, not a file"):
        await _fetch({"url": url, "filePath": "dir"})
    with pytest.raises(errors.TriggerError, match="no such file in the fetched commit"):
        await _fetch({"url": url, "filePath": "missing.yaml"})
    with pytest.raises(errors.TriggerError, match="not valid YAML/JSON"):
        await _fetch({"url": url, "filePath": "bad.yaml"})
    with pytest.raises(errors.TriggerError, match="couldn't find remote ref refs/heads/nope") as missing:
        await _fetch({"url": url, "filePath": "wf.yaml", "branch": "nope"})
    assert not isinstance(missing.value, errors.TriggerRetryableError)


def test_ssh_with_the_key_of_a_secret(sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    temp = tmp_path / "temp"  # where the fetch makes its temp dir (the key file lives there)
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    repo = make_repo(sshd.root / "repo", {"master": {"wf.yaml": cm("over-ssh")}})
    spec = {"url": f"ssh://{sshd.user}@127.0.0.1:{sshd.port}{repo}", "filePath": "wf.yaml",
            "sshKeySecret": {"name": "git-ssh", "key": "key"}}
    secrets = {env_name("SECRET", "git-ssh", "key"): sshd.private_key}
    resource = asyncio.run(_fetch({**spec, "insecureIgnoreHostKey": True}, secrets))
    assert resource["metadata"]["name"] == "over-ssh"
    # the host key is checked unless insecureIgnoreHostKey: this sshd's key is in no known_hosts
    with pytest.raises(errors.TriggerError, match="Host key verification failed") as refused:
        asyncio.run(_fetch(spec, secrets))
    assert not isinstance(refused.value, errors.TriggerRetryableError)
    assert not list(temp.iterdir())  # the temp dir, key file included, is gone after each fetch


BAD = """
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata: {name: git-source}
spec:
  dependencies: [{name: d, eventSourceName: webhook, eventName: example}]
  triggers:
  - template:
      name: wf
      argoWorkflow:
        operation: submit
        source:
          git: {url: "https://example.com/r.git", filePath: "../etc/passwd", cloneDirectory: "~/x", tag: "-x"}
"""


async def test_validate_and_the_runtime_refuse_the_same_git_source() -> None:
    manifests = validation.load_text(BAD)
    where = "spec.triggers[0].template.argoWorkflow.source.git"
    paths = sorted(p.path for p in manifests.problems)
    assert paths == [f"{where}.cloneDirectory", f"{where}.filePath", f"{where}.tag"], manifests.problems
    trigger = support.trigger(yaml.safe_load(BAD)["spec"]["triggers"][0]["template"])
    with pytest.raises(errors.TriggerError, match=r"source\.git\.filePath: '\.\.' is not allowed in filePath"):
        await triggers.fetch_resource(trigger, support.context())


async def test_github_app_credentials_are_a_note_and_refused_when_firing() -> None:
    spec = {"url": "https://github.com/argoproj/argo.git", "filePath": "wf.yaml", "branch": "main",
            "githubApp": {"privateKey": {"name": "app", "key": "pem"}, "appID": 1, "installationID": 2}}
    sensor = yaml.safe_load(BAD)
    sensor["spec"]["triggers"][0]["template"]["argoWorkflow"]["source"] = {"git": spec}
    manifests = validation.load_text(yaml.safe_dump(sensor))
    assert not manifests.problems
    [note] = manifests.unsupported
    assert note.path == "spec.triggers[0].template.argoWorkflow.source.git.githubApp"
    with pytest.raises(errors.TriggerError, match=r"GitHub App credentials for `source\.git` are not supported"):
        await _fetch(spec)
