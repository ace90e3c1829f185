"""Security profiles 2 and 3 over real TLS on loopback.

:func:`~csms_kit.security.server_ssl_context` must offer exactly OCPP's TLS 1.2 cipher
suites (with an RSA and an ECDSA certificate side by side), nothing older than TLS 1.2,
no compression; with ``client_ca`` it requires a valid station certificate, logging
every refused handshake. :func:`~csms_kit.security.certificate_auth` then maps the
certificate to the station identity, directly or through a trusted proxy's header.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import ssl
import warnings
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from csms_kit import CsmsServer, StationSession, on, serve
from csms_kit.hooks import Authenticate
from csms_kit.security import (
    OCPP_TLS12_CIPHERS,
    certificate_auth,
    common_name,
    server_ssl_context,
    subject_field,
)
from tests.security.conftest import (
    OPERATOR,
    OTHER_OPERATOR,
    ClientContext,
    ServerPki,
    StationPki,
)

HOST = "127.0.0.1"
TIMEOUT = 2.0
NOW = "2026-11-27T10:00:00Z"
TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3
SECURITY_LOGGER = "csms_kit.security"


class Csms(StationSession):
    """Answers Heartbeat; boot gate off."""

    boot_gate = False

    @on("Heartbeat")
    def heartbeat(self, request: Any) -> dict[str, Any]:
        return {"currentTime": NOW}


class Connected(list[StationSession]):
    """An ``on_connect`` hook remembering the sessions."""

    def __call__(self, session: StationSession) -> None:
        self.append(session)


def start(
    context: ssl.SSLContext | None,
    authenticate: Authenticate | None = None,
    connected: Connected | None = None,
) -> CsmsServer:
    return serve(
        Csms,
        HOST,
        0,
        ssl=context,
        authenticate=authenticate,
        on_connect=connected,
        ping_interval=None,
        close_timeout=1,
        open_timeout=TIMEOUT,
    )


@contextlib.asynccontextmanager
async def station(
    server: CsmsServer,
    context: ssl.SSLContext | None,
    identity: str = "CP-1",
    headers: Sequence[tuple[str, str]] = (),
) -> AsyncIterator[ClientConnection]:
    """A station connected to ``server``, having had one Heartbeat answered."""
    scheme = "ws" if context is None else "wss"
    async with connect(
        f"{scheme}://{HOST}:{server.port}/{quote(identity, safe='')}",
        ssl=context,
        subprotocols=[Subprotocol("ocpp1.6")],
        additional_headers=list(headers),
        open_timeout=TIMEOUT,
        close_timeout=1,
        ping_interval=None,
    ) as ws:
        await ws.send(json.dumps([2, "hb", "Heartbeat", {}]))
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)) == [
            3,
            "hb",
            {"currentTime": NOW},
        ]
        yield ws


async def status_of(
    server: CsmsServer,
    context: ssl.SSLContext | None,
    identity: str = "CP-1",
    headers: Sequence[tuple[str, str]] = (),
) -> int:
    """The HTTP status a station gets: 101, or the refusal's status."""
    try:
        async with station(server, context, identity, headers):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


async def tls_refused(server: CsmsServer, context: ssl.SSLContext) -> BaseException:
    """Connect expecting the TLS handshake to fail; return what the station saw."""
    with pytest.raises((OSError, InvalidHandshake)) as failed:
        async with station(server, context):
            pass
    assert not isinstance(failed.value, TimeoutError), "the server hung instead of refusing"
    return failed.value


async def security_event(caplog: pytest.LogCaptureFixture, pattern: str) -> str:
    """Wait for a WARNING+ record on csms_kit.security matching ``pattern``; return it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while True:
        for record in caplog.records:
            message = record.getMessage()
            if (
                record.name == SECURITY_LOGGER
                and record.levelno >= logging.WARNING
                and re.search(pattern, message, re.IGNORECASE)
            ):
                return message
        if loop.time() > deadline:
            seen = [r.getMessage() for r in caplog.records if r.name == SECURITY_LOGGER]
            pytest.fail(f"no security event matching {pattern!r}; saw {seen}")
        await asyncio.sleep(0.01)


def der_of(certificate: trustme.LeafCert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(certificate.cert_chain_pems[0].bytes().decode())


def pem_of(certificate: trustme.LeafCert) -> str:
    return certificate.cert_chain_pems[0].bytes().decode()


def peer_der(ws: ClientConnection) -> bytes:
    ssl_object = ws.transport.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True)
    assert der is not None
    return bytes(der)


def openssl_serial(certificate: trustme.LeafCert) -> str:
    """The serial number as :meth:`ssl.SSLSocket.getpeercert` spells it (whole bytes)."""
    serial = x509.load_pem_x509_certificate(pem_of(certificate).encode()).serial_number
    digits = format(serial, "X")
    return digits if len(digits) % 2 == 0 else "0" + digits


def serial_number(certificate: dict[str, Any]) -> str | None:
    """A custom ``identity_of``: stations named by their certificate's serial number."""
    value = certificate.get("serialNumber")
    return None if value is None else str(value)


