"""Security profiles 2 and 3: the server's TLS context and client-certificate checks.

:func:`server_ssl_context` builds an :class:`ssl.SSLContext` as OCPP requires: TLS 1.2
or later, the cipher suites OCPP names for TLS 1.2 (ECDHE-ECDSA-AES128/256-GCM and
RSA-AES128/256-GCM, hence an ECDSA *and* an RSA certificate served side by side),
no TLS compression. Give ``client_ca`` for profile 3: a client certificate is then
required and verified against it; an invalid, expired or unknown certificate ends
the connection during the TLS handshake, and the failure is logged as a security
event on the ``csms_kit.security`` logger.

:func:`certificate_auth` is the profile 3 ``authenticate`` hook: it maps the verified
certificate to a station identity (default: its subject CN) and refuses a mismatch.
Behind a TLS-terminating proxy it can read the certificate from a header, honoured
only from the proxy addresses you name.
"""

from __future__ import annotations

import importlib.util
import inspect
import ipaddress
import logging
import os
import ssl
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import unquote

from csms_kit.hooks import Authenticate, Handshake, Rejection

__all__ = [
    "OCPP_TLS12_CIPHERS",
    "certificate_auth",
    "common_name",
    "server_ssl_context",
    "subject_field",
]

logger = logging.getLogger("csms_kit.security")

#: OCPP's TLS 1.2 cipher suites (OpenSSL names): TLS_ECDHE_ECDSA_WITH_AES_128/256_GCM
#: and TLS_RSA_WITH_AES_128/256_GCM.
OCPP_TLS12_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
)

StrPath = str | os.PathLike[str]


class _AuditedSSLObject(ssl.SSLObject):
    """Logs failed TLS handshakes as security events (asyncio only logs them in debug)."""

    def do_handshake(self) -> None:
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            detail = getattr(exc, "verify_message", None) or exc.reason or str(exc)
            logger.warning("security: TLS handshake from %s failed: %s", _peer_of_caller(), detail)
            raise


def _peer_of_caller() -> str:
    # Best effort: asyncio's SSL protocol, which drives the handshake, knows the peer
    # through its transport; an SSLObject does not.
    try:
        protocol: Any = sys._getframe(2).f_locals.get("self")
        peer = protocol._get_extra_info("peername")
    except (ValueError, AttributeError):  # pragma: no cover - other event loops
        peer = None
    return str(peer[0]) if isinstance(peer, tuple) and peer else "unknown address"


def server_ssl_context(
    certificates: Sequence[tuple[StrPath, StrPath]],
    *,
    client_ca: StrPath | None = None,
    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
) -> ssl.SSLContext:
    """A server :class:`ssl.SSLContext` for OCPP security profile 2, or 3 with ``client_ca``.

    ``certificates`` lists (certificate chain file, private key file) pairs: give an
    RSA and an ECDSA one so that every OCPP cipher suite can be negotiated.
    """
    if not certificates:
        raise ValueError("server_ssl_context needs at least one certificate")
    if minimum_version < ssl.TLSVersion.TLSv1_2:
        raise ValueError("OCPP requires TLS 1.2 or later")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = minimum_version
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_ciphers(":".join(OCPP_TLS12_CIPHERS))
    for certificate, key in certificates:
        context.load_cert_chain(certificate, key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=os.fspath(client_ca))
    context.sslobject_class = _AuditedSSLObject
    return context


def subject_field(certificate: dict[str, Any], name: str) -> str | None:
    """The first ``name`` (e.g. ``"commonName"``) in a certificate's subject, if any."""
    for rdn in certificate.get("subject", ()):
        for key, value in rdn:
            if key == name:
                return str(value)
    return None


def common_name(certificate: dict[str, Any]) -> str | None:
    """The subject CN: OCPP puts the station's identity (serial) there."""
    return subject_field(certificate, "commonName")


