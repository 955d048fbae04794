"""A real HTTP(S) server for trigger tests: scripted answers, recorded requests, optional (mutual) TLS.

Also makes a throwaway CA, server and client certificates with ``cryptography``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer: int = 0


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b"ok"
    delay: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class Pem:
    cert: str
    key: str


@dataclass
class Pki:
    """A CA plus a server (127.0.0.1 / localhost) and a client certificate signed by it."""

    ca: Pem
    server: Pem
    client: Pem
    other_ca: Pem = field(repr=False, default_factory=lambda: Pem("", ""))


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _ca(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, name: str, *, server: bool) -> Pem:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    return Pem(cert.public_bytes(serialization.Encoding.PEM).decode(), _pem_key(key))


def make_pki() -> Pki:
    """Fresh CA, server and client certificates (and an unrelated CA)."""
    ca, ca_key = _ca("knevents test CA")
    other, other_key = _ca("some other CA")
    return Pki(
        ca=Pem(ca.public_bytes(serialization.Encoding.PEM).decode(), _pem_key(ca_key)),
        server=_leaf(ca, ca_key, "127.0.0.1", server=True),
        client=_leaf(ca, ca_key, "knevents-sensor", server=False),
        other_ca=Pem(other.public_bytes(serialization.Encoding.PEM).decode(), _pem_key(other_key)),
    )


class HttpTarget:
    """A threaded HTTP server answering from a script (then ``default``), recording every request."""

    def __init__(self, tmp: Path, *, pki: Pki | None = None, require_client_cert: bool = False) -> None:
        self.seen: list[Seen] = []
        self.script: list[Answer] = []
        self.default = Answer()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.scheme = "http"
        if pki is not None:
            (tmp / "server.crt").write_text(pki.server.cert)
            (tmp / "server.key").write_text(pki.server.key)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tmp / "server.crt", tmp / "server.key")
            if require_client_cert:
                context.verify_mode = ssl.CERT_REQUIRED
                context.load_verify_locations(cadata=pki.ca.cert)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> HttpTarget:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str = "/hook") -> str:
        return f"{self.scheme}://127.0.0.1:{self._server.server_address[1]}{path}"

    def _next(self) -> Answer:
        with self._lock:
            return self.script.pop(0) if self.script else self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with target._lock:
                    target.seen.append(
                        Seen(
                            self.command,
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            self.client_address[1],
                        )
                    )
                answer = target._next()
                if answer.delay:
                    target._stop.wait(answer.delay)
                self.send_response(answer.status)
                self.send_header("Content-Type", "text/plain")
                for name, value in answer.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


class Paced:
    """A server that answers ``head`` to its first request, then sends ``piece`` every ``pause`` seconds until
    the client hangs up: a body that trickles (one byte) or never ends (a large piece), each piece well within
    any read timeout. ``hung_up`` is set when the client went away."""

    def __init__(self, head: bytes, piece: bytes, pause: float) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.head, self.piece, self.pause = head, piece, pause
        self.hung_up = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            conn, _ = self.sock.accept()
            with conn:
                while b"\r\n\r\n" not in conn.recv(65536):
                    pass
                conn.sendall(self.head)
                while True:  # the pause is the server's pace, not a test wait
                    conn.sendall(self.piece)
                    time.sleep(self.pause)
        self.hung_up.set()

    def close(self) -> None:
        """Stop accepting (shutdown first: it wakes a thread still waiting in accept)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def trickle() -> Paced:
    """A store answering 200 with a 1 MB body, one byte at a time."""
    return Paced(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n", b"a", 0.05)
