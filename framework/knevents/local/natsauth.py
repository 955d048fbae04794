"""Credentials for the runner's NATS: generated for the embedded server, kept out of every printed URL.

Without them any local process could connect to the embedded nats-server,
publish a forged "GitHub" event that fires a trigger (skipping the HMAC,
token and SNS checks, which happen before the bus), read every payload and
rewrite sensor state. So ``knevents run`` generates a user and a random
password once per state dir (``nats-credentials.json``, mode 0600), starts
nats-server with a config file holding them (mode 0600; never on the command
line, which every local user can read in ``ps``), and connects with them.
``send --bus`` and ``status`` read the same file.

With ``--nats-url nats://user:password@host``, the user information is kept
in that file too and stripped from ``runner.json``, the banner and ``status``.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

__all__ = ["CONFIG_FILE", "CREDENTIALS_FILE", "client_url", "ensure", "forget", "remember", "server_config", "strip"]

CREDENTIALS_FILE = "nats-credentials.json"
CONFIG_FILE = "nats-server.conf"
_USER = "knevents"


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only (created 0600, never briefly wider)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(text)
    tmp.replace(path)


def _read(state_dir: Path) -> dict[str, str] | None:
    try:
        obj = json.loads((state_dir / CREDENTIALS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if isinstance(obj, dict) and isinstance(obj.get("user"), str) and isinstance(obj.get("password"), str):
        return {"user": obj["user"], "password": obj["password"]}
    return None


def ensure(state_dir: Path) -> dict[str, str]:
    """The embedded server's credentials: the saved ones, else new ones (saved 0600)."""
    found = _read(state_dir)
    if found is None:
        found = {"user": _USER, "password": secrets.token_urlsafe(32)}
        _write_private(state_dir / CREDENTIALS_FILE, json.dumps(found) + "\n")
    return found


def server_config(state_dir: Path, credentials: dict[str, str]) -> Path:
    """A nats-server config (0600) that accepts only ``credentials``; its path, for ``-c``."""
    path = state_dir / CONFIG_FILE
    user, password = json.dumps(credentials["user"]), json.dumps(credentials["password"])
    _write_private(path, "authorization {\n  users: [\n    {user: " + user + ", password: " + password + "}\n  ]\n}\n")
    return path


def remember(state_dir: Path, url: str) -> None:
    """Keep the user information of a ``--nats-url`` (0600) so clients can connect; forget it when there is none."""
    parts = urlsplit(url.split(",")[0].strip())
    if parts.username is None:
        forget(state_dir)
        return
    creds = {"user": unquote(parts.username), "password": unquote(parts.password or "")}
    _write_private(state_dir / CREDENTIALS_FILE, json.dumps(creds) + "\n")


def forget(state_dir: Path) -> None:
    """Remove saved credentials (a later run without any must not send stale ones)."""
    (state_dir / CREDENTIALS_FILE).unlink(missing_ok=True)


def strip(url: str) -> str:
    """``url`` (or a comma-separated list) without user information: what may be printed or stored openly."""
    out = []
    for one in url.split(","):
        parts = urlsplit(one.strip())
        host = parts.netloc.rsplit("@", 1)[-1]
        out.append(urlunsplit(parts._replace(netloc=host)))
    return ",".join(out)


def with_credentials(url: str, credentials: dict[str, str]) -> str:
    """``url`` (or each of a comma-separated list) carrying ``credentials`` as user information."""
    userinfo = quote(credentials["user"], safe="")
    if credentials.get("password"):
        userinfo += ":" + quote(credentials["password"], safe="")
    out = []
    for one in strip(url).split(","):
        parts = urlsplit(one)
        out.append(urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}")))
    return ",".join(out)


def client_url(state_dir: Path, url: str) -> str:
    """The URL a client of the runner connects with: ``url`` plus the saved credentials, if any."""
    found = _read(state_dir)
    return url if found is None else with_credentials(url, found)