def certificate_auth(
    identity_of: Callable[[dict[str, Any]], str | None] = common_name,
    *,
    organization: str | None = None,
    trusted_proxies: Iterable[str] = (),
    proxy_header: str | None = None,
) -> Authenticate:
    """The ``authenticate`` hook for OCPP security profile 3 (mutual TLS).

    The verified client certificate must map, by ``identity_of``, to the identity in
    the URL; with ``organization`` its subject O must match too. A connection that
    brings Basic credentials (another profile's) is refused, as is one without a
    certificate.

    Behind a TLS-terminating proxy, set ``proxy_header`` (e.g. ``"X-Client-Cert"``,
    a URL-encoded PEM certificate as nginx's ``$ssl_client_escaped_cert``) and the
    proxies' addresses or networks in ``trusted_proxies``: the header is read only
    from those, and the proxy must have verified the certificate. Reading it needs
    the ``cryptography`` package (``pip install "csms-kit[proxy]"``).
    """
    if inspect.iscoroutinefunction(identity_of):
        raise TypeError("identity_of must be a plain function, not a coroutine function")
    proxies = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]
    if proxy_header is not None and not proxies:
        raise ValueError("proxy_header needs trusted_proxies: never trust it from anyone")
    if proxy_header is not None and importlib.util.find_spec("cryptography") is None:
        raise RuntimeError(
            "reading client certificates from a proxy header needs the cryptography package: "
            'pip install "csms-kit[proxy]"'
        )

    def refuse(handshake: Handshake, status: int, why: str) -> Rejection:
        logger.warning(
            "security: station %r from %s refused: %s",
            handshake.station_id,
            handshake.host,
            why,
        )
        return Rejection(status, why + "\n")

    def authenticate(handshake: Handshake) -> Rejection | None:
        if "authorization" in {key.lower() for key in handshake.headers}:
            return refuse(handshake, 400, "Basic credentials on a profile 3 endpoint")
        certificate = handshake.peer_certificate
        if certificate is None and proxy_header is not None:
            certificate = handshake.peer_certificate = _from_proxy(
                handshake, proxy_header, proxies
            )
        if certificate is None:
            return refuse(handshake, 401, "no client certificate")
        identity = identity_of(certificate)
        if identity != handshake.station_id:
            return refuse(handshake, 403, "certificate does not match the station identity")
        if organization is not None and subject_field(certificate, "organizationName") != (
            organization
        ):
            return refuse(handshake, 403, "certificate of another organization")
        return None

    return authenticate


def _from_proxy(
    handshake: Handshake, header: str, proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> dict[str, Any] | None:
    values = _header_values(handshake.headers, header)
    if not values:
        return None
    if len(values) > 1:
        logger.warning("security: %s sent %d times; refusing", header, len(values))
        return None
    value = values[0]
    try:
        address = ipaddress.ip_address(handshake.host)
    except ValueError:
        return None
    if not any(address in network for network in proxies):
        logger.warning(
            "security: ignoring %s from %s, which is not a trusted proxy", header, address
        )
        return None
    return _parse_pem(unquote(value))


def _header_values(headers: Any, name: str) -> list[str]:
    if hasattr(headers, "get_all"):
        return list(headers.get_all(name))
    value = headers.get(name)
    return [value] if value else []


def _parse_pem(pem: str) -> dict[str, Any] | None:
    try:
        from cryptography import x509  # noqa: PLC0415 - optional dependency
        from cryptography.x509.oid import NameOID  # noqa: PLC0415
    except ImportError:  # pragma: no cover - depends on the installation
        raise RuntimeError(
            "reading client certificates from a proxy header needs the cryptography package"
        ) from None
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError:
        return None
    names = {NameOID.COMMON_NAME: "commonName", NameOID.ORGANIZATION_NAME: "organizationName"}
    subject = tuple(
        ((names[attribute.oid], str(attribute.value)),)
        for attribute in certificate.subject
        if attribute.oid in names
    )
    serial = format(certificate.serial_number, "X")
    # spelled as ssl.getpeercert() spells it: whole bytes, upper case
    return {"subject": subject, "serialNumber": serial.zfill(len(serial) + len(serial) % 2)}