@pytest.fixture
def server_context(server_pki: ServerPki) -> ssl.SSLContext:
    """A profile 2 server context with the RSA and the ECDSA certificate."""
    return server_ssl_context(server_pki.certificates)


@pytest.fixture
def mtls_context(server_pki: ServerPki, station_pki: StationPki) -> ssl.SSLContext:
    """A profile 3 server context requiring certificates from the station CA."""
    return server_ssl_context(server_pki.certificates, client_ca=station_pki.ca_file)


# -- server_ssl_context: ciphers and versions ------------------------------------------


@pytest.mark.parametrize(
    ("cipher", "key_type"),
    [
        ("ECDHE-ECDSA-AES128-GCM-SHA256", ec.EllipticCurvePublicKey),
        ("ECDHE-ECDSA-AES256-GCM-SHA384", ec.EllipticCurvePublicKey),
        ("AES128-GCM-SHA256", rsa.RSAPublicKey),
        ("AES256-GCM-SHA384", rsa.RSAPublicKey),
    ],
)
async def test_each_ocpp_cipher_suite_with_its_certificate(
    server_context: ssl.SSLContext,
    server_pki: ServerPki,
    client_context: ClientContext,
    cipher: str,
    key_type: type,
) -> None:
    """A TLS 1.2 station limited to one OCPP suite gets it, with the matching certificate."""
    assert cipher in OCPP_TLS12_CIPHERS
    context = client_context(maximum=TLS12, ciphers=cipher)
    async with start(server_context) as server, station(server, context) as ws:
        name, version, _ = ws.transport.get_extra_info("cipher")
        assert (name, version) == (cipher, "TLSv1.2")
        served = peer_der(ws)
    expected = server_pki.ecdsa if key_type is ec.EllipticCurvePublicKey else server_pki.rsa
    assert served == der_of(expected)
    assert isinstance(x509.load_der_x509_certificate(served).public_key(), key_type)


