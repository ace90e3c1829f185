"""The CSMS under test: its endpoint URL, the credentials to use, the patience to have."""

from __future__ import annotations

import base64
import ssl
import warnings
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

__all__ = ["Target", "basic_authorization"]


def basic_authorization(username: str, password: str) -> tuple[str, str]:
    """The ``Authorization`` header for HTTP Basic authentication (RFC 7617)."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return ("Authorization", f"Basic {token}")


@dataclass(frozen=True)
class Target:
    """Where the CSMS is and how a station connects to it.

    ``url`` is the OCPP-J endpoint (``ws://`` or ``wss://``); a station connects to
    ``<url>/<identity>``. ``basic_auth`` is (identity, password) for security profiles
    1 and 2; ``cafile`` the CA bundle that signs the CSMS's certificate (``None``: the
    system's); ``cert``/``key`` the station's client certificate (profile 3).
    ``identity`` fixes the station identity (default: the Basic-auth identity, or a
    fresh one per case). ``timeout`` is how long to wait for an answer; ``quiet``
    how long silence must last to count as "no answer"; ``call_wait`` how long to
    wait for the CSMS to send a CALL of its own.
    """

    url: str
    basic_auth: tuple[str, str] | None = None
    cafile: str | None = None
    cert: str | None = None
    key: str | None = None
    identity: str | None = None
    timeout: float = 5.0
    quiet: float = 1.0
    call_wait: float = 3.0
    #: The size of the frame the over-size case sends, in bytes.
    oversize: int = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(
                f"the CSMS URL must be ws://HOST[:PORT]/PATH or wss://...: {self.url}"
            )
        if parts.query or parts.fragment:
            raise ValueError(f"the CSMS URL must not have a query or fragment: {self.url}")
        if (self.cert is None) != (self.key is None):
            raise ValueError("a client certificate needs both cert and key")
        if self.basic_auth is not None and self.identity not in (None, self.basic_auth[0]):
            raise ValueError("with Basic auth, the station identity is its username")

    @property
    def secure(self) -> bool:
        """Whether the endpoint is ``wss://``."""
        return self.url.startswith("wss:")

    @property
    def fixed_identity(self) -> str | None:
        """The identity every connection uses, if the run fixes one."""
        if self.identity is not None:
            return self.identity
        return None if self.basic_auth is None else self.basic_auth[0]

    @property
    def profile(self) -> int:
        """The OCPP security profile these options amount to (0: none)."""
        if self.secure and self.cert is not None:
            return 3
        if self.basic_auth is not None:
            return 2 if self.secure else 1
        return 0

    def station_url(self, identity: str, *, encoded: str | None = None) -> str:
        """The URL for ``identity`` (percent-encoded), or with the raw ``encoded`` segment."""
        segment = quote(identity, safe="") if encoded is None else encoded
        return f"{self.url.rstrip('/')}/{segment}"

    def credentials(self, identity: str) -> list[tuple[str, str]]:
        """The Basic-auth header for ``identity``, if the run has credentials."""
        if self.basic_auth is None:
            return []
        return [basic_authorization(identity, self.basic_auth[1])]

    def ssl_context(
        self,
        *,
        client_certificate: tuple[str, str] | bool | None = True,
        tls_max: ssl.TLSVersion | None = None,
        ciphers: str | None = None,
    ) -> ssl.SSLContext | None:
        """The TLS context for a ``wss://`` endpoint (``None`` for ``ws://``).

        ``client_certificate``: ``True`` the run's own (if any), ``False``/``None``
        none, or (cert, key) files. ``tls_max`` caps the TLS version; below 1.2 the
        context also allows the old versions and their ciphers, which OpenSSL hides
        at its default security level. ``ciphers`` restricts the TLS 1.2 suites.
        """
        if not self.secure:
            return None
        context = ssl.create_default_context(cafile=self.cafile)
        if client_certificate is True:
            if self.cert is not None and self.key is not None:
                context.load_cert_chain(self.cert, self.key)
        elif client_certificate:
            context.load_cert_chain(*client_certificate)
        if tls_max is not None:
            if tls_max < ssl.TLSVersion.TLSv1_2:
                with warnings.catch_warnings():
                    # Asking for TLS 1.0/1.1 is the point here: they must be refused.
                    warnings.simplefilter("ignore", DeprecationWarning)
                    context.minimum_version = ssl.TLSVersion.TLSv1
                    context.maximum_version = tls_max
                context.set_ciphers("DEFAULT:@SECLEVEL=0")
            else:
                context.maximum_version = tls_max
        if ciphers is not None:
            context.set_ciphers(ciphers)
        return context
