"""Station secrets at rest: hashing and checking OCPP 2.x passwords and 1.6 keys.

Every hash made here uses scrypt with ``n=2**10`` to keep the tests fast; the
parameters travel inside the hash string, so verification uses them too.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from csms_kit.security import hash_authorization_key, hash_password, passwords, verify_password
from csms_kit.security.passwords import key_candidates

COST = 2**10
#: 16 ASCII characters: the shortest 2.x password.
SHORTEST = "0123456789abcdeF"
#: 40 characters, many of them multi-byte in UTF-8 (the limit counts characters).
LONGEST_UTF8 = "Grüße aus Köln — Ladepunkt № 7 ⚡🔌 ÆØÅ!!!"
#: 40 characters, 140 bytes in UTF-8: longer than an HMAC-SHA256 block (64 bytes).
LONG_BYTES = "🔌⚡" * 20
#: 20 bytes including NUL, ``:`` and non-ASCII bytes: the longest 1.6 key.
KEY_20 = bytes.fromhex("00ff3a7f80c3a9e282ac0d0a20deadbeef010203")
#: 16 bytes: the shortest 1.6 key.
KEY_16 = bytes(range(0x40, 0x50))


def test_constants_match_the_ocpp_limits() -> None:
    """The fixtures above sit exactly on the OCPP limits they are meant to probe."""
    assert len(SHORTEST) == 16
    assert len(LONGEST_UTF8) == 40
    assert len(LONGEST_UTF8.encode()) > 40  # so a byte count would wrongly refuse it
    assert len(KEY_20) == 20
    assert len(KEY_16) == 16


# -- OCPP 2.0.1 / 2.1 BasicAuthPassword ----------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        SHORTEST,
        LONGEST_UTF8,
        "x" * 40,
        "pässwörd-mit-ümläuten",
        "日本語のパスワードは十六文字以上です",
    ],
)
def test_password_round_trip(password: str) -> None:
    """A 16-40 character UTF-8 password verifies against its own hash, sent as UTF-8."""
    stored = hash_password(password, n=COST)
    assert verify_password(password.encode("utf-8"), stored)


@pytest.mark.parametrize("length", [0, 1, 15, 41, 100])
def test_password_of_wrong_length_is_refused_at_hashing(length: int) -> None:
    """``hash_password`` refuses passwords outside 16-40 characters."""
    with pytest.raises(ValueError, match="16 to 40"):
        hash_password("p" * length, n=COST)


def test_password_length_counts_characters_not_bytes() -> None:
    """Forty 4-byte characters are a valid password; forty-one are not."""
    assert verify_password(("🔌" * 40).encode(), hash_password("🔌" * 40, n=COST))
    with pytest.raises(ValueError):
        hash_password("🔌" * 41, n=COST)


@pytest.mark.parametrize(
    "attempt",
    [
        SHORTEST.upper(),
        SHORTEST[:-1],
        SHORTEST + "x",
        " " + SHORTEST,
        "",
    ],
)
def test_wrong_password_is_refused(attempt: str) -> None:
    """Any other password, even a near miss, does not verify."""
    stored = hash_password(SHORTEST, n=COST)
    assert not verify_password(attempt.encode(), stored)


def test_password_is_compared_as_sent_not_as_hex() -> None:
    """A 2.x password is sent as is: its hexadecimal spelling is another string, refused.

    (Decoding hex digits is a 1.6 AuthorizationKey rule; OCPP 2.x has no such form.)
    """
    stored = hash_password(SHORTEST, n=COST)
    assert not verify_password(SHORTEST.encode().hex().encode(), stored)


def test_non_ascii_password_needs_the_same_encoding() -> None:
    """A UTF-8 password does not verify when sent in another encoding (Latin-1)."""
    password = "pässwörd-mit-ümläuten"
    stored = hash_password(password, n=COST)
    assert verify_password(password.encode("utf-8"), stored)
    assert not verify_password(password.encode("latin-1"), stored)


def test_salts_differ() -> None:
    """Two hashes of one password differ (random salt), and both verify."""
    first, second = hash_password(SHORTEST, n=COST), hash_password(SHORTEST, n=COST)
    assert first != second
    assert first.split("$")[4] != second.split("$")[4]
    assert verify_password(SHORTEST.encode(), first)
    assert verify_password(SHORTEST.encode(), second)


def test_hash_format_carries_its_kind_and_parameters() -> None:
    """The hash reads ``scheme$n$r$p$salt$digest``: the kind of secret and its costs."""
    stored = hash_password(SHORTEST, n=COST, r=4, p=2)
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt-sha256", str(COST), "4", "2")
    assert salt and digest
    assert verify_password(SHORTEST.encode(), stored)
    assert hash_authorization_key(KEY_16, n=COST).startswith("scrypt-sha256-key$")


@pytest.mark.parametrize("secret", [SHORTEST, LONGEST_UTF8, "abcdefghijklmnopqrstuvwxyz"])
def test_stored_hash_never_contains_the_password(secret: str) -> None:
    """The stored text holds neither the password nor any common encoding of it."""
    import base64

    stored = hash_password(secret, n=COST)
    raw = secret.encode()
    for form in (secret, raw.hex(), raw.hex().upper(), base64.b64encode(raw).decode()):
        assert form not in stored
    assert secret[:8] not in stored


# -- OCPP 1.6 AuthorizationKey --------------------------------------------------------------


@pytest.mark.parametrize("key", [KEY_16, KEY_20, bytes(range(18))], ids=["16", "20", "18"])
@pytest.mark.parametrize("given_as", ["bytes", "hex", "HEX"])
@pytest.mark.parametrize("sent_as", ["raw", "hex", "HEX"])
def test_authorization_key_round_trip(key: bytes, given_as: str, sent_as: str) -> None:
    """A 16-20 byte key, stored from bytes or hex, verifies sent raw or as hex (any case)."""
    source: bytes | str = {"bytes": key, "hex": key.hex(), "HEX": key.hex().upper()}[given_as]
    stored = hash_authorization_key(source, n=COST)
    sent = {"raw": key, "hex": key.hex().encode(), "HEX": key.hex().upper().encode()}[sent_as]
    assert verify_password(sent, stored)


def test_authorization_key_from_hex_equals_key_from_bytes() -> None:
    """Hex text and bytes name the same key: each hash verifies the other's form."""
    from_bytes = hash_authorization_key(KEY_20, n=COST)
    from_hex = hash_authorization_key(KEY_20.hex(), n=COST)
    for stored in (from_bytes, from_hex):
        assert verify_password(KEY_20, stored)
        assert verify_password(KEY_20.hex().encode(), stored)


