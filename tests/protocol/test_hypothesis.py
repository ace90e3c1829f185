"""Property tests: whatever a station sends, the endpoint answers by the rules and never raises."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csms_kit.error_codes import ErrorCode
from csms_kit.exceptions import RpcError
from csms_kit.protocol import (
    Dropped,
    Endpoint,
    IncomingCall,
    IncomingError,
    IncomingResult,
    IncomingResultError,
    IncomingSend,
    Reply,
    UnusableAnswer,
)
from csms_kit.protocol.jsontext import has_lone_surrogate
from csms_kit.protocol.schemas import call_actions, known_actions
from csms_kit.versions import OcppVersion

ALL = list(OcppVersion)
EVENTS = (
    IncomingCall,
    IncomingSend,
    IncomingResult,
    IncomingError,
    UnusableAnswer,
    IncomingResultError,
    Reply,
    Dropped,
)
SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def endpoint(version: OcppVersion) -> Endpoint:
    return Endpoint(version, handled=known_actions(version))


def check_reply(event: Reply, raw: str | None = None) -> list[Any]:
    """A Reply's text is a 5-element CALLERROR agreeing with the event."""
    parsed = json.loads(event.text)
    assert isinstance(parsed, list)
    assert len(parsed) == 5
    assert parsed[0] == 4
    assert parsed[1] == event.message_id
    assert isinstance(parsed[2], str)
    assert isinstance(parsed[3], str)
    assert len(parsed[3]) <= 255
    assert parsed[4] == {}
    if raw is not None and len(raw) >= 8:
        assert raw not in parsed[3]
    return parsed


def check_event(event: object) -> None:
    assert isinstance(event, EVENTS), event
    if isinstance(event, Reply):
        check_reply(event)


