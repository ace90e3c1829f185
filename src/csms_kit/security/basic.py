"""Security profiles 1 and 2: HTTP Basic authentication at the handshake.

::

    async def stored_hash(station_id: str) -> str | None:
        return await db.fetch_password_hash(station_id)   # from hash_password()

    server = serve(MySession, host, port, authenticate=basic_auth(stored_hash))

The username must equal the station identity and the password must match the hash
``lookup`` returns. A station ``lookup`` does not know gets HTTP 404 (OCPP-J: unknown
identities SHOULD get 404); missing, short or wrong credentials get HTTP 401 with a
``WWW-Authenticate`` challenge. Failures are logged with the identity and address,
never the password. After ``max_failures`` failures within ``window`` seconds from
one address for one identity, that identity is refused *from that address* with HTTP
429 for ``block`` seconds, without checking the password (so a stranger elsewhere
cannot lock a station out); after ``max_address_failures`` failures from one address
for any identities, the whole address is (set it high: many stations may share an
address behind a NAT or a cellular carrier).

Checking a password costs a scrypt derivation (on purpose), run in a worker thread
so the event loop never stalls; a verified (identity, password, hash) triple is then
remembered for ``cache_ttl`` seconds, so reconnects are cheap. The cache holds keyed
digests, not passwords.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import inspect
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from csms_kit.hooks import Authenticate, Handshake, Rejection
from csms_kit.security.passwords import MAX_PASSWORD_BYTES, MIN_PASSWORD_LENGTH, verify_password

__all__ = ["FailureThrottle", "PasswordLookup", "basic_auth"]

logger = logging.getLogger("csms_kit.security")

PasswordLookup = Callable[[str], "str | Awaitable[str | None] | None"]


class FailureThrottle:
    """Counts authentication failures per key and blocks keys that fail too often.

    Memory is bounded: at most ``max_keys`` keys are tracked, the oldest forgotten.
    """

    def __init__(
        self,
        max_failures: int = 5,
        window: float = 60.0,
        block: float = 300.0,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.block = block
        self.max_keys = max_keys
        self._clock = clock
        # key -> (failures in the current window, window start, blocked until)
        self._state: collections.OrderedDict[str, tuple[int, float, float]] = (
            collections.OrderedDict()
        )

    def blocked(self, key: str) -> bool:
        """Whether ``key`` is refused right now."""
        state = self._state.get(key)
        return state is not None and state[2] > self._clock()

    def failed(self, key: str, max_failures: int | None = None) -> None:
        """Record a failure of ``key``, blocked at ``max_failures`` (default: the throttle's)."""
        limit = self.max_failures if max_failures is None else max_failures
        now = self._clock()
        failures, start, until = self._state.pop(key, (0, now, 0.0))
        if now - start > self.window:
            failures, start = 0, now
        failures += 1
        if failures >= limit:
            until = now + self.block
            failures, start = 0, now
        self._state[key] = (failures, start, until)
        while len(self._state) > self.max_keys:
            self._state.popitem(last=False)

    def succeeded(self, key: str) -> None:
        """Forget the failures of ``key``."""
        self._state.pop(key, None)


class _VerifiedCache:
    """Remembers verified credentials as keyed digests, for ``ttl`` seconds."""

    def __init__(self, ttl: float, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._key = os.urandom(32)
        self._entries: collections.OrderedDict[bytes, float] = collections.OrderedDict()

    def _digest(self, station_id: str, password: bytes, stored: str) -> bytes:
        message = b"\0".join((station_id.encode(), password, stored.encode()))
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def __contains__(self, credentials: tuple[str, bytes, str]) -> bool:
        expires = self._entries.get(self._digest(*credentials))
        return expires is not None and expires > time.monotonic()

    def add(self, credentials: tuple[str, bytes, str]) -> None:
        self._entries[self._digest(*credentials)] = time.monotonic() + self.ttl
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def basic_auth(
    lookup: PasswordLookup,
    *,
    profile: Literal[1, 2] = 2,
    realm: str = "OCPP",
    max_failures: int = 5,
    max_address_failures: int = 100,
    window: float = 60.0,
    block: float = 300.0,
    cache_ttl: float = 3600.0,
) -> Authenticate:
    """An ``authenticate`` hook for OCPP security profile 1 (``ws://``) or 2 (``wss://``).

    ``lookup(station_id)`` (sync or async) returns the stored hash from
    :func:`~csms_kit.security.passwords.hash_password` or
    :func:`~csms_kit.security.passwords.hash_authorization_key`, or ``None`` for an
    unknown station. With ``profile=2`` a connection without TLS is refused (403).
    """
    if profile not in (1, 2):
        raise ValueError("basic_auth serves security profile 1 or 2 (3 is certificate_auth)")
    throttle = FailureThrottle(max_failures, window, block)
    verified = _VerifiedCache(cache_ttl)
    challenge = (("WWW-Authenticate", f'Basic realm="{realm}", charset="UTF-8"'),)

    def refuse(handshake: Handshake, why: str) -> Rejection:
        address = handshake.host
        logger.warning(
            "security: station %r from %s refused: %s", handshake.station_id, address, why
        )
        throttle.failed(f"pair:{handshake.station_id}@{address}")
        throttle.failed("ip:" + address, max_address_failures)
        return Rejection(401, "authentication required\n", challenge)

    async def authenticate(handshake: Handshake) -> Rejection | None:
        station_id = handshake.station_id
        address = handshake.host
        if profile == 2 and not handshake.tls:
            logger.warning("security: station %r used ws:// on a profile 2 endpoint", station_id)
            return Rejection(403, "TLS required\n")
        if throttle.blocked(f"pair:{station_id}@{address}") or throttle.blocked("ip:" + address):
            logger.warning("security: station %r from %s throttled", station_id, address)
            return Rejection(429, "too many failed attempts\n", (("Retry-After", f"{block:.0f}"),))
        if handshake.username is None or handshake.password is None:
            return refuse(handshake, "no Basic credentials")
        if handshake.username != station_id:
            return refuse(handshake, "username is not the station identity")
        password = handshake.password
        if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_BYTES:
            return refuse(handshake, "password of the wrong length")
        stored = lookup(station_id)
        if inspect.isawaitable(stored):
            stored = await stored
        if stored is None:
            logger.warning("security: unknown station %r from %s", station_id, address)
            throttle.failed("ip:" + address, max_address_failures)
            return Rejection(404, "unknown station\n")
        credentials = (station_id, password, stored)
        if credentials not in verified:
            if not await asyncio.to_thread(verify_password, password, stored):
                return refuse(handshake, "wrong password")
            verified.add(credentials)
        throttle.succeeded(f"pair:{station_id}@{address}")
        return None

    return authenticate
