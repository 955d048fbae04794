"""Kafka connection security shared by the ``kafka`` source and trigger: TLS/SASL keywords and clear failures.

Both build aiokafka clients from Argo's ``tls`` and ``sasl`` blocks. aiokafka
reports a refused login or an untrusted certificate only as "Unable to
bootstrap from [...]" (the cause goes to its own log), and it fails with a bare
``KeyError('v')`` when a broker signals a failed SCRAM login in the
server-final message (RFC 5802 ``e=...``) instead of with error 58, as Tansu
does. :func:`explain` opens one connection the way the client did and names the
cause (TLS verification, SASL login, mechanism, network); :func:`patch_scram`
turns the ``e=`` answer into aiokafka's ``SaslAuthenticationFailed``.
Neither message carries a secret. :func:`start` starts a client and closes
whatever connection its start opened and then dropped. aiokafka is imported inside the functions:
importing this module costs nothing.
"""

from __future__ import annotations

import asyncio
import contextvars
import ssl
from collections.abc import Iterator
from typing import Any

__all__ = ["MECHANISMS", "Failure", "check", "explain", "patch_scram", "security", "start"]

MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
"""Argo's SASL mechanisms that knevents speaks (Argo's GSSAPI and OAUTHBEARER need Kerberos or a token source)."""


def check(tls: Any, sasl: Any, path: str) -> Iterator[tuple[str, str]]:
    """Argo's ``ValidateTLSConfig`` / ``ValidateSASLConfig`` for a kafka entry, limited to what knevents speaks."""
    if tls is not None and not tls.insecure_skip_verify:
        cert, key = tls.client_cert_secret is not None, tls.client_key_secret is not None
        if tls.ca_cert_secret is None and not cert and not key:
            yield f"{path}.tls", "tls needs caCertSecret, or clientCertSecret and clientKeySecret, or insecureSkipVerify"
        elif cert != key:
            yield f"{path}.tls", "tls needs both clientCertSecret and clientKeySecret"
    if sasl is not None:
        if (sasl.mechanism or "PLAIN") not in MECHANISMS:
            yield f"{path}.sasl.mechanism", (f"SASL mechanism {sasl.mechanism} is not supported by knevents "
                                             f"(supported: {', '.join(MECHANISMS)})")
        if sasl.user_secret is None or sasl.password_secret is None:
            yield f"{path}.sasl", "sasl needs both userSecret and passwordSecret"