@pytest.mark.parametrize("length", [0, 8, 15, 21, 40])
def test_authorization_key_of_wrong_length_is_refused(length: int) -> None:
    """Keys outside 16-20 bytes are refused, as bytes and as hex."""
    key = bytes(range(length))
    with pytest.raises(ValueError, match="16 to 20"):
        hash_authorization_key(key, n=COST)
    with pytest.raises(ValueError, match="16 to 20"):
        hash_authorization_key(key.hex(), n=COST)


@pytest.mark.parametrize("text", ["not hex at all!!", "0g" * 16, "abc"])
def test_authorization_key_text_must_be_hex(text: str) -> None:
    """A str key that is not hexadecimal is refused (not silently encoded)."""
    with pytest.raises(ValueError):
        hash_authorization_key(text, n=COST)


@pytest.mark.parametrize(
    "attempt",
    [
        KEY_20[:-1],  # a byte short
        KEY_20 + b"x",  # a byte long
        KEY_20.hex()[:-2].encode(),  # 38 hex digits of the wrong key
        (KEY_20.hex()[:-1] + "0").encode(),  # last nibble changed
        KEY_20.hex().encode() + b"00",  # 42 digits: beyond the 40 a key may have
        b"0x" + KEY_20.hex().encode(),
        KEY_20.hex().encode()[::-1],
    ],
)
def test_wrong_authorization_key_is_refused(attempt: bytes) -> None:
    """Near misses of a 1.6 key, raw or hex, do not verify."""
    stored = hash_authorization_key(KEY_20, n=COST)
    assert not verify_password(attempt, stored)


@pytest.mark.parametrize(
    ("stored_secret", "sent"),
    [
        (KEY_16, KEY_16 + b"\0"),
        (KEY_20, KEY_20 + b"\0\0\0"),
        (SHORTEST.encode(), SHORTEST.encode() + b"\0"),
        (LONG_BYTES.encode(), hashlib.sha256(LONG_BYTES.encode()).digest()),
    ],
    ids=["16-byte key + NUL", "20-byte key + 3 NUL", "password + NUL", "sha256 of password"],
)
def test_secret_is_not_confused_with_its_hmac_key_equivalents(
    stored_secret: bytes, sent: bytes
) -> None:
    """Only the secret itself verifies: not the secret plus NUL bytes, nor its SHA-256.

    scrypt runs PBKDF2-HMAC-SHA256, whose HMAC key is zero-padded (and hashed when
    longer than 64 bytes): fed to it directly, such near misses collide.
    """
    if len(stored_secret) <= 20:
        stored = hash_authorization_key(stored_secret, n=COST)
    else:
        stored = hash_password(stored_secret.decode(), n=COST)
    assert verify_password(stored_secret, stored)
    assert not verify_password(sent, stored)


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        (KEY_16, [KEY_16]),
        (KEY_16.hex().encode(), [KEY_16.hex().encode(), KEY_16]),
        (KEY_20.hex().upper().encode(), [KEY_20.hex().upper().encode(), KEY_20]),
        (b"a" * 31, [b"a" * 31]),  # odd number of digits
        (b"a" * 30, [b"a" * 30]),  # 15 bytes: too short for a key
        (b"a" * 42, [b"a" * 42]),  # 21 bytes: too long for a key
        (b"\xff" * 32, [b"\xff" * 32]),  # not ASCII
    ],
)
def test_key_candidates(password: bytes, expected: list[bytes]) -> None:
    """Only 32-40 hex digits (even count) are also read as a hexadecimal 1.6 key."""
    assert key_candidates(password) == expected


