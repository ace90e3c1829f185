"""Lifecycle hook helpers: parse_basic_auth, Rejection and call_hook."""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import pytest

from csms_kit import (
    Rejection,
)
from csms_kit.hooks import Hooks, call_hook, parse_basic_auth


def basic(raw: bytes, scheme: str = "Basic") -> str:
    return f"{scheme} {base64.b64encode(raw).decode('ascii')}"


# -- parse_basic_auth -------------------------------------------------------------------


def test_valid_credentials() -> None:
    """A well-formed Basic header gives the username as text and the password as bytes."""
    assert parse_basic_auth(basic(b"CP-1:0123456789abcdef")) == ("CP-1", b"0123456789abcdef")


@pytest.mark.parametrize("scheme", ["basic", "BASIC", "bAsIc"])
def test_scheme_is_case_insensitive(scheme: str) -> None:
    """The auth scheme name is matched case-insensitively (RFC 7235)."""
    assert parse_basic_auth(basic(b"CP-1:pw", scheme)) == ("CP-1", b"pw")


def test_surrounding_whitespace_is_tolerated() -> None:
    """Leading/trailing whitespace and extra spaces before the credentials are tolerated."""
    token = base64.b64encode(b"CP-1:pw").decode()
    assert parse_basic_auth(f"  Basic   {token}  ") == ("CP-1", b"pw")


def test_binary_password_bytes_are_kept() -> None:
    """An OCPP 1.6 AuthorizationKey may be raw bytes: they come back unchanged."""
    key = bytes([0, 255, 1, 128, 58, 10, 13, 200, 7, 0, 34, 92, 250, 251, 252, 253])
    assert parse_basic_auth(basic(b"CP-1:" + key)) == ("CP-1", key)


def test_password_may_contain_colons() -> None:
    """Only the first ':' separates username from password."""
    assert parse_basic_auth(basic(b"CP-1:a:b::c")) == ("CP-1", b"a:b::c")


def test_empty_password() -> None:
    """A username followed by ':' and nothing else has an empty password."""
    assert parse_basic_auth(basic(b"CP-1:")) == ("CP-1", b"")


def test_utf8_username() -> None:
    """The username is decoded as UTF-8."""
    assert parse_basic_auth(basic("Ladestation-é:pw".encode())) == ("Ladestation-é", b"pw")


@pytest.mark.parametrize("header", [None, "", "   "])
def test_absent_header(header: str | None) -> None:
    """No header (or an empty one) means no credentials."""
    assert parse_basic_auth(header) is None


def test_missing_colon() -> None:
    """Decoded credentials without ':' are malformed."""
    assert parse_basic_auth(basic(b"CP-1-no-password")) is None


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!not-base64!!!",
        "Basic Q1AtMTpwdw",  # padding missing
        "Basic Q1AtMTpwdw===",  # too much padding
        "Basic Q1At MTpwdw==",  # a space inside
        "Basic Q1At\nMTpwdw==",  # validated strictly: no characters outside the alphabet
    ],
)
def test_bad_base64(header: str) -> None:
    """Credentials that are not strict base64 are malformed."""
    assert parse_basic_auth(header) is None


@pytest.mark.parametrize(
    "header",
    [
        "Bearer eyJhbGciOiJIUzI1NiJ9",
        "Digest username=CP-1",
        basic(b"CP-1:pw", "Basicx"),
        "Basic",  # scheme without credentials
        "Basic ",
    ],
)
def test_other_scheme_or_no_credentials(header: str) -> None:
    """Any other scheme, or Basic without credentials, gives no credentials."""
    assert parse_basic_auth(header) is None


def test_non_utf8_username() -> None:
    """A username that is not valid UTF-8 is malformed."""
    assert parse_basic_auth(basic(b"CP-\xff\xfe:pw")) is None


# -- Rejection --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 429, 500, 503, 599])
def test_rejection_accepts_error_statuses(status: int) -> None:
    """Any 4xx or 5xx status makes a Rejection; body and headers default to empty."""
    rejection = Rejection(status)
    assert (rejection.status, rejection.body, rejection.headers) == (status, "", ())