# -- values ------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)
finite_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
finite_json = st.recursive(
    finite_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
message_ids = (
    st.text(max_size=40)
    | st.text(alphabet="abc-0123456789", min_size=30, max_size=40)
    | st.sampled_from(["", "\ud800", "ok\udfff", "x" * 36, "x" * 37])
    | st.integers(-5, 5)
    | st.none()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.lists(st.text(max_size=3), max_size=2)
)
ACTION_POOL = sorted(
    set().union(*(known_actions(v) for v in OcppVersion))
    | {"", "NoSuchAction", "heartbeat", "Heartbeat\ud800", "A" * 300}
)
actions = st.sampled_from(ACTION_POOL) | st.text(max_size=20)
payloads = (
    st.just({})
    | st.dictionaries(st.text(max_size=20), finite_json, max_size=4)
    | st.fixed_dictionaries(
        {"customData": st.fixed_dictionaries({"vendorId": st.text(max_size=5)})}
    )
)


def readable(message_id: object) -> bool:
    return type(message_id) is str and len(message_id) <= 36 and not has_lone_surrogate(message_id)


# -- (1) arbitrary text ------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
@SETTINGS
@given(text=st.text(max_size=300))
def test_arbitrary_text_never_raises(version: OcppVersion, text: str) -> None:
    """Any text gives an Event; a Reply is a sound CALLERROR."""
    check_event(endpoint(version).receive(text))


@pytest.mark.parametrize("version", ALL)
@SETTINGS
@given(text=st.text(alphabet='[]{}",:0123456789.eE-+ntrufalsNIy\\ud8', max_size=200))
def test_json_like_text_never_raises(version: OcppVersion, text: str) -> None:
    """Text built from JSON's own characters gives an Event, never an exception."""
    check_event(endpoint(version).receive(text))


# -- (2) arbitrary JSON values -----------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
@SETTINGS
@given(value=json_values, ensure_ascii=st.booleans())
def test_arbitrary_json_never_raises(version: OcppVersion, value: Any, ensure_ascii: bool) -> None:
    """Any JSON value (NaN, huge ints, unicode included) gives an Event."""
    text = json.dumps(value, ensure_ascii=ensure_ascii)
    check_event(endpoint(version).receive(text))


@pytest.mark.parametrize("version", ALL)
@SETTINGS
@given(
    type_id=st.integers(-3, 9) | st.sampled_from(["2", 2.0, True, None]),
    rest=st.lists(json_values, max_size=5),
)
def test_frame_shaped_json_never_raises(
    version: OcppVersion, type_id: Any, rest: list[Any]
) -> None:
    """Arrays starting with a message type and random elements give an Event."""
    check_event(endpoint(version).receive(json.dumps([type_id, *rest])))


# -- (3) CALL-shaped frames --------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
@SETTINGS
@given(
    message_id=message_ids,
    action=actions,
    payload=payloads,
    ensure_ascii=st.booleans(),
)
def test_call_shaped_frames_get_exactly_one_answer(
    version: OcppVersion, message_id: Any, action: str, payload: dict[str, Any], ensure_ascii: bool
) -> None:
    """[2, id, action, payload] gives an IncomingCall or a Reply carrying the id (or "-1")."""
    ep = endpoint(version)
    text = json.dumps([2, message_id, action, payload], ensure_ascii=ensure_ascii)
    event = ep.receive(text)
    assert isinstance(event, (IncomingCall, Reply)), event
    if isinstance(event, IncomingCall):
        assert event.message_id == message_id
        assert event.action in call_actions(version)
        answer = json.loads(ep.error_for(event, RpcError(ErrorCode.INTERNAL_ERROR, "x" * 300)))
        assert len(answer) == 5
        assert answer[0] == 4
        assert answer[1] == message_id
        assert len(answer[3]) <= 255
        assert answer[4] == {}
        return
    expected_id = message_id if readable(message_id) else "-1"
    assert event.message_id == expected_id
    check_reply(event, raw=text)


@pytest.mark.parametrize("version", ALL)
@SETTINGS
@given(
    frames=st.lists(
        st.tuples(
            st.text(alphabet="ab", min_size=1, max_size=2), st.sampled_from(["Heartbeat", "X"])
        ),
        max_size=20,
    ),
)
def test_in_progress_ids_are_tracked(version: OcppVersion, frames: list[tuple[str, str]]) -> None:
    """An id in progress is refused until answered; answered ids are free again."""
    ep = Endpoint(version, handled={"Heartbeat"}, max_incoming=100)
    open_calls: dict[str, IncomingCall] = {}
    for message_id, action in frames:
        event = ep.receive(json.dumps([2, message_id, action, {}]))
        if message_id in open_calls:
            assert isinstance(event, Reply)
            assert event.code is ErrorCode.RPC_FRAMEWORK_ERROR
            ep.result_for(open_calls.pop(message_id), {"currentTime": "2024-01-01T00:00:00Z"})
        elif action == "Heartbeat":
            assert isinstance(event, IncomingCall)
            open_calls[message_id] = event
        else:
            assert isinstance(event, Reply)
            assert event.code is ErrorCode.NOT_IMPLEMENTED


# -- answers to our CALL -----------------------------------------------------------------


@pytest.mark.parametrize("version", ALL)
@SETTINGS
@given(
    type_id=st.sampled_from([3, 4, 5]),
    use_id=st.booleans(),
    rest=st.lists(finite_json, max_size=4),
)
def test_random_answers_to_an_outstanding_call(
    version: OcppVersion, type_id: int, use_id: bool, rest: list[Any]
) -> None:
    """Random answers never raise; an answer that ends the CALL clears it, others leave it."""
    ep = endpoint(version)
    request: dict[str, Any] = {"type": "Hard" if version is OcppVersion.V16 else "Immediate"}
    call = ep.prepare_call(request, action="Reset")
    ep.call_sent(call)
    message_id = call.message_id if use_id else "someone-else"
    event = ep.receive(json.dumps([type_id, message_id, *rest]))
    check_event(event)
    if isinstance(event, (IncomingResult, IncomingError, UnusableAnswer)):
        assert event.message_id == call.message_id
        assert ep.outstanding is None
        if isinstance(event, UnusableAnswer) and event.reply is not None:
            assert version is OcppVersion.V21
            parsed = json.loads(event.reply)
            assert parsed[:2] == [5, call.message_id]
            assert len(parsed[3]) <= 255
    else:
        assert ep.outstanding is call


@pytest.mark.parametrize("version", ALL)
@SETTINGS
@given(value=st.floats() | st.integers(min_value=-(10**50), max_value=10**50))
def test_numbers_in_payload_never_raise(version: OcppVersion, value: float) -> None:
    """Any number in a CALL payload, finite or not, gives an IncomingCall or a Reply."""
    text = json.dumps(
        [2, "m1", "Heartbeat", {"x": value, "customData": {"vendorId": "v", "n": value}}]
    )
    event = endpoint(version).receive(text)
    assert isinstance(event, (IncomingCall, Reply))
    if isinstance(event, Reply):
        check_reply(event)
        finite = not isinstance(value, float) or math.isfinite(value)
        assert event.message_id == ("m1" if finite else "-1")
