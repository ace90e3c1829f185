"""The station identity in the request path: identity_from_path and normalize_prefix."""

from __future__ import annotations

import pytest

from csms_kit.identity import (
    MAX_IDENTITY_LENGTH,
    InvalidIdentity,
    identity_from_path,
    normalize_prefix,
)


def refusal(path: str, prefix: str = "/") -> InvalidIdentity:
    with pytest.raises(InvalidIdentity) as caught:
        identity_from_path(path, prefix)
    return caught.value


# -- normalize_prefix -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "normal"),
    [
        ("", "/"),
        ("/", "/"),
        ("//", "/"),
        ("ocpp", "/ocpp/"),
        ("/ocpp", "/ocpp/"),
        ("ocpp/", "/ocpp/"),
        ("/ocpp/", "/ocpp/"),
        ("/ocpp/v16", "/ocpp/v16/"),
        ("ocpp/v16/", "/ocpp/v16/"),
    ],
)
def test_normalize_prefix(prefix: str, normal: str) -> None:
    """Every spelling of a prefix becomes one leading and one trailing slash around it."""
    assert normalize_prefix(prefix) == normal


# -- prefix handling --------------------------------------------------------------------


def test_default_prefix_is_root() -> None:
    """Without a prefix the identity is the only segment under /."""
    assert identity_from_path("/CP1") == "CP1"


@pytest.mark.parametrize("prefix", ["ocpp", "/ocpp", "/ocpp/", "ocpp/"])
def test_identity_under_prefix(prefix: str) -> None:
    """The identity is the segment after the prefix, however the prefix is spelled."""
    assert identity_from_path("/ocpp/CP1", prefix) == "CP1"


def test_identity_under_multi_segment_prefix() -> None:
    """A prefix of several segments is stripped as a whole."""
    assert identity_from_path("/csms/ocpp/CP-7", "/csms/ocpp") == "CP-7"


@pytest.mark.parametrize(
    ("path", "prefix"),
    [
        ("/other/CP1", "/ocpp"),
        ("/ocpp", "/ocpp"),  # the prefix itself, without the slash before an identity
        ("/ocppX/CP1", "/ocpp"),
        ("/OCPP/CP1", "/ocpp"),  # paths are case-sensitive
        ("ocpp/CP1", "/ocpp"),
        ("", "/"),
        ("CP1", "/"),
    ],
)
def test_path_outside_prefix_is_wrong_path(path: str, prefix: str) -> None:
    """A path not under the prefix is refused with wrong_path set (HTTP 404)."""
    error = refusal(path, prefix)
    assert error.wrong_path is True
    assert "not under" in error.reason


@pytest.mark.parametrize(
    ("path", "prefix"),
    [
        ("/ocpp/CP1/extra", "/ocpp"),
        ("/ocpp/CP1/", "/ocpp"),
        ("/ocpp//CP1", "/ocpp"),
        ("/a/b", "/"),
        ("//CP1", "/"),
        ("/CP1/", "/"),
    ],
)
def test_more_than_one_segment_is_wrong_path(path: str, prefix: str) -> None:
    """The identity is exactly one segment: more segments are a wrong path (HTTP 404)."""
    error = refusal(path, prefix)
    assert error.wrong_path is True


# -- the identity segment ---------------------------------------------------------------


@pytest.mark.parametrize(("path", "prefix"), [("/", "/"), ("/ocpp/", "/ocpp")])
def test_empty_identity_is_malformed(path: str, prefix: str) -> None:
    """An empty identity under the right prefix is malformed (HTTP 400), not a wrong path."""
    error = refusal(path, prefix)
    assert error.wrong_path is False
    assert "empty" in error.reason


@pytest.mark.parametrize(
    ("path", "identity"),
    [
        ("/CP%201", "CP 1"),
        ("/CP%2D1", "CP-1"),
        ("/%43%50%31", "CP1"),
        ("/caf%C3%A9", "café"),  # UTF-8, two bytes
        ("/caf%c3%a9", "café"),  # lower-case hex digits too
        ("/%E2%82%AC-1", "€-1"),  # three bytes
        ("/%F0%9F%94%8C", "\U0001f50c"),  # four bytes: an electric plug
        ("/café", "café"),  # raw non-ASCII is taken as it is
        ("/CP+1", "CP+1"),  # + is a plus in a path, never a space
        ("/CP%2B1", "CP+1"),
        ("/CP%251", "CP%1"),  # decoded once only
    ],
)
def test_percent_decoding(path: str, identity: str) -> None:
    """The segment is percent-decoded as UTF-8, once; + stays a plus."""
    assert identity_from_path(path) == identity


