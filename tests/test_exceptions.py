"""The exception tree: whose fault, what it says, nothing shadowing a built-in."""

from __future__ import annotations

import builtins

import pytest

from csms_kit import (
    CallError,
    CallFailed,
    CallTimeout,
    ConnectionEnded,
    CsmsKitError,
    ErrorCode,
    InvalidPayload,
    InvalidResponse,
    OcppError,
    SessionClosed,
    StationDisconnected,
    StationProtocolError,
    TransportClosed,
    UsageError,
    exceptions,
)


def test_every_exception_has_one_root_and_shadows_no_builtin() -> None:
    """All exported exceptions derive from CsmsKitError; none reuses a built-in name."""
    for name in exceptions.__all__:
        cls = getattr(exceptions, name)
        assert issubclass(cls, CsmsKitError), name
        assert not hasattr(builtins, name), name


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        (InvalidPayload, UsageError),
        (InvalidResponse, StationProtocolError),
        (InvalidResponse, CallFailed),
        (CallError, CallFailed),
        (CallTimeout, CallFailed),
        (CallTimeout, TimeoutError),
        (SessionClosed, ConnectionEnded),
        (StationDisconnected, ConnectionEnded),
        (ConnectionEnded, CallFailed),
    ],
)
def test_tree(child: type, parent: type) -> None:
    """The tree drawn in the module docstring holds."""
    assert issubclass(child, parent)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (CallError, OcppError),
        (SessionClosed, StationDisconnected),
        (StationProtocolError, UsageError),
        (TransportClosed, CallFailed),
    ],
)
def test_distinct_faults_stay_apart(one: type, other: type) -> None:
    """We-closed vs went-away, station fault vs misuse, and relayed errors stay distinct."""
    assert not issubclass(one, other)
    assert not issubclass(other, one)


def test_messages_name_the_facts() -> None:
    """Messages name station, action, messageId, code and reason."""
    error = CallError("CP-7", "Reset", "m-1", "NotSupported", "nope", {"a": 1})
    assert error.code is ErrorCode.NOT_SUPPORTED
    assert all(part in str(error) for part in ("CP-7", "Reset", "m-1", "NotSupported", "nope"))
    timeout = CallTimeout("CP-7", "Reset", "m-1", 2.5)
    assert all(part in str(timeout) for part in ("CP-7", "Reset", "m-1", "2.5"))
    assert "queued" in str(CallTimeout("CP-7", "Reset", None, 1))
    gone = StationDisconnected("CP-7", 1001, "bye")
    assert "CP-7" in str(gone) and "1001" in str(gone) and "bye" in str(gone)
    assert "closed by the CSMS" in str(SessionClosed("CP-7"))
    assert "4000" in str(TransportClosed(4000, "x"))
    ocpp_error = OcppError(ErrorCode.SECURITY_ERROR)
    assert str(ocpp_error) == "SecurityError" and ocpp_error.details == {}
    invalid = InvalidResponse("CP-7", "Reset", "m-1", ErrorCode.FORMAT_VIOLATION, "bad")
    assert "CP-7" in str(invalid) and invalid.code is ErrorCode.FORMAT_VIOLATION
    payload = InvalidPayload("Reset", ErrorCode.TYPE_CONSTRAINT_VIOLATION, "type: must be string")
    assert str(payload).startswith("Reset:")
