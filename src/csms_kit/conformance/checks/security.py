"""Security profiles 1 to 3: Basic authentication, TLS, client certificates.

These run once (the credentials do not depend on the OCPP version), and only with
the options that say which profile the CSMS speaks: ``--basic-auth`` (profiles 1
and 2), a ``wss://`` URL (TLS: profiles 2 and 3), ``--cert``/``--key`` (profile 3).
They run last: each refused attempt counts against the identity at a CSMS that
throttles failed logins, and must not lock out the other cases.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

from csms_kit.conformance.case import SUITE, Failed, Skipped
from csms_kit.conformance.context import Context
from csms_kit.conformance.probe import HandshakeFailed, HandshakeRefused, Probe
from csms_kit.conformance.target import basic_authorization

_BASIC = frozenset({"basic_auth"})
_TLS = frozenset({"tls"})
_MUTUAL = frozenset({"client_cert"})
#: The TLS 1.2 suites OCPP requires of a CSMS, by their OpenSSL names.
_SUITES = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
}


async def _refused(
    ctx: Context, result: Probe | HandshakeRefused | HandshakeFailed, what: str
) -> str:
    if isinstance(result, HandshakeRefused):
        return f"refused with HTTP {result.status}"
    if isinstance(result, HandshakeFailed):
        return f"refused: {result.reason}"
    if await result.wait_closed(ctx.target.quiet):
        return f"completed the handshake, then closed ({result.close_code})"
    raise Failed(f"accepted {what}")


async def _accepted_at_boot(ctx: Context, octt: str) -> str:
    probe = await ctx.open()
    assert ctx.version is not None
    status = await ctx.boot(probe)
    if status != "Accepted":
        raise Failed(f"BootNotification answered {status}; {octt} wants Accepted")
    return f"connected as {ctx.identity!r}, OCPP {ctx.version}, boot Accepted"


@SUITE.case(
    "basic-auth-valid",
    "the right identity and password connect, and the station is accepted at boot",
    group="security",
    spec="2.0.1 A00.FR.204, B01.FR.02",
    octt="TC_A_01_CSMS; 1.6: TC_085_CSMS",
    once=True,
    needs=_BASIC,
)
async def basic_auth_valid(ctx: Context) -> str | None:
    ctx.version = ctx.versions[0]
    return await _accepted_at_boot(ctx, "TC_A_01_CSMS")


@SUITE.case(
    "basic-auth-wrong-password",
    "a wrong password is refused at the handshake",
    group="security",
    spec="Security profiles 1 and 2 (Basic auth)",
    once=True,
    needs=_BASIC,
)
async def basic_auth_wrong_password(ctx: Context) -> str | None:
    assert ctx.target.basic_auth is not None
    identity, password = ctx.target.basic_auth
    wrong = password[::-1] if password[::-1] != password else password + "x"
    result = await ctx.attempt(headers=[basic_authorization(identity, wrong)])
    return await _refused(ctx, result, "a wrong password")


@SUITE.case(
    "basic-auth-username-mismatch",
    "a username that is not the identity in the URL is refused",
    group="security",
    spec="2.0.1 A00.FR.204",
    octt="TC_A_02_CSMS",
    once=True,
    needs=_BASIC,
)
async def basic_auth_username_mismatch(ctx: Context) -> str | None:
    assert ctx.target.basic_auth is not None
    identity, password = ctx.target.basic_auth
    headers = [basic_authorization(identity + "Invalid", password)]
    result = await ctx.attempt(headers=headers)
    return await _refused(ctx, result, "a username other than the identity")


@SUITE.case(
    "basic-auth-missing",
    "a station without credentials is refused",
    group="security",
    spec="Security profiles 1 and 2 (Basic auth)",
    once=True,
    needs=_BASIC,
)
async def basic_auth_missing(ctx: Context) -> str | None:
    result = await ctx.attempt(headers=[])
    return await _refused(ctx, result, "a station without credentials")


@SUITE.case(
    "tls-below-1.2",
    "a TLS handshake below version 1.2 is refused",
    group="security",
    spec="2.0.1 A00.FR.314/315/409/416/417/418",
    octt="TC_A_06_CSMS",
    once=True,
    needs=_TLS,
)
async def tls_below_12(ctx: Context) -> str | None:
    try:
        tls = ctx.target.ssl_context(tls_max=ssl.TLSVersion.TLSv1_1)
    except (ssl.SSLError, ValueError) as exc:
        raise Skipped(f"this machine's OpenSSL cannot offer TLS 1.1: {exc}") from None
    result = await ctx.attempt(tls=tls)
    if isinstance(result, HandshakeFailed) and "NO_PROTOCOLS_AVAILABLE" in result.reason:
        raise Skipped("this machine's OpenSSL cannot offer TLS 1.0 or 1.1")
    return await _refused(ctx, result, "TLS 1.1")


@SUITE.case(
    "tls-cipher-suites",
    "TLS 1.2 with each of the four cipher suites OCPP requires",
    group="security",
    spec="Security profiles 2 and 3 (TLS 1.2 cipher suites)",
    octt="1.6: TC_086_CSMS",
    once=True,
    needs=_TLS,
)
async def tls_cipher_suites(ctx: Context) -> str | None:
    parts = urlsplit(ctx.target.url)
    host, port = parts.hostname or "", parts.port or 443
    refused: list[str] = []
    for suite, openssl_name in _SUITES.items():
        context = ctx.target.ssl_context(tls_max=ssl.TLSVersion.TLSv1_2, ciphers=openssl_name)
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=context), ctx.target.timeout
            )
        except (OSError, asyncio.TimeoutError):
            refused.append(suite)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    if refused:
        raise Failed(f"refused {', '.join(refused)} with TLS 1.2")
    return "all four suites negotiated with TLS 1.2"


@SUITE.case(
    "client-cert-valid",
    "the station's certificate connects it, and it is accepted at boot",
    group="security",
    spec="Security profile 3 (client certificate, CN = identity)",
    once=True,
    needs=_MUTUAL,
)
async def client_cert_valid(ctx: Context) -> str | None:
    ctx.version = ctx.versions[0]
    return await _accepted_at_boot(ctx, "profile 3")


@SUITE.case(
    "client-cert-missing",
    "a station without a client certificate is refused",
    group="security",
    spec="Security profile 3 (client certificate)",
    once=True,
    needs=_MUTUAL,
)
async def client_cert_missing(ctx: Context) -> str | None:
    result = await ctx.attempt(tls=ctx.target.ssl_context(client_certificate=False))
    return await _refused(ctx, result, "a station without a certificate")


@SUITE.case(
    "client-cert-unknown-ca",
    "a certificate from a CA the CSMS does not trust is refused",
    group="security",
    spec="2.0.1 A00.FR.405/407/409/410",
    octt="TC_A_08_CSMS (unknown certificate)",
    once=True,
    needs=_MUTUAL,
)
async def client_cert_unknown_ca(ctx: Context) -> str | None:
    with tempfile.TemporaryDirectory(prefix="csms-kit-conformance-") as directory:
        files = _self_signed(ctx.identity, Path(directory))
        tls = ctx.target.ssl_context(client_certificate=files)
        result = await ctx.attempt(tls=tls)
    return await _refused(ctx, result, "a self-signed certificate")


@SUITE.case(
    "client-cert-other-identity",
    "a valid certificate is refused for an identity other than its CN",
    group="security",
    spec="2.0.1 A00.FR.405/407/409/410",
    octt="TC_A_08_CSMS (commonName is not the station's)",
    once=True,
    needs=_MUTUAL,
)
async def client_cert_other_identity(ctx: Context) -> str | None:
    result = await ctx.attempt(identity=ctx.identity + "-other")
    return await _refused(ctx, result, "another station's certificate")


def _self_signed(identity: str, directory: Path) -> tuple[str, str]:
    """A self-signed certificate for ``identity`` (CN) and its key, as PEM files."""
    try:
        from cryptography import x509  # noqa: PLC0415 - optional: only this case needs it
        from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
        from cryptography.x509.oid import NameOID  # noqa: PLC0415
    except ImportError:
        raise Skipped("needs the cryptography package: pip install 'csms-kit[proxy]'") from None
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, identity),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "csms_kit conformance (untrusted)"),
        ]
    )
    now = datetime.now(timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "station.pem", directory / "station.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)