@pytest.mark.parametrize("status", [0, 100, 101, 200, 204, 301, 399, 600, 1000, -401])
def test_rejection_refuses_non_error_statuses(status: int) -> None:
    """A status outside 400-599 cannot refuse a connection: ValueError."""
    with pytest.raises(ValueError, match="HTTP error status"):
        Rejection(status)


def test_rejection_keeps_body_and_headers_and_is_frozen() -> None:
    """A Rejection carries its body and headers and cannot be changed afterwards."""
    rejection = Rejection(401, "who are you?", (("WWW-Authenticate", 'Basic realm="ocpp"'),))
    assert rejection.body == "who are you?"
    assert rejection.headers == (("WWW-Authenticate", 'Basic realm="ocpp"'),)
    with pytest.raises(AttributeError):
        rejection.status = 200  # type: ignore[misc]


# -- call_hook --------------------------------------------------------------------------


async def test_call_hook_sync() -> None:
    """A plain function hook is called with the arguments; its result is returned."""
    seen: list[tuple[Any, ...]] = []

    def hook(*args: Any) -> str:
        seen.append(args)
        return "done"

    assert await call_hook(hook, 1, "two") == "done"
    assert seen == [(1, "two")]


async def test_call_hook_async() -> None:
    """A coroutine function hook is awaited; its result is returned."""
    seen: list[tuple[Any, ...]] = []

    async def hook(*args: Any) -> str:
        await asyncio.sleep(0)
        seen.append(args)
        return "awaited"

    assert await call_hook(hook, "a", None) == "awaited"
    assert seen == [("a", None)]


async def test_call_hook_awaits_any_awaitable() -> None:
    """A sync function returning an awaitable (a future) has it awaited too."""
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    future.set_result(42)
    assert await call_hook(lambda: future) == 42


async def test_call_hook_returns_none_for_none() -> None:
    """A hook returning nothing gives None."""
    assert await call_hook(lambda *args: None, 1) is None


async def test_failing_sync_hook_is_logged_and_returns_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A sync hook that raises is logged with its traceback; call_hook returns None."""

    def broken_hook(value: int) -> int:
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="csms_kit.hooks"):
        assert await call_hook(broken_hook, 1) is None
    [record] = [r for r in caplog.records if r.name == "csms_kit.hooks"]
    assert record.levelno == logging.ERROR
    assert "broken_hook" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


async def test_failing_async_hook_is_logged_and_returns_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An async hook that raises is logged with its traceback; call_hook returns None."""

    async def broken_async_hook() -> None:
        await asyncio.sleep(0)
        raise KeyError("missing")

    with caplog.at_level(logging.ERROR, logger="csms_kit.hooks"):
        assert await call_hook(broken_async_hook) is None
    [record] = [r for r in caplog.records if r.name == "csms_kit.hooks"]
    assert "broken_async_hook" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], KeyError)


async def test_call_hook_does_not_swallow_cancellation() -> None:
    """Cancellation is not a hook failure: CancelledError propagates."""

    async def cancelled_hook() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await call_hook(cancelled_hook)


async def test_report_error_calls_on_error_and_survives_its_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Hooks.report_error passes (session, error) to on_error; a failing on_error is logged."""
    seen: list[tuple[Any, BaseException]] = []
    error = ValueError("x")
    await Hooks(on_error=lambda session, exc: seen.append((session, exc))).report_error(
        None, error
    )
    assert seen == [(None, error)]

    def on_error(session: Any, exc: BaseException) -> None:
        raise RuntimeError("on_error itself failed")

    with caplog.at_level(logging.ERROR, logger="csms_kit.hooks"):
        await Hooks(on_error=on_error).report_error(None, error)
    assert any("on_error" in r.getMessage() for r in caplog.records)
    await Hooks().report_error(None, error)  # no hook: nothing happens
