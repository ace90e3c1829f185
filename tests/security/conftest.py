"""Throw-away PKIs for the security tests, made with ``trustme`` at test time.

* a server CA issuing an RSA and an ECDSA certificate for ``127.0.0.1``/``localhost``
  (OCPP's cipher suites need both, served side by side);
* a station CA issuing client certificates as OCPP profile 3 wants them: subject CN =
  the station identity, O = the operator (expired ones too, via ``not_after``);
* a third, "wrong" CA that nobody trusts.

Certificates and keys reach :mod:`ssl` through trustme's temporary files.
"""

from __future__ import annotations

import contextlib
import datetime
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import trustme

#: The operator (subject O) of the stations in these tests.
OPERATOR = "Example Charging Ltd"
#: Another operator, whose certificates the CSMS must not take for its own.
OTHER_OPERATOR = "Rival Charging GmbH"

ClientContext = Callable[..., ssl.SSLContext]


@dataclass
class ServerPki:
    """The CSMS side: a CA and its RSA and ECDSA server certificates, as files."""

    ca: trustme.CA
    ca_file: str
    rsa: trustme.LeafCert
    ecdsa: trustme.LeafCert
    #: (certificate chain file, private key file) for each of ``rsa`` and ``ecdsa``.
    rsa_files: tuple[str, str]
    ecdsa_files: tuple[str, str]

    @property
    def certificates(self) -> list[tuple[str, str]]:
        """What :func:`~csms_kit.security.server_ssl_context` takes: both certificates."""
        return [self.rsa_files, self.ecdsa_files]


@dataclass
class StationPki:
    """A CA issuing station certificates: CN = identity, O = operator."""

    ca: trustme.CA
    ca_file: str
    _issued: dict[tuple[str, str, bool], trustme.LeafCert] = field(default_factory=dict)

    def issue(
        self, identity: str, organization: str = OPERATOR, *, expired: bool = False
    ) -> trustme.LeafCert:
        """A (cached) client certificate for ``identity``; ``expired`` ended yesterday."""
        key = (identity, organization, expired)
        if key not in self._issued:
            validity: dict[str, datetime.datetime] = {}
            if expired:
                now = datetime.datetime.now(datetime.timezone.utc)
                validity = {
                    "not_before": now - datetime.timedelta(days=30),
                    "not_after": now - datetime.timedelta(days=1),
                }
            self._issued[key] = self.ca.issue_cert(
                common_name=identity, organization_name=organization, **validity
            )
        return self._issued[key]


def _files(stack: contextlib.ExitStack, certificate: trustme.LeafCert) -> tuple[str, str]:
    chain = b"".join(blob.bytes() for blob in certificate.cert_chain_pems)
    return (
        stack.enter_context(trustme.Blob(chain).tempfile()),
        stack.enter_context(certificate.private_key_pem.tempfile()),
    )


@pytest.fixture(scope="session")
def server_pki() -> Iterator[ServerPki]:
    """The server CA and its RSA and ECDSA certificates for 127.0.0.1 and localhost."""
    ca = trustme.CA(organization_name="csms_kit test server CA")
    rsa = ca.issue_cert("127.0.0.1", "localhost", key_type=trustme.KeyType.RSA)
    ecdsa = ca.issue_cert("127.0.0.1", "localhost", key_type=trustme.KeyType.ECDSA)
    with contextlib.ExitStack() as stack:
        yield ServerPki(
            ca=ca,
            ca_file=stack.enter_context(ca.cert_pem.tempfile()),
            rsa=rsa,
            ecdsa=ecdsa,
            rsa_files=_files(stack, rsa),
            ecdsa_files=_files(stack, ecdsa),
        )


@pytest.fixture(scope="session")
def station_pki() -> Iterator[StationPki]:
    """The CA the CSMS trusts for station (client) certificates."""
    ca = trustme.CA(organization_name="csms_kit test station CA")
    with ca.cert_pem.tempfile() as ca_file:
        yield StationPki(ca, ca_file)


@pytest.fixture(scope="session")
def wrong_pki() -> Iterator[StationPki]:
    """A CA nobody trusts: its certificates look right but must be refused."""
    ca = trustme.CA(organization_name="csms_kit test wrong CA")
    with ca.cert_pem.tempfile() as ca_file:
        yield StationPki(ca, ca_file)


@pytest.fixture
def client_context(server_pki: ServerPki) -> ClientContext:
    """Build a station's SSLContext: trusts the server CA; optional certificate, versions.

    ``client_context(certificate=..., minimum=..., maximum=..., ciphers=...)``
    """

    def build(
        *,
        certificate: trustme.LeafCert | None = None,
        minimum: ssl.TLSVersion | None = None,
        maximum: ssl.TLSVersion | None = None,
        ciphers: str | None = None,
    ) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        server_pki.ca.configure_trust(context)
        if certificate is not None:
            certificate.configure_cert(context)
        if minimum is not None:
            context.minimum_version = minimum
        if maximum is not None:
            context.maximum_version = maximum
        if ciphers is not None:
            context.set_ciphers(ciphers)
        return context

    return build