# -- robustness of verify_password -------------------------------------------------------


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plaintext-password",
        "$".join(["bcrypt", "1024", "8", "1", "c2FsdA==", "ZGlnZXN0"]),
        "$".join(["scrypt", "x", "8", "1", "c2FsdA==", "ZGlnZXN0"]),
        "$".join(["scrypt", "1024", "8", "c2FsdA==", "ZGlnZXN0"]),  # a field missing
        "$".join(["scrypt", "1024", "8", "1", "c2FsdA==", "ZGlnZXN0", "extra"]),
        "$".join(["scrypt", "1024", "8", "1", "not base64!", "ZGlnZXN0"]),
        "$".join(["scrypt", "1024", "8", "1", "c2FsdA==", "ZGln ZXN0"]),
        "$".join(["scrypt", "1000", "8", "1", "c2FsdA==", "ZGlnZXN0"]),  # n not a power of 2
        "$".join(["scrypt", "1024", "0", "1", "c2FsdA==", "ZGlnZXN0"]),
        "$".join(["scrypt", str(2**30), "8", "1", "c2FsdA==", "ZGlnZXN0"]),  # 1 TiB of memory
    ],
)
def test_malformed_stored_value_raises(stored: str) -> None:
    """A stored value that is not one of our hashes raises ValueError (never matches)."""
    with pytest.raises(ValueError):
        verify_password(SHORTEST.encode(), stored)


@pytest.mark.parametrize("part", ["salt", "digest"])
def test_stored_hash_with_an_empty_part_raises(part: str) -> None:
    """A hash whose salt or digest is missing is not a hash: ValueError, not a silent False."""
    fields = hash_password(SHORTEST, n=COST).split("$")
    fields[4 if part == "salt" else 5] = ""
    with pytest.raises(ValueError):
        verify_password(SHORTEST.encode(), "$".join(fields))


def test_stored_hash_with_trailing_newline_raises() -> None:
    """A hash mangled on its way to storage (a trailing newline) is reported, not accepted."""
    stored = hash_password(SHORTEST, n=COST)
    with pytest.raises(ValueError):
        verify_password(SHORTEST.encode(), stored + "\n")


@pytest.mark.parametrize(
    "password", [b"", b"\0" * 16, b"\xff\xfe" * 20, b"x" * 10_000, "é".encode("latin-1") * 16]
)
def test_bad_password_never_raises(password: bytes) -> None:
    """Any received bytes, empty, binary or huge, give False rather than an exception."""
    assert verify_password(password, hash_password(SHORTEST, n=COST)) is False


class CompareSpy:
    """Stands in for :func:`hmac.compare_digest` and records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any]] = []
        self.real = hmac.compare_digest

    def __call__(self, a: Any, b: Any) -> bool:
        self.calls.append((a, b))
        return self.real(a, b)


@pytest.fixture
def compare_spy(monkeypatch: pytest.MonkeyPatch) -> CompareSpy:
    spy = CompareSpy()
    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert passwords.hmac.compare_digest is spy  # the module looks it up at call time
    return spy


@pytest.mark.parametrize("matches", [True, False])
def test_verify_uses_constant_time_comparison(compare_spy: CompareSpy, matches: bool) -> None:
    """The digest is compared with ``hmac.compare_digest``, whether it matches or not."""
    stored = hash_password(SHORTEST, n=COST)
    attempt = SHORTEST if matches else SHORTEST[::-1]
    assert verify_password(attempt.encode(), stored) is matches
    assert len(compare_spy.calls) == 1
    derived, expected = compare_spy.calls[0]
    assert isinstance(derived, bytes) and isinstance(expected, bytes)
    assert len(derived) == len(expected) == 32


def test_every_key_candidate_is_compared(compare_spy: CompareSpy) -> None:
    """A 1.6 key sent as hex is compared in both forms, even when one already matched."""
    sent = KEY_16.hex().encode()  # 32 hex digits: also read as a 16-byte key
    stored = hash_authorization_key(KEY_16, n=COST)
    assert verify_password(sent, stored)
    assert len(compare_spy.calls) == 2  # the raw form and the hex decoding (matches)
