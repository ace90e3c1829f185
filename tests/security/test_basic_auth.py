"""Security profiles 1 and 2: HTTP Basic authentication at the handshake, on the wire.

Every test runs a real server on loopback: profile 1 over ``ws://``, profile 2 over
``wss://`` with :func:`~csms_kit.security.server_ssl_context`, and checks what the
station receives (HTTP status, headers) and what the CSMS logs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
import json
import logging
import socket
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from csms_kit import CsmsServer, StationSession, on, serve
from csms_kit.hooks import Authenticate
from csms_kit.security import (
    basic_auth,
    certificate_auth,
    hash_authorization_key,
    hash_password,
    server_ssl_context,
)
from csms_kit.security.basic import PasswordLookup
from tests.security.conftest import ClientContext, ServerPki, StationPki

HOST = "127.0.0.1"
TIMEOUT = 2.0
COST = 2**10
NOW = "2026-11-27T10:00:00Z"

#: An OCPP 1.6 AuthorizationKey (20 bytes, with NUL, ``:`` and non-ASCII bytes).
KEY = bytes.fromhex("00ff3a7f80c3a9e282ac0d0a20deadbeef010203")
#: An OCPP 2.0.1 BasicAuthPassword with non-ASCII characters (29 characters).
PASSWORD = "Grüße-aus-Köln-🔌-Ladepunkt-7"
#: What the tests' lookup knows: 1.6 stations (key stored from bytes, and from hex)
#: and a 2.0.1 station.
STORED = {
    "CP-16": hash_authorization_key(KEY, n=COST),
    "CP-16-hex": hash_authorization_key(KEY.hex().upper(), n=COST),
    "CP-201": hash_password(PASSWORD, n=COST),
    "CP-other": hash_password("another-password-of-CP-other", n=COST),
}
WRONG = "wrong-password-1234"
#: The module that defines basic_auth.
basic_auth_module = importlib.import_module("csms_kit.security.basic")


class Csms(StationSession):
    """Answers Heartbeat; boot gate off."""

    boot_gate = False

    @on("Heartbeat")
    def heartbeat(self, request: Any) -> dict[str, Any]:
        return {"currentTime": NOW}


def lookup(station_id: str) -> str | None:
    return STORED.get(station_id)


async def async_lookup(station_id: str) -> str | None:
    await asyncio.sleep(0)
    return STORED.get(station_id)


def basic(username: str, password: bytes) -> tuple[str, str]:
    token = base64.b64encode(username.encode() + b":" + password).decode()
    return ("Authorization", f"Basic {token}")


@dataclass
class Outcome:
    """What a station got: 101 (and a Heartbeat answered) or an HTTP error."""

    status: int
    headers: Headers
    body: bytes = b""


@dataclass
class Endpoint:
    """A listener of one security profile, and how a station reaches it."""

    profile: int
    server_ssl: ssl.SSLContext | None
    client_ssl: ssl.SSLContext | None
    connected: list[StationSession] = field(default_factory=list)

    def hook(self, lookup: PasswordLookup = lookup, **options: Any) -> Authenticate:
        """``basic_auth`` for this endpoint's profile."""
        return basic_auth(lookup, profile=1 if self.profile == 1 else 2, **options)

    def serve(self, authenticate: Authenticate, **options: Any) -> CsmsServer:
        return serve(
            Csms,
            HOST,
            0,
            ssl=self.server_ssl,
            authenticate=authenticate,
            on_connect=self.connected.append,
            ping_interval=None,
            close_timeout=1,
            open_timeout=TIMEOUT,
            **options,
        )

    async def attempt(
        self,
        server: CsmsServer,
        identity: str,
        password: bytes | None = None,
        *,
        username: str | None = None,
        source: str = HOST,
        headers: Sequence[tuple[str, str]] = (),
        client_ssl: ssl.SSLContext | None = None,
    ) -> Outcome:
        """Connect as ``identity`` from address ``source``; on 101, send a Heartbeat."""
        scheme = "wss" if self.server_ssl is not None else "ws"
        all_headers = list(headers)
        if password is not None:
            all_headers.append(basic(identity if username is None else username, password))
        try:
            async with connect(
                f"{scheme}://{HOST}:{server.port}/{identity}",
                subprotocols=[Subprotocol("ocpp1.6")],
                additional_headers=all_headers,
                ssl=client_ssl or self.client_ssl,
                local_addr=(source, 0),
                open_timeout=TIMEOUT,
                close_timeout=1,
                ping_interval=None,
            ) as ws:
                await ws.send(json.dumps([2, "hb", "Heartbeat", {}]))
                answer = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
                assert answer == [3, "hb", {"currentTime": NOW}]
                return Outcome(101, ws.response.headers)
        except InvalidStatus as refused:
            response = refused.response
            return Outcome(response.status_code, response.headers, response.body or b"")


