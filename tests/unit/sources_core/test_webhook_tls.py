"""TLS for a standalone webhook port: the context comes from the Secrets, a bad pair is a clear error."""

from __future__ import annotations

import datetime
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from knevents import errors

from tests.unit.sources_core.helpers import runtime


def _pair() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


SPEC = {"webhook": {
    "secure": {"port": "13000", "endpoint": "/secure", "method": "POST",
               "serverCertSecret": {"name": "tls", "key": "cert"}, "serverKeySecret": {"name": "tls", "key": "key"}},
    "plain": {"port": "12000", "endpoint": "/plain", "method": "POST"},
}}


def test_ssl_context_per_port() -> None:
    cert, key = _pair()
    rt, _ = runtime(SPEC, secrets={"tls/cert": cert, "tls/key": key})
    context = rt.ssl_context(13000)
    assert isinstance(context, ssl.SSLContext)
    assert rt.ssl_context(12000) is None


def test_bad_pair_is_a_secret_error_without_the_key() -> None:
    cert, _ = _pair()
    _, other_key = _pair()
    rt, _ = runtime(SPEC, secrets={"tls/cert": cert, "tls/key": other_key})
    with pytest.raises(errors.SecretError) as info:
        rt.ssl_context(13000)
    assert other_key.splitlines()[1] not in str(info.value)
    rt2, _ = runtime(SPEC, secrets={"tls/cert": cert})
    with pytest.raises(errors.SecretError, match="serverKeySecret"):
        rt2.ssl_context(13000)


async def test_a_tls_port_answers_https_and_refuses_plain_http() -> None:
    import asyncio

    import httpx
    from knevents import web
    from knevents.local import httpserve

    cert, key = _pair()
    rt, _ = runtime(SPEC, secrets={"tls/cert": cert, "tls/key": key})
    seen: list[bytes] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.body)
        return web.text_response(200, "ok\n")

    server = httpserve.PortServer(httpserve.bind("127.0.0.1", 0), handler, rt.ssl_context(13000))
    await server.start()
    try:
        verify = ssl.create_default_context(cadata=cert)
        verify.check_hostname = False
        async with httpx.AsyncClient(verify=verify) as client:
            for n in range(2):  # the second request on the kept-alive TLS connection
                answer = await client.post(f"https://127.0.0.1:{server.port}/secure", content=b"n%d" % n)
                assert (answer.status_code, answer.text) == (200, "ok\n")
        assert seen == [b"n0", b"n1"]
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST /secure HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
        assert not (await asyncio.wait_for(reader.read(), 10)).startswith(b"HTTP/1.1 200")  # no handshake, no answer
        writer.close()
        assert seen == [b"n0", b"n1"]
    finally:
        await server.stop()
