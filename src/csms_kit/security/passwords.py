"""Salted password hashes for station credentials (OCPP security profiles 1 and 2).

Stations authenticate with HTTP Basic: username = identity, password = the
station's secret. Store only :func:`hash_password`'s output; :func:`verify_password`
checks a received password against it in constant time.

Two secret formats exist:

* OCPP 2.0.1/2.1 ``BasicAuthPassword``: 16 to 40 UTF-8 characters, sent as is;
* OCPP 1.6 ``AuthorizationKey``: 16 to 20 bytes, which stations send either raw or
  as hexadecimal (up to 40 digits). :func:`hash_authorization_key` stores the key
  bytes; :func:`verify_password` accepts both ways of sending them.

The hash is scrypt (memory-hard, in the standard library) over the secret's SHA-256
(so that no near miss, such as the secret plus a NUL byte, collides inside scrypt's
HMAC), with the kind of secret and the cost parameters stored in the hash string,
so they can be raised later without invalidating old hashes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import string

__all__ = [
    "MAX_PASSWORD_BYTES",
    "MIN_PASSWORD_LENGTH",
    "hash_authorization_key",
    "hash_password",
    "key_candidates",
    "verify_password",
]

#: Shortest secret either version allows (characters for 2.x, bytes for 1.6).
MIN_PASSWORD_LENGTH = 16
#: Longest password accepted on the wire: 40 UTF-8 characters of up to 4 bytes.
MAX_PASSWORD_BYTES = 160
_PASSWORD_SCHEME = "scrypt-sha256"  # a 2.x password, compared as sent
_KEY_SCHEME = "scrypt-sha256-key"  # a 1.6 key, which may arrive raw or as hex
_DEFAULT_COST = 2**14
_HEX = frozenset(string.hexdigits)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _derive(secret: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    digest = hashlib.sha256(secret).digest()
    return hashlib.scrypt(digest, salt=salt, n=n, r=r, p=p, dklen=32, maxmem=256 * 1024 * 1024)


def _hash(scheme: str, secret: bytes, n: int, r: int, p: int) -> str:
    salt = os.urandom(16)
    return f"{scheme}${n}${r}${p}${_b64(salt)}${_b64(_derive(secret, salt, n, r, p))}"


def hash_password(password: str, *, n: int = _DEFAULT_COST, r: int = 8, p: int = 1) -> str:
    """The hash to store for an OCPP 2.x ``BasicAuthPassword`` (16 to 40 characters).

    ``n``, ``r`` and ``p`` are scrypt's cost parameters; the defaults cost about
    100 ms and 16 MiB per check on a small server (verifications are cached, see
    :func:`csms_kit.security.basic_auth`).
    """
    if not MIN_PASSWORD_LENGTH <= len(password) <= 40:
        raise ValueError("an OCPP BasicAuthPassword has 16 to 40 characters")
    return _hash(_PASSWORD_SCHEME, password.encode("utf-8"), n, r, p)


def hash_authorization_key(
    key: bytes | str, *, n: int = _DEFAULT_COST, r: int = 8, p: int = 1
) -> str:
    """The hash to store for an OCPP 1.6 ``AuthorizationKey`` (16 to 20 bytes).

    ``key`` is the key's bytes, or the key written in hexadecimal.
    """
    if isinstance(key, str):
        try:
            key = bytes.fromhex(key)
        except ValueError:
            raise ValueError("a str AuthorizationKey must be hexadecimal") from None
    if not MIN_PASSWORD_LENGTH <= len(key) <= 20:
        raise ValueError("an OCPP 1.6 AuthorizationKey has 16 to 20 bytes")
    return _hash(_KEY_SCHEME, key, n, r, p)


def key_candidates(password: bytes) -> list[bytes]:
    """The secrets a received password may stand for: itself, and its hex decoding."""
    candidates = [password]
    text = password.decode("ascii", errors="replace")
    if len(text) % 2 == 0 and 32 <= len(text) <= 40 and _HEX.issuperset(text):
        candidates.append(binascii.unhexlify(text))
    return candidates


def verify_password(password: bytes, stored: str) -> bool:
    """Whether ``password`` (as received) matches ``stored`` (from a ``hash_*`` function).

    Slow on purpose (scrypt); call it off the event loop. Never raises for a bad
    ``password``; raises ``ValueError`` for a ``stored`` value that is not a hash.
    """
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme not in (_PASSWORD_SCHEME, _KEY_SCHEME):
            raise ValueError(scheme)
        cost = int(n), int(r), int(p)
        salt_bytes = base64.b64decode(salt, validate=True)
        expected = base64.b64decode(digest, validate=True)
        if not salt_bytes or len(expected) != 32:
            raise ValueError("truncated")
    except ValueError:
        raise ValueError("not a password hash made by csms_kit.security") from None
    candidates = key_candidates(password) if scheme == _KEY_SCHEME else [password]
    matched = False
    for candidate in candidates:
        # compare every candidate, so timing does not tell which form matched
        matched |= hmac.compare_digest(_derive(candidate, salt_bytes, *cost), expected)
    return matched
