"""Read a k8s / argoWorkflow resource from a git repository (Argo's ``source.git``, a GitArtifact).

Argo's sensor clones ``url`` with go-git into ``cloneDirectory`` (a temp dir when unset),
checks out ``ref``, else ``tag``, else ``branch`` (default ``master``), and reads
``filePath`` from the work tree, refusing ``..``, ``~`` and ``\\`` in the paths and a
symlink as the file. Credentials are ``creds`` (username/password Secrets, HTTP basic)
or ``sshKeySecret`` (a private key; ``insecureIgnoreHostKey`` skips the host check).

knevents runs the ``git`` CLI (it must be on the function's PATH) in a fresh temp dir per
firing: ``git init``, a ``--depth 1`` fetch of that one ref, and the file read from the
fetched tree with ``ls-tree``/``cat-file`` — no work tree is written, so no path or
symlink in the repository can point outside it, and a symlink or submodule at
``filePath`` is refused. Differences from Argo:

* ``cloneDirectory`` is checked as Argo checks it but not used: every firing fetches
  afresh (a persistent clone shared by concurrent firings would race);
* without ``branch``/``tag``/``ref``, ``master`` is read as in Argo, and the remote's
  default branch (``HEAD``) when there is no ``master``;
* ``remote`` (Argo fetches every ref of an extra remote) fetches the ref from ``remote.urls[0]``;
* ``githubApp`` is not supported (:func:`unsupported`): use an installation token as ``creds``.

Secrets never reach a command line or an error: the password goes through the
environment to a credential helper answering for the repository's origin only (a redirect
to another host gets no password), the ssh key into a 0600 file removed with the temp dir.
git runs as the spec says and nothing else: no system or global git config, none of the
function's ``GIT_*`` variables, ``--`` before the URL, ``filePath`` a literal path (no glob),
no transport beyond http(s), ssh, git and file. Each git command is bounded by
:data:`TIMEOUT`; a timed-out or cancelled firing kills git with its helpers (``git-remote-http``,
``ssh``) and removes the temp dir. A file over :data:`MAX_BYTES` is refused before it is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from knevents import errors
from knevents.triggers import base

__all__ = ["FORBIDDEN", "MAX_BYTES", "check", "describe", "read", "unsupported"]

FORBIDDEN = ("..", "~", "\\")
"""What Argo refuses in ``filePath`` and ``cloneDirectory``."""
TIMEOUT = 120.0
"""Seconds one git command may take (a slow fetch is retried later, not waited on for ever)."""
MAX_BYTES = 3 * 1024 * 1024
"""The largest file read: the Kubernetes API server refuses a bigger request body, so no resource is larger."""
_PERMANENT = (
    "couldn't find remote ref", "authentication failed", "permission denied", "host key verification failed",
    "not found", "does not appear to be a git repository", "could not read username", "could not read password",
    "returned error: 401", "returned error: 403", "returned error: 404", "unsupported protocol",
    "transport '", "invalid refspec", "not a valid", "strange hostname", "strange username", "strange pathname",
)
_BOILERPLATE = ("Please make sure you have the correct access rights", "and the repository exists", "hint:")
# the credential helper reads the values from the environment: the command line names variables only
_HELPER = '!f() { test "$1" = get && printf "username=%s\\npassword=%s\\n" "$KNEVENTS_GIT_USER" "$KNEVENTS_GIT_PASSWORD"; }; f'


def describe(spec: Any) -> str:
    """``source.git <url> <filePath>`` for errors (a password in the URL is masked)."""
    return f"source.git {base.redact_url(spec.url or '')} {spec.file_path or ''}".rstrip()


def check(spec: Any, path: str) -> Iterator[tuple[str, str]]:
    """What makes ``spec`` (a GitArtifact) unreadable; validate reports it, :func:`read`'s caller refuses it."""
    if not spec.url:
        yield f"{path}.url", "source.git needs the repository `url`"
    remote_urls = (spec.remote.urls or []) if spec.remote is not None else []
    urls = [("url", spec.url), *((f"remote.urls[{i}]", u) for i, u in enumerate(remote_urls))]
    for field, value in urls:  # git would take it for an option (--upload-pack=<command> runs the command)
        if value and value.startswith("-"):
            yield f"{path}.{field}", f"the repository {field} cannot start with `-`"
    if not spec.file_path or not _file(spec.file_path):
        yield f"{path}.filePath", "source.git needs `filePath`, the file holding the resource"
    for field, value in (("filePath", spec.file_path), ("cloneDirectory", spec.clone_directory)):
        for bad in FORBIDDEN:
            if value and bad in value:
                yield f"{path}.{field}", f"{bad!r} is not allowed in {field} (as in Argo)"
    for field, value in (("branch", spec.branch), ("tag", spec.tag), ("ref", spec.ref)):
        if value and (value.startswith("-") or any(c.isspace() or c in ":~^?*[\\" for c in value)):
            yield f"{path}.{field}", f"`{value}` is not a valid git {field} name"
    if spec.remote is not None and (not spec.remote.name or not spec.remote.urls):
        yield f"{path}.remote", "a remote needs `name` and at least one of `urls`"
    if spec.creds is not None and (spec.creds.username is None or spec.creds.password is None):
        yield f"{path}.creds", "creds needs both `username` and `password`"


def unsupported(spec: Any, path: str) -> Iterator[tuple[str, str]]:
    """Valid Argo that knevents does not run: a note in validate, a refusal when the trigger fires."""
    if spec.github_app is not None:
        yield (
            f"{path}.githubApp",
            "GitHub App credentials for `source.git` are not supported by knevents "
            "(give an installation token as `creds.password`)",
        )


