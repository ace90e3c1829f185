"""The exception tree: whose fault, what it says, nothing shadowing a built-in."""

from __future__ import annotations

import builtins
import json
import pickle
from typing import Any

import pytest

from csms_kit import (
    BrokerUnavailable,
    CallError,
    CallFailed,
    CallTimeout,
    ConnectionEnded,
    CsmsDisconnected,
    CsmsKitError,
    DuplicateConnection,
    ErrorCode,
    InvalidPayload,
    InvalidResponse,
    PeerDisconnected,
    RemoteProtocolError,
    RpcError,
    SessionClosed,
    StationDisconnected,
    StationNotConnected,
    UsageError,
    exceptions,
)
from csms_kit.exceptions import TransportClosed, error_from_dict


def test_every_exception_has_one_root_and_shadows_no_builtin() -> None:
    """All exported exceptions derive from CsmsKitError; none reuses a built-in name."""
    for name in exceptions.__all__:
        cls = getattr(exceptions, name)
        if not isinstance(cls, type):
            continue  # error_from_dict
        assert issubclass(cls, CsmsKitError), name
        assert not hasattr(builtins, name), name


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        (InvalidPayload, UsageError),
        (InvalidResponse, RemoteProtocolError),
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
        (CallError, RpcError),
        (SessionClosed, StationDisconnected),
        (RemoteProtocolError, UsageError),
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
    assert "closed on this side" in str(SessionClosed("CP-7"))
    assert "4000" in str(TransportClosed(4000, "x"))
    ocpp_error = RpcError(ErrorCode.SECURITY_ERROR)
    assert str(ocpp_error) == "SecurityError" and ocpp_error.details == {}
    invalid = InvalidResponse("CP-7", "Reset", "m-1", ErrorCode.FORMAT_VIOLATION, "bad")
    assert "CP-7" in str(invalid) and invalid.code is ErrorCode.FORMAT_VIOLATION
    payload = InvalidPayload("Reset", ErrorCode.TYPE_CONSTRAINT_VIOLATION, "type: must be string")
    assert str(payload).startswith("Reset:")


#: One instance (or more) of every exception class, with sample arguments.
SAMPLES = [
    CsmsKitError("root of all"),
    UsageError("misused"),
    InvalidPayload(
        "Reset", ErrorCode.TYPE_CONSTRAINT_VIOLATION, "type: must be string", {"path": "type"}
    ),
    RpcError(ErrorCode.SECURITY_ERROR, "not yet", {"status": "Pending"}),
    RpcError(ErrorCode.NOT_SUPPORTED),
    TransportClosed(4000, "bye"),
    RemoteProtocolError("broke OCPP-J"),
    CallFailed("no usable response"),
    DuplicateConnection("CP-7"),
    exceptions.ConnectFailed("CP-7", "ws://127.0.0.1:9/", "handshake", "HTTP 401", 401),
    exceptions.ConnectFailed("CP-7", "ws://127.0.0.1:9/", "refused", "connection refused"),
    StationNotConnected("CP-7"),
    BrokerUnavailable("redis://127.0.0.1:6379/0", "connection refused"),
    CallError("CP-7", "Reset", "m-1", "NotSupported", "nope", {"a": [1, 2]}),
    CallError("CP-7", "Reset", "m-2", "NoSuchCode", "odd", {}),
    CallTimeout("CP-7", "Reset", "m-1", 2.5),
    CallTimeout("CP-7", "Reset", None, 1.0),
    InvalidResponse("CP-7", "Reset", "m-1", ErrorCode.FORMAT_VIOLATION, "bad", {"x": 1}),
    ConnectionEnded("CP-7", 1006, ""),
    SessionClosed("CP-7", 1000, "done"),
    PeerDisconnected("CP-7", 1001, "away"),
    StationDisconnected("CP-7", 4000, "bye"),
    CsmsDisconnected("CP-7"),
]


def facts(error: BaseException) -> tuple[Any, ...]:
    """Type, text, args and every attribute (with each value's type) of ``error``."""
    attributes = {name: (type(value), value) for name, value in vars(error).items()}
    return type(error), str(error), error.args, attributes


def test_every_exception_class_has_a_sample() -> None:
    """Each class in exceptions.__all__ is among the round-trip samples below."""
    classes = {
        cls for name in exceptions.__all__ if isinstance(cls := getattr(exceptions, name), type)
    }
    assert classes == {type(sample) for sample in SAMPLES}


@pytest.mark.parametrize("error", SAMPLES, ids=lambda e: type(e).__name__)
def test_to_dict_through_json_rebuilds_the_same_error(error: CsmsKitError) -> None:
    """to_dict -> JSON -> error_from_dict gives the same type, text and attributes."""
    data = json.loads(json.dumps(error.to_dict()))
    assert data["error"] == type(error).__name__
    again = error_from_dict(data)
    assert facts(again) == facts(error)
    code = getattr(error, "code", None)
    if isinstance(code, ErrorCode):
        assert getattr(again, "code", None) is code


@pytest.mark.parametrize("error", SAMPLES, ids=lambda e: type(e).__name__)
def test_pickle_rebuilds_the_same_error(error: CsmsKitError) -> None:
    """pickle round-trips every exception with the same type, text and attributes."""
    again = pickle.loads(pickle.dumps(error))
    assert facts(again) == facts(error)


def test_unknown_error_name_gives_call_failed() -> None:
    """An unknown "error" name (a newer peer) gives a CallFailed carrying the message."""
    error = error_from_dict({"error": "FutureError", "message": "something new", "x": 1})
    assert type(error) is CallFailed
    assert str(error) == "something new"
    nameless = error_from_dict({"error": "FutureError"})
    assert type(nameless) is CallFailed and "FutureError" in str(nameless)


def test_error_code_is_its_ocpp_name() -> None:
    """ErrorCode compares equal to, and prints as, its OCPP name."""
    code: str = ErrorCode.NOT_IMPLEMENTED  # a str: what application code compares it as
    assert code == "NotImplemented"
    assert str(ErrorCode.NOT_IMPLEMENTED) == "NotImplemented"
    assert f"{ErrorCode.NOT_IMPLEMENTED}" == "NotImplemented"
    assert f"[{ErrorCode.NOT_IMPLEMENTED:>16}]" == "[  NotImplemented]"
    assert CallError("CP-7", "Reset", "m-1", "NotSupported", "", {}).code == "NotSupported"