def test_ocpp_cipher_list_is_exactly_the_four_suites(server_context: ssl.SSLContext) -> None:
    """The TLS 1.2 suites on offer are OCPP's four and nothing else."""
    tls12 = {c["name"] for c in server_context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 == set(OCPP_TLS12_CIPHERS)


async def test_forward_secret_suite_preferred(
    server_context: ssl.SSLContext, client_context: ClientContext
) -> None:
    """A TLS 1.2 station offering all four suites gets an ECDHE one (server preference)."""
    context = client_context(maximum=TLS12, ciphers=":".join(reversed(OCPP_TLS12_CIPHERS)))
    async with start(server_context) as server, station(server, context) as ws:
        name, _, _ = ws.transport.get_extra_info("cipher")
    assert name.startswith("ECDHE-ECDSA-")


@pytest.mark.parametrize(
    "cipher",
    [
        "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "AES128-SHA256",  # CBC
        "ECDHE-ECDSA-AES128-SHA",  # CBC, SHA-1
    ],
)
async def test_cipher_outside_the_list_is_refused(
    server_context: ssl.SSLContext,
    client_context: ClientContext,
    caplog: pytest.LogCaptureFixture,
    cipher: str,
) -> None:
    """A TLS 1.2 station offering only a suite OCPP does not name cannot connect."""
    caplog.set_level(logging.WARNING, SECURITY_LOGGER)
    context = client_context(maximum=TLS12, ciphers=cipher)
    connected = Connected()
    async with start(server_context, connected=connected) as server:
        await tls_refused(server, context)
        message = await security_event(caplog, "no.shared.cipher")
    assert HOST in message
    assert connected == []


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
async def test_tls_before_1_2_is_refused(
    server_context: ssl.SSLContext,
    server_pki: ServerPki,
    caplog: pytest.LogCaptureFixture,
    version: str,
) -> None:
    """A TLS 1.0/1.1 station is refused in the handshake (and the server says >= 1.2)."""
    assert server_context.minimum_version == TLS12
    old = ssl.TLSVersion[version]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    server_pki.ca.configure_trust(context)
    with warnings.catch_warnings():  # Python deprecates the old versions
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = old
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let OpenSSL 3 offer them at all
    caplog.set_level(logging.WARNING, SECURITY_LOGGER)
    async with start(server_context) as server:
        seen = await tls_refused(server, context)
        if isinstance(seen, ssl.SSLError) and seen.reason == "NO_PROTOCOLS_AVAILABLE":
            pytest.skip(f"the local OpenSSL refuses to offer {version}; minimum_version checked")
        message = await security_event(caplog, "unsupported.protocol|version")
    assert HOST in message


async def test_tls_compression_is_off(
    server_context: ssl.SSLContext, client_context: ClientContext
) -> None:
    """OP_NO_COMPRESSION is set and no connection negotiates compression."""
    assert server_context.options & ssl.OP_NO_COMPRESSION
    for maximum in (TLS12, TLS13):
        async with (
            start(server_context) as server,
            station(server, client_context(maximum=maximum)) as ws,
        ):
            assert ws.transport.get_extra_info("compression") is None


async def test_tls_1_3_works(
    server_context: ssl.SSLContext, client_context: ClientContext
) -> None:
    """A station preferring TLS 1.3 connects with TLS 1.3."""
    async with start(server_context) as server, station(server, client_context()) as ws:
        name, version, _ = ws.transport.get_extra_info("cipher")
    assert version == "TLSv1.3"
    assert name.startswith("TLS_")


async def test_profile_2_context_asks_no_client_certificate(
    server_context: ssl.SSLContext, station_pki: StationPki, client_context: ClientContext
) -> None:
    """Without ``client_ca`` no certificate is requested: the station is not identified by one."""
    assert server_context.verify_mode == ssl.CERT_NONE
    seen: list[Any] = []

    def authenticate(handshake: Any) -> None:
        seen.append((handshake.tls, handshake.peer_certificate))

    context = client_context(certificate=station_pki.issue("CP-1"))
    async with start(server_context, authenticate) as server, station(server, context):
        pass
    assert seen == [(True, None)]


@pytest.mark.parametrize(
    "minimum",
    [
        ssl.TLSVersion.MINIMUM_SUPPORTED,
        ssl.TLSVersion.SSLv3,
        ssl.TLSVersion.TLSv1,
        ssl.TLSVersion.TLSv1_1,
    ],
)
def test_server_ssl_context_refuses_old_minimum(server_pki: ServerPki, minimum: Any) -> None:
    """``minimum_version`` below TLS 1.2 is refused."""
    with pytest.raises(ValueError, match=r"TLS 1\.2"):
        server_ssl_context(server_pki.certificates, minimum_version=minimum)


def test_server_ssl_context_accepts_tls_1_3_minimum(server_pki: ServerPki) -> None:
    """``minimum_version=TLSv1_3`` is honoured."""
    context = server_ssl_context(server_pki.certificates, minimum_version=TLS13)
    assert context.minimum_version == TLS13


def test_server_ssl_context_refuses_no_certificate() -> None:
    """An empty certificate list is refused."""
    with pytest.raises(ValueError, match="certificate"):
        server_ssl_context([])


def test_server_ssl_context_settings(server_pki: ServerPki, station_pki: StationPki) -> None:
    """Profile 3 requires a client certificate; both kinds keep TLS >= 1.2, no compression."""
    context = server_ssl_context(server_pki.certificates, client_ca=station_pki.ca_file)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version == TLS12
    assert context.options & ssl.OP_NO_COMPRESSION
    (ca,) = context.get_ca_certs()  # the station CA, and only it
    assert subject_field(ca, "organizationName") == "csms_kit test station CA"


# -- profile 3: the TLS handshake ------------------------------------------------------


@pytest.mark.parametrize("maximum", [TLS12, TLS13], ids=["tls1.2", "tls1.3"])
@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("no certificate", r"did_not_return_a_certificate|certificate required"),
        ("wrong CA", r"unable to get local issuer certificate|unknown ca"),
        ("expired", r"certificate has expired"),
    ],
)
async def test_invalid_client_certificate_fails_the_handshake(
    mtls_context: ssl.SSLContext,
    station_pki: StationPki,
    wrong_pki: StationPki,
    client_context: ClientContext,
    caplog: pytest.LogCaptureFixture,
    case: str,
    reason: str,
    maximum: ssl.TLSVersion,
) -> None:
    """No, untrusted or expired certificate: TLS fails, logged with the reason and the peer."""
    certificate = {
        "no certificate": None,
        "wrong CA": wrong_pki.issue("CP-1"),
        "expired": station_pki.issue("CP-1", expired=True),
    }[case]
    context = client_context(certificate=certificate, maximum=maximum)
    caplog.set_level(logging.WARNING, SECURITY_LOGGER)
    connected = Connected()
    seen: list[str] = []
    async with start(mtls_context, lambda h: seen.append(h.station_id), connected) as server:
        await tls_refused(server, context)
        message = await security_event(caplog, reason)
        # the endpoint still serves valid stations
        async with station(server, client_context(certificate=station_pki.issue("CP-1"))):
            pass
    assert "TLS handshake" in message
    assert HOST in message
    assert seen == ["CP-1"]  # the refused one never reached the HTTP handshake
    assert [s.station_id for s in connected] == ["CP-1"]