def _file(file_path: str) -> str:
    """``filePath`` relative to the repository root (Argo joins it to the clone directory)."""
    return "/".join(part for part in PurePosixPath(file_path).parts if part not in ("/", "."))


def _refs(spec: Any) -> list[str]:
    """The refs to fetch, in order of preference (Argo: ref, else tag, else branch, else master)."""
    if spec.ref:
        return [spec.ref]
    if spec.tag:
        return [f"refs/tags/{spec.tag}"]
    if spec.branch:
        return [f"refs/heads/{spec.branch}"]
    return ["refs/heads/master", "HEAD"]


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL: where the credential helper answers (``None``: not http)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _environment(
    spec: Any, url: str, ctx: base.TriggerContext, tmp: Path
) -> tuple[dict[str, str], list[str], list[str]]:
    """The git commands' environment, ``-c`` options and the secret values to scrub from their output."""
    # none of the function's GIT_* (GIT_DIR would send the fetch into another repository, GIT_CONFIG_* add
    # config) and no system/global config (url.insteadOf, hooks, helpers of whoever runs the function)
    env = {name: value for name, value in os.environ.items() if not name.startswith("GIT_")}
    env |= {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_ALLOW_PROTOCOL": "http:https:ssh:git:file",
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_LITERAL_PATHSPECS": "1"}
    config = ["-c", "credential.helper=", "-c", "core.askPass=true"]
    secrets = [urlsplit(url).password or "", urlsplit(spec.url or "").password or ""]  # passwords in the URLs
    origin = _origin(url)
    if spec.creds is not None:
        env["KNEVENTS_GIT_USER"] = ctx.secrets.secret(spec.creds.username)
        env["KNEVENTS_GIT_PASSWORD"] = ctx.secrets.secret(spec.creds.password)
        secrets += [env["KNEVENTS_GIT_PASSWORD"]]
        if origin is not None:  # for this origin only: a redirect to another host gets no password
            config += ["-c", f"credential.{origin}.helper={_HELPER}"]
    elif spec.ssh_key_secret is not None:
        key = tmp / "ssh-key"
        key.touch(mode=0o600)
        key.write_text(ctx.secrets.secret(spec.ssh_key_secret).strip() + "\n")
        ssh = ["ssh", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]
        if spec.insecure_ignore_host_key:
            ssh += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        env["GIT_SSH_COMMAND"] = shlex.join(ssh)
    return env, config, secrets


async def read(spec: Any, ctx: base.TriggerContext) -> str:
    """The file's text; TriggerRetryableError when the server is unreachable or failing, else TriggerError."""
    import tempfile

    where = describe(spec)
    url = spec.remote.urls[0] if spec.remote is not None else spec.url
    with tempfile.TemporaryDirectory(prefix="knevents-git-") as name:  # removed on a cancel too (git killed)
        tmp = Path(name)
        env, config, secrets = _environment(spec, url, ctx, tmp)
        repo = tmp / "repo"
        await _git(["init", "-q", "--template=", str(repo)], env, where, secrets)
        git = ["-C", str(repo), *config]
        refs = _refs(spec)
        for index, ref in enumerate(refs):
            try:
                await _git([*git, "fetch", "-q", "--depth", "1", "--no-tags", "--", url, ref], env, where, secrets)
                break
            except errors.TriggerError as exc:
                if index + 1 == len(refs) or "couldn't find remote ref" not in str(exc):
                    raise
        return await _blob(git, _file(spec.file_path or ""), env, where, secrets)


async def _blob(git: list[str], file: str, env: dict[str, str], where: str, secrets: list[str]) -> str:
    """The text of ``file`` in the fetched commit; refused unless it is a regular file of at most MAX_BYTES."""
    entry = await _git([*git, "ls-tree", "-l", "-z", "FETCH_HEAD", "--", file], env, where, secrets)
    if not entry:
        raise errors.TriggerError(f"{where}: no such file in the fetched commit")
    meta, _, _path = entry.decode(errors="replace").partition("\t")
    mode, kind, sha, size = meta.split()
    if kind != "blob" or mode == "120000":
        what = {"120000": "a symlink", "160000": "a submodule"}.get(mode, "a directory")
        raise errors.TriggerError(f"{where} is {what}, not a file (not read, as in Argo)")
    if int(size) > MAX_BYTES:
        raise errors.TriggerError(f"{where}: the file is larger than {MAX_BYTES} bytes (not read)")
    data = await _git([*git, "cat-file", "blob", sha], env, where, secrets)
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise errors.TriggerError(f"{where}: the file is not UTF-8 text") from None


async def _git(args: list[str], env: dict[str, str], where: str, secrets: list[str]) -> bytes:
    """Run ``git args``; its stdout, or the error its stderr says (retryable unless clearly permanent)."""
    from asyncio import subprocess

    try:  # its own process group: git-remote-http and ssh go with it when it is killed
        proc = await asyncio.create_subprocess_exec(
            "git", *args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise errors.TriggerError(f"{where}: the git CLI is not installed (install git in the image)") from None
    done = False
    try:
        async with asyncio.timeout(TIMEOUT):
            stdout, stderr = await proc.communicate()
        done = True
    except TimeoutError:
        raise errors.TriggerRetryableError(f"{where}: git {args[-1]!r} took more than {TIMEOUT:.0f}s") from None
    finally:
        if not done:  # timed out, or the firing was cancelled: nothing of it may outlive the firing
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    if proc.returncode == 0:
        return stdout
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines()]
    said = base.scrub("; ".join(line for line in lines if line and not line.startswith(_BOILERPLATE))[:400], secrets)
    permanent = any(marker in said.lower() for marker in _PERMANENT)
    error = errors.TriggerError if permanent else errors.TriggerRetryableError
    raise error(f"{where}: {said or f'git exited with {proc.returncode}'}")