def test_identity_of_48_characters_is_accepted() -> None:
    """48 characters is the maximum length, and is allowed."""
    assert MAX_IDENTITY_LENGTH == 48
    assert identity_from_path("/" + "A" * 48) == "A" * 48


def test_identity_of_49_characters_is_refused() -> None:
    """49 characters is one too many (HTTP 400)."""
    error = refusal("/" + "A" * 49)
    assert error.wrong_path is False
    assert "48" in error.reason


def test_length_counts_decoded_characters() -> None:
    """The length is counted in decoded characters, not in bytes or escapes."""
    encoded = "%C3%A9" * 48  # 288 characters of path, 96 bytes, 48 characters
    assert identity_from_path("/" + encoded) == "é" * 48
    assert refusal("/" + encoded + "%C3%A9").wrong_path is False


@pytest.mark.parametrize("path", ["/CP:1", "/CP%3A1", "/CP%3a1", "/:", "/%3A"])
def test_colon_is_refused(path: str) -> None:
    """A ':' (raw or percent-encoded) is refused: the identity is the Basic-auth username."""
    error = refusal(path)
    assert error.wrong_path is False
    assert "':'" in error.reason


@pytest.mark.parametrize("path", ["/CP%2F1", "/CP%2f1", "/%2F"])
def test_encoded_slash_is_refused(path: str) -> None:
    """A '/' smuggled in percent-encoded is refused as malformed (HTTP 400)."""
    error = refusal(path)
    assert error.wrong_path is False
    assert "'/'" in error.reason


@pytest.mark.parametrize(
    "path",
    [
        "/CP%001",  # NUL
        "/CP%0A1",  # line feed
        "/CP%0D1",  # carriage return
        "/CP%091",  # tab
        "/CP%1B1",  # escape
        "/CP%7F1",  # DEL
        "/CP%C2%851",  # U+0085, a C1 control, encoded as UTF-8
        "/CP\x011",  # a raw control character
    ],
)
def test_control_characters_are_refused(path: str) -> None:
    """Control characters, however encoded, are refused (HTTP 400)."""
    error = refusal(path)
    assert error.wrong_path is False
    assert "control" in error.reason


@pytest.mark.parametrize(
    "path",
    [
        "/CP%FF",  # never valid in UTF-8
        "/CP%C3",  # truncated sequence
        "/CP%C3%28",  # bad continuation byte
        "/CP%E2%82",  # truncated three-byte sequence
        "/%ED%A0%80",  # an encoded UTF-16 surrogate
        "/%C0%AF",  # over-long encoding of '/'
    ],
)
def test_invalid_percent_encoded_utf8_is_refused(path: str) -> None:
    """Percent-escapes that are not valid UTF-8 are refused (HTTP 400)."""
    error = refusal(path)
    assert error.wrong_path is False
    assert "UTF-8" in error.reason


@pytest.mark.parametrize(
    ("path", "prefix", "identity"),
    [
        ("/CP1?token=abc", "/", "CP1"),
        ("/ocpp/CP1?a=1&b=/x", "/ocpp", "CP1"),  # a '/' in the query is no second segment
        ("/ocpp/CP1?", "/ocpp", "CP1"),
        ("/CP%201?q=%3A", "/", "CP 1"),
    ],
)
def test_query_string_is_ignored(path: str, prefix: str, identity: str) -> None:
    """Whatever follows '?' plays no part in the identity."""
    assert identity_from_path(path, prefix) == identity


def test_query_string_does_not_hide_wrong_path() -> None:
    """A path outside the prefix is still a wrong path with a query string."""
    assert refusal("/other/CP1?x=1", "/ocpp").wrong_path is True


def test_empty_identity_with_query_string() -> None:
    """A query string after an empty identity leaves it empty (HTTP 400)."""
    error = refusal("/ocpp/?id=CP1", "/ocpp")
    assert error.wrong_path is False
    assert "empty" in error.reason


def test_invalid_identity_is_a_value_error_with_reason() -> None:
    """InvalidIdentity is a ValueError carrying its reason and wrong_path flag."""
    error = InvalidIdentity("bad", wrong_path=True)
    assert isinstance(error, ValueError)
    assert (str(error), error.reason, error.wrong_path) == ("bad", "bad", True)
    assert InvalidIdentity("bad").wrong_path is False


@pytest.mark.parametrize("path", ["/CP%G1", "/CP%", "/CP%2", "/%zz"])
def test_malformed_percent_escapes_are_refused(path: str) -> None:
    """A '%' not followed by two hex digits is a malformed identity (400), not a literal."""
    with pytest.raises(InvalidIdentity) as caught:
        identity_from_path(path)
    assert not caught.value.wrong_path