async def test_valid_certificate_with_matching_cn_connects(
    mtls_context: ssl.SSLContext, station_pki: StationPki, client_context: ClientContext
) -> None:
    """CN == identity: connected, and the session's handshake holds the verified subject."""
    certificate = station_pki.issue("CP-1")
    connected = Connected()
    context = client_context(certificate=certificate)
    async with (
        start(mtls_context, certificate_auth(), connected) as server,
        station(server, context, "CP-1"),
    ):
        (session,) = connected
        handshake = session.handshake
        assert handshake is not None
        assert handshake.tls is True
        assert handshake.peer_certificate is not None
        assert common_name(handshake.peer_certificate) == "CP-1"
        assert subject_field(handshake.peer_certificate, "organizationName") == OPERATOR
        assert (("commonName", "CP-1"),) in handshake.peer_certificate["subject"]
        assert handshake.peer_certificate_der == der_of(certificate)


@pytest.mark.parametrize(
    ("identity", "cn"), [("CP-1", "CP-2"), ("CP-1", "cp-1"), ("CP-1", "CP-1 "), ("CP-10", "CP-1")]
)
async def test_cn_mismatch_gets_403(
    mtls_context: ssl.SSLContext,
    station_pki: StationPki,
    client_context: ClientContext,
    caplog: pytest.LogCaptureFixture,
    identity: str,
    cn: str,
) -> None:
    """A valid certificate for another station cannot be used to connect as this one."""
    caplog.set_level(logging.WARNING, SECURITY_LOGGER)
    context = client_context(certificate=station_pki.issue(cn))
    connected = Connected()
    async with start(mtls_context, certificate_auth(), connected) as server:
        assert await status_of(server, context, identity) == 403
        message = await security_event(caplog, "does not match")
    assert repr(identity) in message and HOST in message
    assert connected == []


async def test_organization_is_checked(
    mtls_context: ssl.SSLContext, station_pki: StationPki, client_context: ClientContext
) -> None:
    """With ``organization=``, the subject O must be that operator."""
    ours = client_context(certificate=station_pki.issue("CP-1", OPERATOR))
    theirs = client_context(certificate=station_pki.issue("CP-1", OTHER_OPERATOR))
    async with start(mtls_context, certificate_auth(organization=OPERATOR)) as server:
        assert await status_of(server, ours) == 101
        assert await status_of(server, theirs) == 403
    # without ``organization=`` either is fine
    async with start(mtls_context, certificate_auth()) as server:
        assert await status_of(server, theirs) == 101


async def test_custom_identity_of_serial_number(
    mtls_context: ssl.SSLContext, station_pki: StationPki, client_context: ClientContext
) -> None:
    """``identity_of`` may name stations by another field, e.g. the serial number."""
    certificate = station_pki.issue("not-the-identity")
    other = station_pki.issue("another")
    serial = openssl_serial(certificate)
    context = client_context(certificate=certificate)
    async with start(mtls_context, certificate_auth(serial_number)) as server:
        assert await status_of(server, context, serial) == 101
        assert await status_of(server, context, "not-the-identity") == 403
        assert await status_of(server, client_context(certificate=other), serial) == 403


async def test_certificate_auth_without_certificate_gets_401(
    server_context: ssl.SSLContext, client_context: ClientContext
) -> None:
    """certificate_auth on a listener without client certificates refuses everyone (401)."""
    async with start(server_context, certificate_auth()) as server:
        assert await status_of(server, client_context()) == 401