@pytest.fixture(params=[1, 2], ids=["profile1-ws", "profile2-wss"])
def endpoint(
    request: pytest.FixtureRequest, server_pki: ServerPki, client_context: ClientContext
) -> Endpoint:
    """Profile 1 (plain ws://) or profile 2 (wss:// with both server certificates)."""
    if request.param == 1:
        return Endpoint(1, None, None)
    return Endpoint(2, server_ssl_context(server_pki.certificates), client_context())


@pytest.fixture
def tls_endpoint(server_pki: ServerPki, client_context: ClientContext) -> Endpoint:
    """A profile 2 listener."""
    return Endpoint(2, server_ssl_context(server_pki.certificates), client_context())


@pytest.fixture
def plain_endpoint() -> Endpoint:
    """A profile 1 listener."""
    return Endpoint(1, None, None)


class VerifySpy:
    """Wraps ``verify_password`` as basic_auth calls it, counting the calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.real = basic_auth_module.verify_password

    def __call__(self, password: bytes, stored: str) -> bool:
        self.calls.append(stored)
        return self.real(password, stored)


@pytest.fixture
def verify_spy(monkeypatch: pytest.MonkeyPatch) -> VerifySpy:
    spy = VerifySpy()
    monkeypatch.setattr(basic_auth_module, "verify_password", spy)
    return spy


@pytest.fixture(scope="session")
def other_addresses() -> list[str]:
    """Loopback source addresses besides 127.0.0.1 (Linux routes all of 127/8 to lo)."""
    addresses = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    for address in addresses:
        with socket.socket() as probe:
            try:
                probe.bind((address, 0))
            except OSError:
                pytest.skip(f"cannot bind {address}: needs a loopback with all of 127.0.0.0/8")
    return addresses


# -- accepted --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identity", "password"),
    [
        ("CP-16", KEY),
        ("CP-16", KEY.hex().encode()),
        ("CP-16", KEY.hex().upper().encode()),
        ("CP-16-hex", KEY),
        ("CP-16-hex", KEY.hex().encode()),
        ("CP-201", PASSWORD.encode()),
    ],
    ids=["1.6-raw", "1.6-hex", "1.6-HEX", "1.6-stored-hex-sent-raw", "1.6-stored-hex", "2.0.1"],
)
async def test_right_credentials_are_accepted(
    endpoint: Endpoint, identity: str, password: bytes
) -> None:
    """The right 1.6 key (raw or hex) or 2.0.1 password gets the station in."""
    async with endpoint.serve(endpoint.hook(lookup)) as server:
        outcome = await endpoint.attempt(server, identity, password)
    assert outcome.status == 101
    (session,) = endpoint.connected
    assert session.station_id == identity
    assert session.handshake is not None
    assert session.handshake.username == identity
    assert session.handshake.tls is (endpoint.profile == 2)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_sync_and_async_lookup(endpoint: Endpoint, kind: str) -> None:
    """``lookup`` may be a plain or a coroutine function: accepted, 401 and 404 alike."""
    asked: list[str] = []

    def sync(station_id: str) -> str | None:
        asked.append(station_id)
        return lookup(station_id)

    async def asynchronous(station_id: str) -> str | None:
        asked.append(station_id)
        return await async_lookup(station_id)

    hook = endpoint.hook(sync if kind == "sync" else asynchronous)
    async with endpoint.serve(hook) as server:
        assert (await endpoint.attempt(server, "CP-201", PASSWORD.encode())).status == 101
        assert (await endpoint.attempt(server, "CP-201", WRONG.encode())).status == 401
        assert (await endpoint.attempt(server, "CP-404", PASSWORD.encode())).status == 404
    assert asked == ["CP-201", "CP-201", "CP-404"]


# -- refused ---------------------------------------------------------------------------

CHALLENGE = 'Basic realm="OCPP", charset="UTF-8"'


@pytest.mark.parametrize(
    ("identity", "username", "password", "headers"),
    [
        ("CP-201", None, WRONG.encode(), ()),
        ("CP-201", None, PASSWORD.upper().encode(), ()),
        ("CP-16", None, KEY[:-1] + b"x", ()),
        ("CP-16", None, (KEY.hex()[:-1] + "f").encode(), ()),
        ("CP-201", None, None, ()),
        ("CP-201", None, b"0123456789abcde", ()),  # 15 bytes: short
        ("CP-201", None, b"", ()),
        ("CP-201", None, b"p" * 161, ()),  # more than 40 characters of 4 bytes
        ("CP-201", "CP-16", KEY, ()),  # CP-16's own valid credentials
        ("CP-201", "cp-201", PASSWORD.encode(), ()),
        ("CP-201", "", PASSWORD.encode(), ()),
        ("CP-201", None, None, (("Authorization", "Bearer abcdefghijklmnop"),)),
        ("CP-201", None, None, (("Authorization", "Basic !!!not-base64!!!"),)),
        ("CP-201", None, None, (("Authorization", "Basic " + base64.b64encode(b"x").decode()),)),
    ],
    ids=[
        "wrong-password",
        "password-case",
        "wrong-1.6-key",
        "wrong-1.6-hex",
        "no-header",
        "short-password",
        "empty-password",
        "long-password",
        "username-is-other-station",
        "username-case",
        "empty-username",
        "bearer",
        "bad-base64",
        "no-colon",
    ],
)
async def test_bad_credentials_get_401_with_challenge(
    endpoint: Endpoint,
    identity: str,
    username: str | None,
    password: bytes | None,
    headers: Sequence[tuple[str, str]],
) -> None:
    """Wrong, missing, short or malformed credentials, or username != identity: HTTP 401."""
    async with endpoint.serve(endpoint.hook(lookup)) as server:
        outcome = await endpoint.attempt(
            server, identity, password, username=username, headers=headers
        )
    assert outcome.status == 401
    assert outcome.headers.get_all("WWW-Authenticate") == [CHALLENGE]
    assert endpoint.connected == []


async def test_realm_is_configurable(plain_endpoint: Endpoint) -> None:
    """``realm=`` names the realm in the WWW-Authenticate challenge."""
    async with plain_endpoint.serve(basic_auth(lookup, profile=1, realm="ACME CSMS")) as server:
        outcome = await plain_endpoint.attempt(server, "CP-201")
    assert outcome.status == 401
    assert outcome.headers["WWW-Authenticate"] == 'Basic realm="ACME CSMS", charset="UTF-8"'


async def test_unknown_station_gets_404(endpoint: Endpoint, verify_spy: VerifySpy) -> None:
    """A station ``lookup`` does not know (None) gets HTTP 404, no challenge, no hashing."""
    async with endpoint.serve(endpoint.hook(lookup)) as server:
        outcome = await endpoint.attempt(server, "CP-unknown", PASSWORD.encode())
    assert outcome.status == 404
    assert "WWW-Authenticate" not in outcome.headers
    assert verify_spy.calls == []
    assert endpoint.connected == []


async def test_profile_2_on_plain_ws_gets_403(
    plain_endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    """A profile 2 hook on a listener without TLS refuses even right credentials: HTTP 403."""
    caplog.set_level(logging.WARNING, "csms_kit.security")
    async with plain_endpoint.serve(basic_auth(lookup, profile=2)) as server:
        outcome = await plain_endpoint.attempt(server, "CP-201", PASSWORD.encode())
    assert outcome.status == 403
    assert plain_endpoint.connected == []
    assert any("CP-201" in r.getMessage() for r in caplog.records)


async def test_default_profile_is_2(plain_endpoint: Endpoint) -> None:
    """Without ``profile=``, basic_auth is profile 2: it refuses ws:// (secure by default)."""
    async with plain_endpoint.serve(basic_auth(lookup)) as server:
        outcome = await plain_endpoint.attempt(server, "CP-201", PASSWORD.encode())
    assert outcome.status == 403


