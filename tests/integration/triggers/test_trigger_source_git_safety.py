"""``source.git`` against hostile specs, servers and environments, with the real ``git`` CLI.

A spec value never becomes a git option, git reads no configuration but the spec's, a password
reaches only the repository's own origin, a hung server or a cancelled firing leaves no git process,
connection or temp dir behind, and a huge file is refused before it is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from knevents import errors, triggers, validation
from knevents.secrets import env_name
from knevents.triggers import fetch_git

from tests.fixtures.git_http import PASSWORD, USER, GitHttp, git, make_repo
from tests.unit.triggers import trigger_support as support

CREDS = {
    env_name("SECRET", "github-secret", "username"): USER,
    env_name("SECRET", "github-secret", "password"): PASSWORD,
}
CREDS_SPEC = {"username": {"name": "github-secret", "key": "username"},
              "password": {"name": "github-secret", "key": "password"}}


def cm(name: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\n"


async def _fetch(spec: dict[str, Any], secrets: dict[str, str] | None = None) -> Any:
    trigger = support.trigger({"name": "t", "k8s": {"operation": "create", "source": {"git": spec}}})
    return await triggers.fetch_resource(trigger, support.context(secrets=secrets))


async def _until(condition: Any, what: str, timeout: float = 60.0) -> None:
    """Wait for ``condition()`` (polled; a generous bound, the machine may be loaded)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)
    assert condition(), what


class Hang:
    """A TCP server that accepts, reads whatever comes and never answers; it notes when clients hang up."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.closed = 0
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.sock.accept()
                self._conns.append(conn)
                self.accepted += 1
                threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while conn.recv(65536):
                pass
        self.closed += 1

    def close(self) -> None:
        # shutdown wakes the thread blocked in accept(): after a bare close it went on accepting, and took
        # (and never answered) connections meant for the next test's server
        for sock in (self.sock, *self._conns):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@pytest.fixture
def hang() -> Iterator[Hang]:
    server = Hang()
    yield server
    server.close()


@pytest.fixture
def temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The directory the fetch makes its temp dir in."""
    path = tmp_path / "temp"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


async def test_an_option_given_as_a_remote_url_is_refused_and_never_run(tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    spec = {"url": "https://example.com/r.git", "filePath": "wf.yaml", "ref": ".",
            "remote": {"name": "x", "urls": [f"--upload-pack=touch {ran}; false"]}}
    with pytest.raises(errors.TriggerError, match=r"remote\.urls\[0\]: the repository remote\.urls\[0\] cannot"):
        await _fetch(spec)
    assert not ran.exists()  # git took the value for --upload-pack and ran the command
    sensor = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Sensor", "metadata": {"name": "s"},
              "spec": {"dependencies": [{"name": "d", "eventSourceName": "w", "eventName": "e"}],
                       "triggers": [{"template": {"name": "t", "k8s": {"operation": "create",
                                                                       "source": {"git": spec}}}}]}}
    paths = [p.path for p in validation.load_text(__import__("yaml").safe_dump(sensor)).problems]
    assert paths == ["spec.triggers[0].template.k8s.source.git.remote.urls[0]"]


async def test_a_cancelled_firing_kills_git_and_removes_its_temp_dir(hang: Hang, temp: Path) -> None:
    firing = asyncio.ensure_future(_fetch({"url": f"http://127.0.0.1:{hang.port}/r.git", "filePath": "wf.yaml"}))
    await _until(lambda: hang.accepted == 1, "git connects to the server")
    assert list(temp.iterdir())
    firing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await firing
    await _until(lambda: hang.closed == 1, "the connection of the killed git is closed")
    assert not list(temp.iterdir())


async def test_a_hung_server_times_out_and_leaves_no_git_helper_behind(
    hang: Hang, temp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_git = fetch_git._git

    async def short_fetch(args: list[str], *rest: Any) -> bytes:
        """git as usual, but the fetch times out after 5 s (ample to connect; init keeps its own bound)."""
        with monkeypatch.context() as patch:
            if "fetch" in args:
                patch.setattr(fetch_git, "TIMEOUT", 5.0)
            return await real_git(args, *rest)

    monkeypatch.setattr(fetch_git, "_git", short_fetch)
    with pytest.raises(errors.TriggerRetryableError, match="git 'refs/heads/master' took more than 5s"):
        await _fetch({"url": f"http://127.0.0.1:{hang.port}/r.git", "filePath": "wf.yaml"})
    assert hang.accepted == 1
    # git-remote-http, git's child, held the connection after git itself was killed
    await _until(lambda: hang.closed == 1, "git-remote-http is gone with git")
    assert not list(temp.iterdir())


async def test_git_reads_no_configuration_or_repository_of_the_function(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "r", {"master": {"wf.yaml": cm("spec-repo")}})
    url = f"file://{repo}"
    gitconfig = tmp_path / "gitconfig"  # a developer's global config that sends the URL elsewhere
    gitconfig.write_text(f'[url "file://{tmp_path}/nowhere"]\n\tinsteadOf = {url}\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    other = make_repo(tmp_path / "other", {"master": {"x": "x"}})
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))  # e.g. set by a git hook that runs the function
    assert (await _fetch({"url": url, "filePath": "wf.yaml"}))["metadata"]["name"] == "spec-repo"
    assert not (other / ".git" / "FETCH_HEAD").exists()  # nothing was fetched into that repository
    with pytest.raises(errors.TriggerError, match="no such file"):  # a literal path, not a glob
        await _fetch({"url": url, "filePath": "w*.yaml"})


async def test_a_file_larger_than_any_resource_is_refused_before_it_is_read(tmp_path: Path) -> None:
    huge = "#" + "x" * fetch_git.MAX_BYTES + "\n"
    repo = make_repo(tmp_path / "r", {"master": {"huge.yaml": huge, "wf.yaml": cm("small")}})
    url = f"file://{repo}"
    with pytest.raises(errors.TriggerError, match=f"larger than {fetch_git.MAX_BYTES} bytes"):
        await _fetch({"url": url, "filePath": "huge.yaml"})
    assert (await _fetch({"url": url, "filePath": "wf.yaml"}))["metadata"]["name"] == "small"


@pytest.fixture
def redirector(git_http: GitHttp) -> Iterator[str]:
    """An HTTP server on another port that redirects every request to ``git_http`` (another origin)."""

    class Redirect(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{git_http.port}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


async def test_the_password_is_given_to_the_repositorys_origin_only(git_http: GitHttp, redirector: str) -> None:
    make_repo(git_http.root / "r.git", {"master": {"wf.yaml": cm("x")}})
    spec = {"url": f"{redirector}/r.git", "filePath": "wf.yaml", "creds": CREDS_SPEC}
    with pytest.raises(errors.TriggerError) as refused:
        await _fetch(spec, CREDS)
    assert not git_http.seen_users  # the other host never got the password
    assert PASSWORD not in str(refused.value)
    spec["url"] = git_http.url("r.git")  # at its own origin the same creds work
    assert (await _fetch(spec, CREDS))["metadata"]["name"] == "x"
    git(git_http.root / "r.git", "log", "-1")  # the served repository is intact


@pytest.mark.parametrize("url", ["ext::sh -c touch% /tmp/x", "fd::3", "ssh://-oProxyCommand=true/r.git"])
async def test_a_transport_or_ssh_host_that_runs_commands_is_refused_for_good(url: str) -> None:
    with pytest.raises(errors.TriggerError, match=r"not allowed|strange hostname") as refused:
        await _fetch({"url": url, "filePath": "wf.yaml"})
    assert not isinstance(refused.value, errors.TriggerRetryableError)  # retrying cannot help