# -- profile 3 behind a TLS-terminating proxy ------------------------------------------

HEADER = "X-Client-Cert"


def proxied(certificate: trustme.LeafCert) -> list[tuple[str, str]]:
    """The header a proxy like nginx adds: the URL-encoded PEM ($ssl_client_escaped_cert)."""
    return [(HEADER, quote(pem_of(certificate), safe=""))]


async def test_proxy_header_honoured_from_trusted_proxy(station_pki: StationPki) -> None:
    """From a trusted proxy address, the URL-encoded PEM in the header identifies the station."""
    hook = certificate_auth(
        organization=OPERATOR, trusted_proxies=["127.0.0.1/32"], proxy_header=HEADER
    )
    connected = Connected()
    async with start(None, hook, connected) as server:
        assert await status_of(server, None, "CP-1", proxied(station_pki.issue("CP-1"))) == 101
        assert await status_of(server, None, "CP-2", proxied(station_pki.issue("CP-1"))) == 403
        other = proxied(station_pki.issue("CP-1", OTHER_OPERATOR))
        assert await status_of(server, None, "CP-1", other) == 403
        assert await status_of(server, None, "CP-1") == 401  # no header, no certificate
        assert await status_of(server, None, "CP-1", [(HEADER, "not%20a%20PEM")]) == 401
    assert [s.station_id for s in connected] == ["CP-1"]


@pytest.mark.parametrize("proxies", [["10.0.0.0/8"], ["127.0.0.2/32", "::1"]])
async def test_proxy_header_ignored_from_untrusted_address(
    station_pki: StationPki, caplog: pytest.LogCaptureFixture, proxies: list[str]
) -> None:
    """The header from an address not in ``trusted_proxies`` is ignored (401) and logged."""
    caplog.set_level(logging.WARNING, SECURITY_LOGGER)
    hook = certificate_auth(trusted_proxies=proxies, proxy_header=HEADER)
    async with start(None, hook) as server:
        assert await status_of(server, None, "CP-1", proxied(station_pki.issue("CP-1"))) == 401
        message = await security_event(caplog, "not a trusted proxy")
    assert HOST in message


@pytest.mark.parametrize("proxies", [(), []])
def test_proxy_header_needs_trusted_proxies(proxies: Sequence[str]) -> None:
    """``proxy_header`` without ``trusted_proxies`` is refused at once."""
    with pytest.raises(ValueError, match="trusted_proxies"):
        certificate_auth(proxy_header=HEADER, trusted_proxies=proxies)


def _odd_serial_certificate(pki: StationPki) -> trustme.LeafCert:
    """A station certificate whose serial number has an odd number of hex digits."""
    for _ in range(1000):  # about one certificate in sixteen qualifies
        certificate = pki.ca.issue_cert(common_name="CP-odd", organization_name=OPERATOR)
        serial = x509.load_pem_x509_certificate(pem_of(certificate).encode()).serial_number
        if len(format(serial, "X")) % 2:
            return certificate
    pytest.fail("no certificate with an odd-length serial number")


async def test_proxy_certificate_fields_match_direct_tls(
    mtls_context: ssl.SSLContext, station_pki: StationPki, client_context: ClientContext
) -> None:
    """One ``identity_of`` identifies a station the same directly and behind the proxy.

    The proxy path must spell fields as :meth:`ssl.SSLSocket.getpeercert` does,
    including a serial number whose first byte is below 0x10 ("0E95...", not "E95...").
    """
    certificate = _odd_serial_certificate(station_pki)
    serial = openssl_serial(certificate)
    assert serial.startswith("0")
    direct = certificate_auth(serial_number)
    behind_proxy = certificate_auth(
        serial_number, trusted_proxies=["127.0.0.1"], proxy_header=HEADER
    )
    async with start(mtls_context, direct) as server:
        assert await status_of(server, client_context(certificate=certificate), serial) == 101
    async with start(None, behind_proxy) as server:
        assert await status_of(server, None, serial, proxied(certificate)) == 101


def test_certificate_auth_refuses_a_coroutine_identity_of() -> None:
    """An async identity_of would never be awaited: refused when the hook is built."""

    async def identity_of(certificate: dict[str, Any]) -> str | None:
        return None

    with pytest.raises(TypeError):
        certificate_auth(identity_of)  # type: ignore[arg-type]