# -- logging ---------------------------------------------------------------------------


def secret_forms(identity: str, password: bytes) -> list[str]:
    """Every spelling of a password that must never reach a log."""
    token = base64.b64encode(identity.encode() + b":" + password).decode()
    forms = [token, token.rstrip("="), password.hex(), password.decode("latin-1")]
    with contextlib.suppress(UnicodeDecodeError):
        forms.append(password.decode("utf-8"))
    return forms


def record_texts(records: Sequence[logging.LogRecord]) -> Iterator[str]:
    for record in records:
        yield record.getMessage()
        yield repr(record.args)
        if record.exc_info and record.exc_info[1] is not None:
            yield repr(record.exc_info[1])
        if record.exc_text:
            yield record.exc_text


@pytest.mark.parametrize(
    ("identity", "password"),
    [("CP-201", "Sëcret-but-wrong-pässword".encode()), ("CP-16", b"\x01\x02" + KEY[2:-1] + b"z")],
    ids=["2.0.1", "1.6"],
)
async def test_failures_are_logged_without_the_password(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture, identity: str, password: bytes
) -> None:
    """A refusal is logged with the identity and address, never the password (INFO and up)."""
    caplog.set_level(logging.INFO)
    async with endpoint.serve(endpoint.hook(lookup)) as server:
        outcome = await endpoint.attempt(server, identity, password)
    assert outcome.status == 401
    assert password not in outcome.body
    security = [r for r in caplog.records if r.name == "csms_kit.security"]
    assert any(
        identity in r.getMessage() and HOST in r.getMessage() and r.levelno >= logging.WARNING
        for r in security
    ), [r.getMessage() for r in security]
    texts = list(record_texts(caplog.records))
    for form in secret_forms(identity, password):
        assert not any(form in text for text in texts), f"{form!r} was logged"