class Failure(Exception):
    """Why a Kafka connection failed, and whether retrying can help (``permanent`` = configuration)."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.permanent = permanent


def security(context: ssl.SSLContext | None, mechanism: str | None, user: str, password: str) -> dict[str, Any]:
    """aiokafka keywords for TLS (``context``) and SASL (``mechanism`` None = no SASL; empty = Argo's PLAIN)."""
    options: dict[str, Any] = {}
    if context is not None:
        options["ssl_context"] = context
    if mechanism is not None:
        options.update(sasl_mechanism=mechanism or "PLAIN", sasl_plain_username=user, sasl_plain_password=password)
    options["security_protocol"] = ("SASL_" if mechanism is not None else "") + ("SSL" if context else "PLAINTEXT")
    return options


def patch_scram() -> None:
    """Make aiokafka's SCRAM client fail with ``SaslAuthenticationFailed`` on a server-final ``e=``."""
    from aiokafka import conn
    from aiokafka import errors as kafka_errors

    authenticator = conn.ScramAuthenticator
    if getattr(authenticator, "_knevents_patched", False):
        return
    original = authenticator.process_server_final_message

    def process_server_final_message(self: Any, server_final: str) -> None:
        fields = dict(part.split("=", 1) for part in server_final.split(",") if "=" in part)
        if "v" not in fields:
            raise kafka_errors.SaslAuthenticationFailed(
                f"the broker refused the SCRAM login ({fields.get('e', 'no server signature')})")
        original(self, server_final)

    authenticator.process_server_final_message = process_server_final_message
    authenticator._knevents_patched = True


async def explain(options: dict[str, Any], failure: BaseException) -> Failure:
    """Why a client with ``options`` could not start (``failure``): one probing connection names the cause."""
    from aiokafka import errors as kafka_errors
    from aiokafka.conn import create_conn

    host, _, port = str(options["bootstrap_servers"][0]).rpartition(":")
    mechanism = options.get("sasl_mechanism")
    where = f"{host}:{port}"
    try:
        conn = await create_conn(
            host, int(port), request_timeout_ms=min(int(options.get("request_timeout_ms", 15000)), 15000),
            ssl_context=options.get("ssl_context"), security_protocol=options.get("security_protocol", "PLAINTEXT"),
            sasl_mechanism=mechanism, sasl_plain_username=options.get("sasl_plain_username"),
            sasl_plain_password=options.get("sasl_plain_password"))
    except ssl.SSLCertVerificationError as exc:
        return Failure(f"TLS: the certificate of {where} is not trusted ({exc.verify_message})", permanent=True)
    except ssl.SSLError as exc:
        return Failure(f"TLS handshake with {where} failed ({exc.reason or type(exc).__name__})", permanent=True)
    except kafka_errors.SaslAuthenticationFailed as exc:
        detail = str(exc).split(": ", 1)[-1]
        return Failure(f"SASL {mechanism} login to {where} refused: {detail}", permanent=True)
    except kafka_errors.UnsupportedSaslMechanismError as exc:
        return Failure(f"SASL: {where} does not offer {mechanism} ({exc})", permanent=True)
    except kafka_errors.KafkaConnectionError as exc:
        during = f" during the SASL {mechanism} handshake (does it offer {mechanism}?)" if mechanism else ""
        return Failure(f"{where} closed the connection{during}: {exc}", permanent=False)
    except (OSError, TimeoutError, kafka_errors.KafkaError) as exc:
        return Failure(f"cannot connect to {where}: {type(exc).__name__}: {exc}", permanent=False)
    conn.close()
    return Failure(f"{where}: {type(failure).__name__}: {failure}", permanent=False)


class _Opened:
    """The connections aiokafka opened while one :func:`start` ran (noted only while ``active``)."""

    def __init__(self) -> None:
        self.active = True
        self.conns: list[Any] = []


_OPENING: contextvars.ContextVar[_Opened | None] = contextvars.ContextVar("knevents_kafka_opening", default=None)
_CLOSE_WAIT = 5.0
"""Seconds :func:`start` waits for a dropped connection's socket to be closed (a local close: immediate)."""


async def start(client: Any) -> None:
    """``await client.start()`` (an aiokafka consumer or producer) and leave no connection of it behind.

    aiokafka's bootstrap holds its first connection in a local variable while it asks the broker for metadata.
    A start cancelled there (a broker that accepts and answers slowly, a shutdown that cannot wait) drops that
    connection open: it is not in the client's pool, so ``stop`` never closes it, and its socket and reader
    task live until the garbage collector finds them. Every connection the client opens while its start runs
    is noted (see :func:`_note_connections`); the ones its pool does not hold afterwards are closed, whether
    the start succeeded, failed or was cancelled. Those it holds are the client's to close on ``stop``.
    """
    _note_connections()
    opened = _Opened()
    token = _OPENING.set(opened)
    try:
        await client.start()
    finally:
        opened.active = False  # tasks the start spawned inherit the note: later connections are not ours
        _OPENING.reset(token)
        pool = getattr(client, "_client", None) or getattr(client, "client", None)  # consumer / producer
        kept = {id(conn) for conn in getattr(pool, "_conns", {}).values()}
        closing = [conn.close() for conn in opened.conns if id(conn) not in kept]  # idempotent in aiokafka
        if closing:  # the futures resolve when the sockets are closed: leave none half-closed behind
            await asyncio.shield(asyncio.wait(closing, timeout=_CLOSE_WAIT))


def _note_connections() -> None:
    """Make aiokafka's client note each connection it opens for the :func:`start` running in this context.

    The client calls the ``create_conn`` of its module for the bootstrap and every broker connection;
    wrapping that one name is the only way to reach a connection aiokafka keeps in a local variable.
    Outside a start (no note in the context, or a finished one) the wrapper only passes the call on.
    """
    from aiokafka import client

    original = client.create_conn
    if getattr(original, "_knevents_noting", False):
        return

    async def create_conn(*args: Any, **kwargs: Any) -> Any:
        conn = await original(*args, **kwargs)
        opened = _OPENING.get()
        if opened is not None and opened.active:
            opened.conns.append(conn)
        return conn

    create_conn._knevents_noting = True  # type: ignore[attr-defined]
    client.create_conn = create_conn