async def test_credentials_never_logged_even_at_debug(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    """With csms_kit's loggers at DEBUG, no record holds the password or its Basic token.

    (Operators turn DEBUG on to diagnose stations; the ``csms_kit.websockets`` logger
    must not then dump the Authorization header.)
    """
    caplog.set_level(logging.DEBUG, "csms_kit")
    async with endpoint.serve(endpoint.hook(lookup)) as server:
        good = await endpoint.attempt(server, "CP-201", PASSWORD.encode())
        bad = await endpoint.attempt(server, "CP-16", KEY[::-1])
    assert (good.status, bad.status) == (101, 401)
    texts = list(record_texts(caplog.records))
    for identity, password in (("CP-201", PASSWORD.encode()), ("CP-16", KEY[::-1])):
        for form in secret_forms(identity, password):
            assert not any(form in text for text in texts), f"{form!r} was logged"


# -- throttling ------------------------------------------------------------------------


async def test_repeated_failures_of_an_identity_get_429_from_that_address(
    tls_endpoint: Endpoint, other_addresses: list[str], verify_spy: VerifySpy
) -> None:
    """After ``max_failures`` failures an identity gets 429 + Retry-After from that address.

    While blocked, even the right password is refused without being checked; from
    another address the station still gets in (a stranger cannot lock it out).
    """
    hook = basic_auth(lookup, profile=2, max_failures=3, block=60)
    attacker, station = other_addresses[0], HOST
    async with tls_endpoint.serve(hook) as server:
        for _ in range(3):
            outcome = await tls_endpoint.attempt(server, "CP-201", WRONG.encode(), source=attacker)
            assert outcome.status == 401
        checked = len(verify_spy.calls)
        blocked = await tls_endpoint.attempt(server, "CP-201", PASSWORD.encode(), source=attacker)
        assert blocked.status == 429
        assert blocked.headers["Retry-After"] == "60"
        assert len(verify_spy.calls) == checked  # no scrypt for a blocked identity
        # the real station, from its own address, is not locked out
        real = await tls_endpoint.attempt(server, "CP-201", PASSWORD.encode(), source=station)
        assert real.status == 101
        # another station from the attacker's address is not affected either
        other = await tls_endpoint.attempt(server, "CP-16", KEY, source=attacker)
        assert other.status == 101


async def test_repeated_failures_from_an_address_get_429(
    tls_endpoint: Endpoint, other_addresses: list[str]
) -> None:
    """After ``max_address_failures`` failures from an address, any identity from it gets 429."""
    hook = basic_auth(lookup, profile=2, max_failures=3, max_address_failures=3, block=30)
    scanner = other_addresses[0]
    async with tls_endpoint.serve(hook) as server:
        # three identities, one failure each: the unknown one (404) counts too
        for identity, status in (("CP-16", 401), ("CP-nobody", 404), ("CP-other", 401)):
            outcome = await tls_endpoint.attempt(server, identity, b"x" * 16, source=scanner)
            assert outcome.status == status
        blocked = await tls_endpoint.attempt(server, "CP-201", PASSWORD.encode(), source=scanner)
        assert blocked.status == 429
        assert blocked.headers["Retry-After"] == "30"
        # the identity itself is fine from elsewhere
        ok = await tls_endpoint.attempt(server, "CP-201", PASSWORD.encode(), source=HOST)
        assert ok.status == 101


async def test_success_clears_the_identity_failures(
    tls_endpoint: Endpoint, other_addresses: list[str]
) -> None:
    """A successful login from an address resets that identity's failures there."""
    hook = basic_auth(lookup, profile=2, max_failures=3)
    first = other_addresses[0]
    async with tls_endpoint.serve(hook) as server:
        for _ in range(2):
            outcome = await tls_endpoint.attempt(server, "CP-201", b"x" * 16, source=first)
            assert outcome.status == 401
        ok = await tls_endpoint.attempt(server, "CP-201", PASSWORD.encode(), source=first)
        assert ok.status == 101
        for _ in range(2):  # 4 failures in all, but only 2 since the success
            outcome = await tls_endpoint.attempt(server, "CP-201", b"x" * 16, source=first)
            assert outcome.status == 401
        ok = await tls_endpoint.attempt(server, "CP-201", PASSWORD.encode(), source=first)
        assert ok.status == 101


async def test_without_success_failures_add_up(
    tls_endpoint: Endpoint, other_addresses: list[str]
) -> None:
    """The counterpart: failures of one identity from one address, with no success, block it."""
    hook = basic_auth(lookup, profile=2, max_failures=3)
    first, second, _ = other_addresses
    async with tls_endpoint.serve(hook) as server:
        for _ in range(3):
            outcome = await tls_endpoint.attempt(server, "CP-201", b"x" * 16, source=first)
            assert outcome.status == 401
        outcome = await tls_endpoint.attempt(server, "CP-201", PASSWORD.encode(), source=first)
        assert outcome.status == 429
        outcome = await tls_endpoint.attempt(server, "CP-201", PASSWORD.encode(), source=second)
        assert outcome.status == 101


# -- verified-credentials cache --------------------------------------------------------


async def test_verified_credentials_are_cached(endpoint: Endpoint, verify_spy: VerifySpy) -> None:
    """A reconnect with the same credentials skips scrypt; another password does not."""
    async with endpoint.serve(endpoint.hook(lookup)) as server:
        for _ in range(3):
            assert (await endpoint.attempt(server, "CP-201", PASSWORD.encode())).status == 101
        assert verify_spy.calls == [STORED["CP-201"]]
        # a 1.6 key sent raw and as hex are different credentials: each verified once
        assert (await endpoint.attempt(server, "CP-16", KEY)).status == 101
        assert (await endpoint.attempt(server, "CP-16", KEY.hex().encode())).status == 101
        assert (await endpoint.attempt(server, "CP-16", KEY)).status == 101
        assert len(verify_spy.calls) == 3
        # failures are never cached as successes
        for _ in range(2):
            assert (await endpoint.attempt(server, "CP-other", WRONG.encode())).status == 401
        assert len(verify_spy.calls) == 5


async def test_changed_stored_hash_forces_reverification(
    endpoint: Endpoint, verify_spy: VerifySpy
) -> None:
    """When the stored hash changes (password rotated) the cache no longer applies."""
    stored = {"CP-201": hash_password(PASSWORD, n=COST)}
    hook = endpoint.hook(stored.get)
    async with endpoint.serve(hook) as server:
        assert (await endpoint.attempt(server, "CP-201", PASSWORD.encode())).status == 101
        assert (await endpoint.attempt(server, "CP-201", PASSWORD.encode())).status == 101
        assert len(verify_spy.calls) == 1
        # same password, new salt: re-verified (and still right)
        stored["CP-201"] = hash_password(PASSWORD, n=COST)
        assert (await endpoint.attempt(server, "CP-201", PASSWORD.encode())).status == 101
        assert len(verify_spy.calls) == 2
        # rotated to a new password: the old one, though cached before, is refused
        stored["CP-201"] = hash_password("the-new-password-after-rotation", n=COST)
        assert (await endpoint.attempt(server, "CP-201", PASSWORD.encode())).status == 401
        assert len(verify_spy.calls) == 3


async def test_cache_is_per_identity(endpoint: Endpoint, verify_spy: VerifySpy) -> None:
    """Credentials verified for one identity do not open another with the same hash."""
    shared = hash_password(PASSWORD, n=COST)
    stored = {"CP-A": shared, "CP-B": shared}
    async with endpoint.serve(endpoint.hook(stored.get)) as server:
        assert (await endpoint.attempt(server, "CP-A", PASSWORD.encode())).status == 101
        assert (await endpoint.attempt(server, "CP-B", PASSWORD.encode())).status == 101
    assert len(verify_spy.calls) == 2


async def test_cache_expires(plain_endpoint: Endpoint, verify_spy: VerifySpy) -> None:
    """After ``cache_ttl`` seconds the credentials are verified again."""
    hook = basic_auth(lookup, profile=1, cache_ttl=0.05)
    async with plain_endpoint.serve(hook) as server:
        assert (await plain_endpoint.attempt(server, "CP-201", PASSWORD.encode())).status == 101
        await asyncio.sleep(0.1)
        assert (await plain_endpoint.attempt(server, "CP-201", PASSWORD.encode())).status == 101
    assert len(verify_spy.calls) == 2


# -- another profile's credentials -----------------------------------------------------


async def test_profile_3_endpoint_refuses_basic_credentials(
    server_pki: ServerPki,
    station_pki: StationPki,
    client_context: ClientContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A mutual-TLS listener refuses a valid certificate that comes with Basic credentials."""
    caplog.set_level(logging.WARNING, "csms_kit.security")
    endpoint = Endpoint(
        3,
        server_ssl_context(server_pki.certificates, client_ca=station_pki.ca_file),
        client_context(certificate=station_pki.issue("CP-201")),
    )
    async with endpoint.serve(certificate_auth()) as server:
        refused = await endpoint.attempt(server, "CP-201", PASSWORD.encode())
        assert refused.status == 400
        assert endpoint.connected == []
        # the same certificate alone is fine
        assert (await endpoint.attempt(server, "CP-201")).status == 101
    assert any("Basic credentials" in r.getMessage() for r in caplog.records)


async def test_profile_2_endpoint_refuses_a_certificate_without_password(
    tls_endpoint: Endpoint, station_pki: StationPki, client_context: ClientContext
) -> None:
    """A profile 2 listener wants Basic credentials: a client certificate alone gets 401."""
    with_certificate = client_context(certificate=station_pki.issue("CP-201"))
    async with tls_endpoint.serve(basic_auth(lookup, profile=2)) as server:
        outcome = await tls_endpoint.attempt(server, "CP-201", client_ssl=with_certificate)
    assert outcome.status == 401
    assert tls_endpoint.connected == []


def test_failure_throttle_unit() -> None:
    """FailureThrottle blocks at ``max_failures`` within ``window``, forgets old windows."""
    from csms_kit.security import FailureThrottle

    now = [0.0]
    throttle = FailureThrottle(
        max_failures=3, window=10, block=100, max_keys=2, clock=lambda: now[0]
    )
    throttle.failed("a")
    throttle.failed("a")
    now[0] = 11.0  # the window passed: the count starts over
    throttle.failed("a")
    throttle.failed("a")
    assert not throttle.blocked("a")
    throttle.failed("a")
    assert throttle.blocked("a")
    now[0] = 110.0
    assert throttle.blocked("a")
    now[0] = 111.5
    assert not throttle.blocked("a")
    throttle.succeeded("a")
    # bounded memory: a third key pushes out the oldest
    for key in ("b", "c", "d"):
        for _ in range(3):
            throttle.failed(key)
    assert not throttle.blocked("b")
    assert throttle.blocked("c") and throttle.blocked("d")


@pytest.mark.parametrize("profile", [0, 3, "2"])
def test_basic_auth_serves_only_profiles_1_and_2(profile: Any) -> None:
    """basic_auth refuses a profile it does not implement, instead of guessing."""
    with pytest.raises(ValueError):
        basic_auth(lookup, profile=profile)
