"""Bad input and faults, played on the wire against a live server.

Each case asserts (a) the exact frame the CSMS answers (type, messageId, the errorCode
spelled for the version, the description) or the exact close code on the wire, then
(b) that the server still accepts a new station and (c) that the canary connected
alongside is still answered (:meth:`Guard.check`). (d), no leaked task, is enforced by
``tests/conftest.py``. The list starts from DESIGN.md's "Bad input and faults to cover".
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import socket
import time
import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.messages import MAX_FRAGMENTS
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from csms_kit import CallFailed, CsmsServer, StationDisconnected, on, serve
from csms_kit.limits import Limits, RateLimit
from tests.robustness.conftest import (
    HEARTBEAT_ANSWER,
    HOST,
    INTERNAL_ERROR_TEXT,
    NOW,
    SLOW_SECONDS,
    TIMEOUT,
    VERSIONS,
    Guard,
    Peer,
    RobustCsms,
    UnlimitedCsms,
    authorize_answer,
    eventually,
    fresh_id,
    guarding,
    heartbeat_of,
    peer,
    session_of,
    start_server,
    status_request,
    url_of,
)

# errorCode spellings, written out here rather than taken from csms_kit
FORMAT = {"1.6": "FormationViolation", "2.0.1": "FormatViolation"}
RPC = {"1.6": "FormationViolation", "2.0.1": "RpcFrameworkError"}
OCCURRENCE = {"1.6": "OccurenceConstraintViolation", "2.0.1": "OccurrenceConstraintViolation"}
#: The required field of Authorize, and its path to the token string.
ID_TOKEN = {"1.6": "idTag", "2.0.1": "idToken"}
ID_TOKEN_PATH = {"1.6": "idTag", "2.0.1": "idToken/idToken"}

Answer = Callable[[str], "list[Any] | None"]


def error(message_id: str, code: str | Mapping[str, str], description: str) -> Answer:
    """The CALLERROR expected on each version (``code`` may be spelled per version)."""

    def answer(version: str) -> list[Any]:
        spelled = code if isinstance(code, str) else code[version]
        return [4, message_id, spelled, description, {}]

    return answer


def ignored(version: str) -> None:
    """Nothing comes back."""
    return


def unknown_type(message_id: str) -> Answer:
    """OCPP 1.6 ignores an unknown MessageTypeId; 2.0.1 answers MessageTypeNotSupported."""

    def answer(version: str) -> list[Any] | None:
        if version == "1.6":
            return None
        description = f"MessageTypeId is not defined in OCPP {version}"
        return [4, message_id, "MessageTypeNotSupported", description, {}]

    return answer


@dataclass(frozen=True)
class Bad:
    """One bad frame: the text sent (or one per version) and the answer on each version."""

    name: str
    text: str | Mapping[str, str]
    answer: Answer

    def text_for(self, version: str) -> str:
        return self.text if isinstance(self.text, str) else self.text[version]


def per_version(v16: Any, v201: Any) -> dict[str, str]:
    """A frame per version, given as JSON values."""
    return {"1.6": json.dumps(v16), "2.0.1": json.dumps(v201)}


ID37 = "x" * 37
HEARTBEAT = '[2,"1","Heartbeat",{}]'
NOT_JSON = "not valid JSON: Expecting value"
NOT_ARRAY = "frame is not a non-empty JSON array"
BAD_ID = "messageId is not a string of at most 36 characters"
NOT_INT = "MessageTypeId is not an integer"
EXTRA = "has a property the schema does not define"
SURROGATE = "a string holds a lone UTF-16 surrogate"

BAD_FRAMES = [
    # -- not JSON, or not an array ------------------------------------------------------
    Bad("invalid-json", "not json", error("-1", RPC, NOT_JSON)),
    Bad("empty-text", "", error("-1", RPC, NOT_JSON)),
    Bad("whitespace-only", " \t\r\n ", error("-1", RPC, NOT_JSON)),
    Bad(
        "truncated-json",
        HEARTBEAT[:-1],
        error("-1", RPC, "not valid JSON: Expecting ',' delimiter"),
    ),
    Bad("trailing-garbage", HEARTBEAT + " x", error("-1", RPC, "not valid JSON: Extra data")),
    Bad("byte-order-mark", "\ufeff" + HEARTBEAT, error("-1", RPC, NOT_JSON)),
    Bad("json-object", '{"messageTypeId":2}', error("-1", RPC, NOT_ARRAY)),
    Bad("json-number", "42", error("-1", RPC, NOT_ARRAY)),
    Bad("json-string", '"Heartbeat"', error("-1", RPC, NOT_ARRAY)),
    Bad("json-null", "null", error("-1", RPC, NOT_ARRAY)),
    Bad("empty-array", "[]", error("-1", RPC, NOT_ARRAY)),
    # -- element counts -------------------------------------------------------------------
    Bad("only-a-type", "[2]", error("-1", RPC, BAD_ID)),
    Bad("call-of-3", '[2,"1","Heartbeat"]', error("1", RPC, "CALL must have 4 elements")),
    Bad("call-of-5", '[2,"1","Heartbeat",{},{}]', error("1", RPC, "CALL must have 4 elements")),
    # -- MessageTypeId ----------------------------------------------------------------------
    Bad("type-as-string", '["2","1","Heartbeat",{}]', error("1", RPC, NOT_INT)),
    Bad("type-as-float", '[2.0,"1","Heartbeat",{}]', error("1", RPC, NOT_INT)),
    Bad("type-as-bool", '[true,"1","Heartbeat",{}]', error("1", RPC, NOT_INT)),
    Bad("type-as-null", '[null,"1","Heartbeat",{}]', error("1", RPC, NOT_INT)),
    Bad("type-as-string-bad-id", '["2",5,"Heartbeat",{}]', error("-1", RPC, NOT_INT)),
    Bad("type-unknown-7", '[7,"1","Heartbeat",{}]', unknown_type("1")),
    Bad("type-unknown-0", '[0,"1","Heartbeat",{}]', unknown_type("1")),
    Bad("type-unknown-negative", '[-2,"1","Heartbeat",{}]', unknown_type("1")),
    Bad("type-unknown-huge", '[99999999999999999999,"1","Heartbeat",{}]', unknown_type("1")),
    Bad("type-unknown-bad-id", "[9,5]", unknown_type("-1")),
    Bad("type-5-callresulterror", '[5,"r","GenericError","bad",{}]', unknown_type("r")),
    Bad("type-6-send", '[6,"s","NotifyPeriodicEventStream",{}]', unknown_type("s")),
    # -- messageId ----------------------------------------------------------------------
    Bad("id-int", '[2,5,"Heartbeat",{}]', error("-1", RPC, BAD_ID)),
    Bad("id-null", '[2,null,"Heartbeat",{}]', error("-1", RPC, BAD_ID)),
    Bad("id-object", '[2,{"id":"1"},"Heartbeat",{}]', error("-1", RPC, BAD_ID)),
    Bad("id-list", '[2,["1"],"Heartbeat",{}]', error("-1", RPC, BAD_ID)),
    Bad("id-37-chars", f'[2,"{ID37}","Heartbeat",{{}}]', error("-1", RPC, BAD_ID)),
    Bad("id-lone-surrogate", '[2,"\\ud800","Heartbeat",{}]', error("-1", RPC, BAD_ID)),
    Bad("id-lone-low-surrogate", '[2,"a\\udc00","Heartbeat",{}]', error("-1", RPC, BAD_ID)),
    # -- action and payload -----------------------------------------------------------------
    Bad("action-int", '[2,"1",42,{}]', error("1", RPC, "action is not a string")),
    Bad("action-null", '[2,"1",null,{}]', error("1", RPC, "action is not a string")),
    Bad(
        "payload-array",
        '[2,"1","Heartbeat",[]]',
        error("1", FORMAT, "payload is not a JSON object"),
    ),
    Bad(
        "payload-null",
        '[2,"1","Heartbeat",null]',
        error("1", FORMAT, "payload is not a JSON object"),
    ),
    Bad(
        "payload-string",
        '[2,"1","Heartbeat","{}"]',
        error("1", FORMAT, "payload is not a JSON object"),
    ),
    Bad(
        "unknown-action",
        '[2,"1","FooBar",{}]',
        lambda v: [4, "1", "NotImplemented", f"action is not a CALL action in OCPP {v}", {}],
    ),
    Bad(
        "action-of-the-other-version",
        per_version([2, "1", "TransactionEvent", {}], [2, "1", "StartTransaction", {}]),
        lambda v: [4, "1", "NotImplemented", f"action is not a CALL action in OCPP {v}", {}],
    ),
    Bad(
        "action-wrong-case",
        '[2,"1","heartbeat",{}]',
        lambda v: [4, "1", "NotImplemented", f"action is not a CALL action in OCPP {v}", {}],
    ),
    Bad(
        "known-action-without-handler",
        per_version([2, "1", "StopTransaction", {}], [2, "1", "TransactionEvent", {}]),
        error("1", "NotSupported", "action is not supported here"),
    ),
    # -- the schema ---------------------------------------------------------------------
    Bad(
        "missing-required-field",
        '[2,"1","Authorize",{}]',
        lambda v: [
            4,
            "1",
            OCCURRENCE[v],
            f"required property {ID_TOKEN[v]} is missing",
            {},
        ],
    ),
    Bad(
        "wrong-type",
        per_version(
            [2, "1", "Authorize", {"idTag": 5}],
            [2, "1", "Authorize", {"idToken": {"idToken": 5, "type": "ISO14443"}}],
        ),
        lambda v: [
            4,
            "1",
            "TypeConstraintViolation",
            f"{ID_TOKEN_PATH[v]}: must be of type string",
            {},
        ],
    ),
    Bad("extra-property", '[2,"1","Heartbeat",{"extra":1}]', error("1", FORMAT, EXTRA)),
    Bad(
        "enum-outside-the-list",
        per_version(
            [2, "1", "StatusNotification", {**status_request("1.6"), "status": "Exploded"}],
            [
                2,
                "1",
                "StatusNotification",
                {**status_request("2.0.1"), "connectorStatus": "Exploded"},
            ],
        ),
        lambda v: [
            4,
            "1",
            "PropertyConstraintViolation",
            f"{'status' if v == '1.6' else 'connectorStatus'}: is not one of the allowed values",
            {},
        ],
    ),
    Bad(
        "over-long-string",
        per_version(
            [2, "1", "Authorize", {"idTag": "T" * 21}],
            [2, "1", "Authorize", {"idToken": {"idToken": "T" * 37, "type": "ISO14443"}}],
        ),
        lambda v: [
            4,
            "1",
            "PropertyConstraintViolation",
            "idTag: violates maxLength 20"
            if v == "1.6"
            else "idToken/idToken: violates maxLength 36",
            {},
        ],
    ),
    # -- hostile JSON -------------------------------------------------------------------
    Bad("nan", '[2,"1","Heartbeat",{"a":NaN}]', error("-1", RPC, "NaN is not a JSON number")),
    Bad(
        "infinity",
        '[2,"1","Heartbeat",{"a":Infinity}]',
        error("-1", RPC, "Infinity is not a JSON number"),
    ),
    Bad(
        "minus-infinity",
        '[2,"1","Heartbeat",{"a":-Infinity}]',
        error("-1", RPC, "-Infinity is not a JSON number"),
    ),
    Bad("1e400", '[2,"1","Heartbeat",{"a":1e400}]', error("-1", RPC, "number out of range")),
    Bad("nested-arrays-100000", "[" * 100_000, error("-1", RPC, "JSON nested too deeply")),
    Bad("nested-objects-40000", '{"a":' * 40_000, error("-1", RPC, "JSON nested too deeply")),
    Bad(
        "integer-of-5000-digits",
        '[2,"1","Heartbeat",{"a":' + "7" * 5000 + "}]",
        error("-1", RPC, "not valid JSON: integer too long"),
    ),
    Bad(
        "lone-surrogate-in-payload",
        '[2,"1","Authorize",{"idTag":"\\ud800"}]',
        error("1", FORMAT, SURROGATE),
    ),
    Bad(
        "lone-surrogate-in-action", '[2,"1","Heart\\udfffbeat",{}]', error("1", FORMAT, SURROGATE)
    ),
    # -- answers nobody asked for: never answered (answering answers could loop) -----------
    Bad("unsolicited-callresult", '[3,"nope",{}]', ignored),
    Bad("unsolicited-callerror", '[4,"nope","GenericError","",{}]', ignored),
    Bad("callresult-of-2", '[3,"nope"]', ignored),
    Bad("callresult-bad-id", "[3,5,{}]", ignored),
    Bad("callresult-payload-array", '[3,"nope",[]]', ignored),
    Bad("callerror-of-3", '[4,"nope","GenericError"]', ignored),
    Bad("callerror-code-not-string", '[4,"nope",5,"",{}]', ignored),
]


@pytest.mark.parametrize(
    ("version", "bad"),
    [pytest.param(v, bad, id=f"{bad.name}-{v}") for bad in BAD_FRAMES for v in VERSIONS],
)
async def test_bad_frame_gets_its_exact_answer(
    csms: CsmsServer, guard: Guard, version: str, bad: Bad
) -> None:
    """A bad frame gets exactly its CALLERROR (or nothing); station, server and canary go on."""
    async with peer(csms, version=version) as station:
        await station.send(bad.text_for(version))
        expected = bad.answer(version)
        if expected is not None:
            assert await station.recv() == expected
        # The next frame is the next CALL's answer: nothing else came back.
        await station.heartbeat("after")
        session = session_of(csms, station.station_id)
        assert not session.ended
        assert session.stats.bad_frames + session.stats.unexpected_answers >= 1
    await guard.check(version)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "frame",
    [
        pytest.param('[2,"' + "i" * 36 + '","Heartbeat",{}]', id="id-of-36-chars"),
        pytest.param('[2,"\\ud83d\\ude00","Heartbeat",{}]', id="surrogate-pair-id"),
        pytest.param('  [ 2 , "x" , "Heartbeat" , { } ]  ', id="whitespace"),
    ],
)
async def test_edge_frames_that_are_valid(
    csms: CsmsServer, guard: Guard, version: str, frame: str
) -> None:
    """Controls: a 36-char id, a surrogate pair and spacing are valid and answered."""
    async with peer(csms, version=version) as station:
        await station.send(frame)
        message_id = json.loads(frame)[1]
        assert await station.recv() == [3, message_id, {"currentTime": NOW}]
    await guard.check(version)


async def test_surrogate_pair_in_payload_is_fine(csms: CsmsServer, guard: Guard) -> None:
    """A valid surrogate pair in a value is accepted (only lone surrogates are refused)."""
    async with peer(csms, version="1.6") as station:
        await station.send('[2,"1","Authorize",{"idTag":"\\ud83d\\ude00"}]')
        assert await station.recv() == [3, "1", authorize_answer("1.6")]
    await guard.check()


# -- frames the transport refuses ---------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_binary_frame_closes_1003(csms: CsmsServer, guard: Guard, version: str) -> None:
    """A binary frame closes the connection with 1003, even if it holds a valid CALL."""
    async with peer(csms, version=version) as station:
        session = session_of(csms, station.station_id)
        await station.send(HEARTBEAT.encode())
        assert await station.closed_with() == (1003, "OCPP-J uses text frames only")
        await eventually(lambda: session.ended)
        assert session.close_code == 1003
    await guard.check(version)


async def test_empty_binary_frame_closes_1003(csms: CsmsServer, guard: Guard) -> None:
    """Even an empty binary frame closes the connection with 1003."""
    async with peer(csms) as station:
        await station.send(b"")
        assert await station.closed_with() == (1003, "OCPP-J uses text frames only")
    await guard.check()


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b'[2,"1","Heartbeat",{"a":"\xff"}]', id="invalid-utf8"),
        pytest.param(b'[2,"1","Heartbeat",{"a":"\xed\xa0\x80"}]', id="utf8-encoded-surrogate"),
        pytest.param(b'[2,"1","Heartbeat",{"a":"\xc3"}]', id="truncated-utf8"),
    ],
)
async def test_text_frame_with_invalid_utf8_closes_1007(
    csms: CsmsServer, guard: Guard, payload: bytes
) -> None:
    """A text frame that is not valid UTF-8 closes the connection with 1007 (invalid data)."""
    async with peer(csms) as station:
        await station.ws.send(payload, text=True)
        code, _ = await station.closed_with()
        assert code == 1007
    await guard.check()


@pytest.mark.parametrize("version", VERSIONS)
async def test_frame_over_max_message_size_closes_1009(version: str) -> None:
    """A frame over max_message_size closes the connection with 1009; one at the limit is fine."""
    limit = 4096
    async with start_server(max_message_size=limit) as server, guarding(server) as guard:
        async with peer(server, version=version) as station:
            # exactly at the limit (padded with JSON whitespace): answered
            at_limit = '[2,"fits","Heartbeat",{}]'
            await station.send(at_limit + " " * (limit - len(at_limit)))
            assert await station.recv() == [3, "fits", {"currentTime": NOW}]
            session = session_of(server, station.station_id)
            over = json.dumps([2, "1", "Authorize", {"idTag": "T" * limit}])
            await station.send(over)
            assert (await station.closed_with())[0] == 1009
            await eventually(lambda: session.ended)
            assert session.close_code == 1009
        await guard.check(version)


async def test_compressed_bomb_closes_1009() -> None:
    """A tiny compressed frame that inflates past max_message_size closes with 1009."""
    async with start_server(max_message_size=64 * 1024) as server, guarding(server) as guard:
        async with peer(server) as station:
            assert station.ws.response.headers.get("Sec-WebSocket-Extensions"), "no deflate"
            bomb = '[2,"1","Heartbeat",{}]' + " " * (8 * 1024 * 1024)
            await station.send(bomb)
            assert (await station.closed_with())[0] == 1009
        await guard.check()


@pytest.mark.parametrize("version", VERSIONS)
async def test_message_in_many_tiny_fragments_is_answered(
    csms: CsmsServer, guard: Guard, version: str
) -> None:
    """One CALL sent as thousands of one-character fragments is reassembled and answered."""
    call = '[2,"frag","Heartbeat",{}]'
    # websockets sends one frame per character, then an empty final one
    text = call + " " * (MAX_FRAGMENTS - 1 - len(call))
    async with peer(csms, version=version) as station:
        await station.ws.send(iter(text))
        assert await station.recv() == [3, "frag", {"currentTime": NOW}]
        await station.ws.send(iter(json.dumps([2, "frag2", "Authorize", {"idTag": "ABC"}])))
        answer = await station.recv()
        if version == "1.6":
            assert answer == [3, "frag2", authorize_answer(version)]
        else:
            assert answer == [4, "frag2", "FormatViolation", EXTRA, {}]
    await guard.check(version)


async def test_message_in_too_many_fragments_closes_1009(csms: CsmsServer, guard: Guard) -> None:
    """Past websockets' limit of fragments per message, the connection is closed with 1009."""
    call = '[2,"frag","Heartbeat",{}]'
    async with peer(csms) as station:
        session = session_of(csms, station.station_id)
        with contextlib.suppress(ConnectionClosed):
            await station.ws.send(iter(call + " " * MAX_FRAGMENTS))
        assert await station.closed_with() == (1009, "too many fragments")
    # websockets stops reading before it fails the connection, so it sees neither the
    # station's close frame nor its EOF: the session ends only at close_timeout (1 s)
    await eventually(lambda: session.ended, 1 + TIMEOUT)
    await guard.check()


async def test_fragments_adding_up_past_the_limit_close_1009() -> None:
    """Small fragments that add up to more than max_message_size close with 1009."""
    async with start_server(max_message_size=4096) as server, guarding(server) as guard:
        async with peer(server) as station:
            with contextlib.suppress(ConnectionClosed):
                await station.ws.send(iter(["[" + " " * 99] * 100))
            assert (await station.closed_with())[0] == 1009
        await guard.check()


# -- CALLs in progress ------------------------------------------------------------------


def meter_values(version: str) -> dict[str, Any]:
    """A valid MeterValues payload (RobustCsms answers it after SLOW_SECONDS)."""
    if version == "1.6":
        return {
            "connectorId": 1,
            "meterValue": [{"timestamp": NOW, "sampledValue": [{"value": "1"}]}],
        }
    return {"evseId": 1, "meterValue": [{"timestamp": NOW, "sampledValue": [{"value": 1.0}]}]}


@pytest.mark.parametrize("version", VERSIONS)
async def test_reusing_the_id_of_a_call_in_progress(
    csms: CsmsServer, guard: Guard, version: str
) -> None:
    """A CALL reusing the messageId of one in progress is refused; the first is still answered."""
    async with peer(csms, version=version) as station:
        await station.send([2, "dup", "MeterValues", meter_values(version)])
        await station.send([2, "dup", "Heartbeat", {}])
        description = "messageId is already used by a CALL still in progress"
        assert await station.recv() == [4, "dup", RPC[version], description, {}]
        assert await station.recv() == [3, "dup", {}]
        # once answered, the id may be used again
        await station.heartbeat("dup")
    await guard.check(version)


@pytest.mark.parametrize("version", VERSIONS)
async def test_too_many_calls_in_progress(csms: CsmsServer, guard: Guard, version: str) -> None:
    """Past 16 CALLs in progress, a CALL is refused at once; the 16 are answered in order."""
    async with peer(csms, version=version) as station:
        # a slow CALL first: the fifteen Heartbeats behind it stay in progress meanwhile
        await station.send([2, "m0", "MeterValues", meter_values(version)])
        for n in range(1, 17):
            await station.send([2, f"m{n}", "Heartbeat", {}])
        description = "too many CALLs in progress (at most 16)"
        assert await station.recv() == [4, "m16", RPC[version], description, {}]
        answers = [await station.recv() for _ in range(16)]
        assert answers == [[3, "m0", {}]] + [[3, f"m{n}", HEARTBEAT_ANSWER] for n in range(1, 16)]
    await guard.check(version)


# -- malformed frames in a row ----------------------------------------------------------

MALFORMED = [
    ("garbage", error("-1", RPC, NOT_JSON)),
    ("[]", error("-1", RPC, NOT_ARRAY)),
    ('[2,"a","Heartbeat"]', error("a", RPC, "CALL must have 4 elements")),
    ('[2,"b","Heartbeat",{"extra":1}]', error("b", FORMAT, EXTRA)),
    (
        '[2,"c","Authorize",{}]',
        lambda v: [4, "c", OCCURRENCE[v], f"required property {ID_TOKEN[v]} is missing", {}],
    ),
    ('[2,"d","Heartbeat",{"a":NaN}]', error("-1", RPC, "NaN is not a JSON number")),
    ('[2,"e",5,{}]', error("e", RPC, "action is not a string")),
    ('["2","f","Heartbeat",{}]', error("f", RPC, NOT_INT)),
    ('[2,"g","Authorize",{"idTag":"\\ud800"}]', error("g", FORMAT, SURROGATE)),
    ('[2,"h","Heartbeat",[]]', error("h", FORMAT, "payload is not a JSON object")),
]


@pytest.mark.parametrize("version", VERSIONS)
async def test_ten_malformed_frames_in_a_row_close_1002(
    csms: CsmsServer, guard: Guard, version: str
) -> None:
    """Ten malformed frames in a row: each gets its CALLERROR, then the close is 1002."""
    async with peer(csms, version=version) as station:
        for text, answer in MALFORMED:
            await station.send(text)
            assert await station.recv() == answer(version)
        assert await station.closed_with() == (1002, "too many malformed frames")
    await guard.check(version)


async def test_malformed_frames_broken_by_good_ones_never_close(
    csms: CsmsServer, guard: Guard
) -> None:
    """Nine malformed frames, a good one, nine more, and so on: the connection stays open."""
    async with peer(csms) as station:
        for round_ in range(3):
            for _ in range(9):
                await station.send("garbage")
                assert await station.recv() == [4, "-1", "FormationViolation", NOT_JSON, {}]
            await station.heartbeat(f"hb-{round_}")
        assert not session_of(csms, station.station_id).ended
    await guard.check()


@pytest.mark.parametrize("version", VERSIONS)
async def test_refused_wellformed_calls_never_close(
    csms: CsmsServer, guard: Guard, version: str
) -> None:
    """NotImplemented, NotSupported and SecurityError answers do not count as malformed."""
    async with peer(csms, version=version, boot=False) as station:
        await station.send([2, "s0", "Heartbeat", {}])
        frames = [await station.recv(), await station.recv()]
        (trigger,) = [f for f in frames if f[0] == 2]
        await station.send([3, trigger[1], {"status": "Accepted"}])
        for n in range(1, 12):
            security = await station.call(f"s{n}", "Heartbeat", {})
            assert security[:3] == [4, f"s{n}", "SecurityError"]
        await station.boot()
        unhandled = "StopTransaction" if version == "1.6" else "TransactionEvent"
        for n in range(1, 12):
            assert (await station.call(f"i{n}", "FooBar", {}))[:3] == [
                4,
                f"i{n}",
                "NotImplemented",
            ]
            assert (await station.call(f"u{n}", unhandled, {}))[:3] == [4, f"u{n}", "NotSupported"]
        await station.heartbeat()
        assert not session_of(csms, station.station_id).ended
    await guard.check(version)


# -- the boot gate ------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_calls_before_boot_get_security_error(
    csms: CsmsServer, guard: Guard, version: str
) -> None:
    """Before an Accepted boot: SecurityError and one TriggerMessage; after it, answered."""
    refused = [4, "hb-1", "SecurityError", "BootNotification not accepted (status: none yet)", {}]
    async with peer(csms, version=version, boot=False) as station:
        await station.send([2, "hb-1", "Heartbeat", {}])
        frames = [await station.recv(), await station.recv()]
        (trigger,) = [f for f in frames if f[0] == 2]
        assert [f for f in frames if f[0] == 4] == [refused]
        assert trigger[2:] == ["TriggerMessage", {"requestedMessage": "BootNotification"}]
        await station.send([3, trigger[1], {"status": "Accepted"}])
        # refused again, never triggered twice
        payload = (
            {"idTag": "T"}
            if version == "1.6"
            else {"idToken": {"idToken": "T", "type": "Central"}}
        )
        answer = await station.call("au-1", "Authorize", payload)
        assert answer == [4, "au-1", *refused[2:]]
        # no second TriggerMessage: the next frames are the answers to boot and heartbeat
        await station.boot()
        await station.heartbeat()
        assert session_of(csms, station.station_id).booted
    await guard.check(version)


# -- failing handlers -----------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_handler_that_raises_gets_internal_error(
    csms: CsmsServer, guard: Guard, version: str
) -> None:
    """A handler raising an unexpected exception: InternalError with a fixed text, no leak."""
    async with peer(csms, version=version) as station:
        answer = await station.call("dt", "DataTransfer", {"vendorId": "ACME", "data": "secret"})
        assert answer == [4, "dt", "InternalError", INTERNAL_ERROR_TEXT, {}]
        await station.heartbeat()
        assert session_of(csms, station.station_id).stats.handler_errors == 1
    await guard.check(version)


@pytest.mark.parametrize("version", VERSIONS)
async def test_handler_returning_an_invalid_payload_gets_internal_error(
    csms: CsmsServer, guard: Guard, version: str
) -> None:
    """A handler whose response breaks the schema: InternalError, nothing invalid is sent."""
    async with peer(csms, version=version) as station:
        answer = await station.call("fw", "FirmwareStatusNotification", {"status": "Downloaded"})
        assert answer == [4, "fw", "InternalError", INTERNAL_ERROR_TEXT, {}]
        await station.heartbeat()
    await guard.check(version)


# -- rate limits ----------------------------------------------------------------------


class FlushingCsms(RobustCsms):
    """RobustCsms with the default limits and a quick MeterValues handler."""

    @on("MeterValues")
    def slow(self, request: Any) -> dict[str, Any]:
        return {}


@pytest.mark.slow
async def test_offline_queue_flush_is_slowed_never_refused() -> None:
    """400 MeterValues in a row, one CALL at a time (a 1.6 offline queue): every one answered."""
    async with start_server(FlushingCsms) as server, guarding(server) as guard:
        async with peer(server, version="1.6") as station:
            session = session_of(server, station.station_id)
            for n in range(400):
                frame = await station.call(f"mv-{n}", "MeterValues", meter_values("1.6"))
                assert frame == [3, f"mv-{n}", {}], frame
            # past the default burst of 200, the station was read more slowly, never refused
            assert session.stats.rate_limited == 0
            assert session.stats.throttled > 0
            assert not session.ended
        await guard.check()


async def test_pipelining_flooder_is_limited_and_others_are_served() -> None:
    """A station pipelining CALLs is throttled; another station is answered meanwhile."""
    async with start_server(FlushingCsms) as server, guarding(server) as guard:
        async with peer(server, version="1.6") as flooder:
            for n in range(600):  # never waits for an answer
                await flooder.send([2, f"hb-{n}", "Heartbeat", {}])
            flooding = session_of(server, flooder.station_id)
            await eventually(lambda: flooding.stats.throttled > 0)
            async with peer(server, version="2.0.1") as other:
                for n in range(5):
                    await other.heartbeat(f"other-{n}")
            # the other station was served while the flooder's frames still waited
            assert flooding.stats.received < 600
            assert flooding.stats.rate_limited == 0  # nothing was in progress: slowed
        await guard.check()


class StrictCsms(RobustCsms):
    """Closes a station that pipelines CALLs past a burst of 5 frames."""

    limits = Limits(frames=RateLimit(rate=0.01, burst=5), on_exceed="close")


async def test_pipelined_calls_over_the_rate_limit_in_close_mode_close_1008() -> None:
    """With on_exceed="close", CALLs pipelined behind a slow one past the limit close 1008."""
    async with start_server(StrictCsms) as server, guarding(server) as guard:
        async with peer(server) as station:  # the boot takes one token
            await station.send([2, "slow", "MeterValues", meter_values("1.6")])
            for n in range(6):
                await station.send([2, f"hb-{n}", "Heartbeat", {}])
            assert await station.closed_with() == (1008, "rate limit exceeded")
        await guard.check()


# -- floods -------------------------------------------------------------------------------


async def test_flood_of_unsolicited_callresults_keeps_memory_flat() -> None:
    """Thousands of unsolicited CALLRESULTs are dropped and counted; memory stays flat."""
    async with start_server(UnlimitedCsms) as server, guarding(server) as guard:
        async with peer(server) as station:
            session = session_of(server, station.station_id)

            async def flood(round_: int, count: int) -> None:
                for n in range(count):
                    await station.send(f'[3,"r{round_}-{n}",{{"currentTime":"{NOW}"}}]')
                # answered: everything sent before it has been read and dropped
                await station.send([2, f"hb-{round_}", "Heartbeat", {}])
                assert await station.recv(TIMEOUT * 6) == [3, f"hb-{round_}", HEARTBEAT_ANSWER]

            await flood(0, 1_000)  # warm up: caches, buffers, the one WARNING
            tracemalloc.start()
            try:
                await flood(1, 1_000)  # warm up what tracing itself allocates
                gc.collect()
                before = tracemalloc.get_traced_memory()[0]
                await flood(2, 5_000)
                gc.collect()
                grown = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
            assert session.stats.unexpected_answers == 7_000
            # flat: a leak of even 5 bytes per frame would show as 25 kB
            assert grown < 25_000, f"memory grew by {grown} bytes over 5,000 frames"
            assert not session.ended
        await guard.check()


def small_buffer_sockets() -> tuple[socket.socket, socket.socket]:
    """A bound listener and a client socket, both with 8 KiB socket buffers.

    Accepted sockets inherit the listener's buffers, so backpressure builds up in a
    fraction of a second rather than after megabytes.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    for sock in (listener, client):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    listener.bind((HOST, 0))
    client.setblocking(False)
    return listener, client


async def test_station_that_never_reads_is_held_back() -> None:
    """CALLs from a station that never reads its answers: the server stops reading it."""
    listener, client = small_buffer_sockets()
    try:
        async with (
            # Without a rate limit: this is about write backpressure alone (a rate
            # limit would slow the reading down on its own).
            serve(UnlimitedCsms, sock=listener, ping_interval=None, close_timeout=1) as server,
            guarding(server) as guard,
        ):
            await asyncio.get_running_loop().sock_connect(client, (HOST, server.port))
            station_id = fresh_id("DEAF")
            async with connect(
                f"{url_of(server)}/{station_id}",
                sock=client,
                subprotocols=[Subprotocol("ocpp1.6")],
                ping_interval=None,
                close_timeout=1,
            ) as ws:
                station = Peer(ws, station_id, "1.6")
                await station.boot()
                session = session_of(server, station_id)
                ws.transport.pause_reading()
                # Well-formed CALLs of an unknown action, answered by the reader itself
                # and never counted as malformed. (Pipelined Heartbeats would be: past
                # 16 in progress each one is a RpcFrameworkError, and the tenth of
                # those closes the connection with 1002.)
                sent = 0
                deadline = time.monotonic() + 10
                frame = '[2,"%d","NoSuchAction",{}]'
                with contextlib.suppress(TimeoutError):
                    while time.monotonic() < deadline:
                        await asyncio.wait_for(ws.send(frame % sent), 0.5)
                        sent += 1
                assert time.monotonic() < deadline, "the server never stopped reading"
                # it reads no more, and holds a bounded backlog of answers for it
                received = session.stats.received
                await asyncio.sleep(0.3)
                assert session.stats.received == received < sent
                server_side = session.transport.connection.transport  # type: ignore[attr-defined]
                assert server_side.get_write_buffer_size() < 256 * 1024
                assert not session.ended
                await guard.check()  # the rest of the server carries on meanwhile
                ws.transport.abort()
            await eventually(lambda: session.ended)
            await guard.check()
    finally:
        client.close()
        listener.close()


# -- stations that go away ----------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_station_vanishing_mid_call_fails_the_call_promptly(
    csms: CsmsServer, guard: Guard, version: str
) -> None:
    """The station's TCP connection drops while the CSMS awaits its answer: StationDisconnected."""
    async with peer(csms, version=version) as station:
        session = session_of(csms, station.station_id)
        calling = asyncio.create_task(
            csms.registry.call(station.station_id, {}, action="ClearCache")
        )
        outgoing = await station.recv()
        assert outgoing[::2] == [2, "ClearCache"]
        loop = asyncio.get_running_loop()
        started = loop.time()
        station.ws.transport.abort()
        with pytest.raises(StationDisconnected) as caught:
            await asyncio.wait_for(calling, TIMEOUT)
        assert loop.time() - started < 1.0, "the pending call was not failed promptly"
        assert caught.value.code == 1006
        await eventually(lambda: session.ended)
        assert not await csms.registry.is_connected(station.station_id)
    await guard.check(version)


async def test_station_vanishing_while_its_call_is_handled(csms: CsmsServer, guard: Guard) -> None:
    """The station drops during its own slow CALL: the handler ends, its answer is dropped."""
    async with peer(csms) as station:
        session = session_of(csms, station.station_id)
        await station.send([2, "slow", "MeterValues", meter_values("1.6")])
        await asyncio.sleep(0.05)
        station.ws.transport.abort()
        await eventually(lambda: session.ended)
        await eventually(lambda: session not in csms.sessions, SLOW_SECONDS + TIMEOUT)
        assert session.close_code == 1006
    await guard.check()


async def test_station_that_never_reads_is_closed_by_the_keepalive() -> None:
    """With pings on, a station whose answers pile up unread is closed with 1011."""
    listener, client = small_buffer_sockets()
    try:
        async with (
            # Without a rate limit, which would slow the reading down on its own.
            serve(
                UnlimitedCsms, sock=listener, ping_interval=0.3, ping_timeout=30, close_timeout=0.5
            ) as server,
            guarding(server) as guard,
        ):
            await asyncio.get_running_loop().sock_connect(client, (HOST, server.port))
            station_id = fresh_id("DEAF")
            async with connect(
                f"{url_of(server)}/{station_id}",
                sock=client,
                subprotocols=[Subprotocol("ocpp1.6")],
                ping_interval=None,
                close_timeout=0.5,
            ) as ws:
                station = Peer(ws, station_id, "1.6")
                await station.boot()
                session = session_of(server, station_id)
                ws.transport.pause_reading()
                frame = '[2,"%d","NoSuchAction",{}]'
                deadline = time.monotonic() + 10
                sent = 0
                with contextlib.suppress(TimeoutError, ConnectionClosed):
                    while not session.ended and time.monotonic() < deadline:
                        await asyncio.wait_for(ws.send(frame % sent), 0.5)
                        sent += 1
                # Far sooner than ping_timeout: not reading for a whole interval is enough.
                await eventually(lambda: session.ended)
                assert (session.close_code, session.close_reason) == (
                    1011,
                    "keepalive ping timeout",
                )
                ws.transport.abort()
            await guard.check()
    finally:
        client.close()
        listener.close()


async def test_station_that_stops_answering_pings_is_closed() -> None:
    """A station that stops answering pings is closed by the server; the canary is not."""
    async with (
        start_server(ping_interval=0.2, ping_timeout=0.2, close_timeout=0.5) as server,
        guarding(server) as guard,
    ):
        async with peer(server) as station:
            session = session_of(server, station.station_id)
            station.ws.transport.pause_reading()  # no more pongs
            await eventually(lambda: session.ended)
            station.ws.transport.resume_reading()
            assert (session.close_code, session.close_reason) == (1011, "keepalive ping timeout")
        await asyncio.sleep(0.5)  # a few ping rounds for the canary
        await guard.check()


async def test_handshakes_that_never_finish_are_dropped() -> None:
    """Half-sent upgrade requests are dropped after open_timeout; others are served meanwhile."""
    partial = [
        b"",
        b"GET /CP-1 HTTP/1.1\r\n",
        b"GET /CP-1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n",
        b"GE",
    ]
    async with start_server(open_timeout=0.5) as server, guarding(server) as guard:
        loop = asyncio.get_running_loop()
        connections = []
        try:
            for n in range(20):
                reader, writer = await asyncio.open_connection(HOST, server.port)
                writer.write(partial[n % len(partial)])
                connections.append((reader, writer))
            started = loop.time()
            await guard.check()  # served while the stalled handshakes hang
            for reader, _ in connections:
                assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
            assert loop.time() - started < 3.0
            assert len(server.sessions) == 1  # the canary
        finally:
            for _, writer in connections:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        await guard.check()


# -- the opening handshake ----------------------------------------------------------------


@pytest.mark.parametrize(
    "offered",
    [
        pytest.param(None, id="none"),
        pytest.param(["soap"], id="unknown"),
        pytest.param(["ocpp1.5", "ocpp3.0"], id="other-versions"),
        pytest.param(["OCPP1.6"], id="wrong-case"),
    ],
)
async def test_no_common_subprotocol_completes_handshake_then_closes_1002(
    csms: CsmsServer, guard: Guard, offered: list[str] | None
) -> None:
    """No OCPP version in common: the handshake completes without the header, then close 1002."""
    subprotocols = [Subprotocol(p) for p in offered] if offered else None
    async with connect(
        f"{url_of(csms)}/{fresh_id()}", subprotocols=subprotocols, close_timeout=1
    ) as ws:
        assert ws.response.status_code == 101
        assert "Sec-WebSocket-Protocol" not in ws.response.headers
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1002
        assert (
            closed.value.rcvd.reason == "no common OCPP version; offer ocpp2.1, ocpp2.0.1, ocpp1.6"
        )
    assert len(csms.sessions) == 1  # the canary only
    await guard.check()


@pytest.mark.parametrize(
    ("path", "status"),
    [
        pytest.param("/", 400, id="empty"),
        pytest.param("/" + "A" * 49, 400, id="49-chars"),
        pytest.param("/" + "%C3%A9" * 49, 400, id="49-encoded-chars"),
        pytest.param("/CP:1", 400, id="colon"),
        pytest.param("/CP%3A1", 400, id="encoded-colon"),
        pytest.param("/CP%2F1", 400, id="encoded-slash"),
        pytest.param("/CP%001", 400, id="encoded-nul"),
        pytest.param("/CP%ZZ", 400, id="bad-escape"),
        pytest.param("/CP%C3%28", 400, id="bad-utf8"),
        pytest.param("/a/CP-1", 404, id="extra-segment"),
    ],
)
async def test_bad_identity_is_refused_at_the_handshake(
    csms: CsmsServer, guard: Guard, path: str, status: int
) -> None:
    """An empty, too long, ``:``-holding or badly encoded identity gets an HTTP error."""
    with pytest.raises(InvalidStatus) as caught:
        await connect(url_of(csms) + path, subprotocols=[Subprotocol("ocpp1.6")])
    assert caught.value.response.status_code == status
    assert len(csms.sessions) == 1  # the canary only
    await guard.check()


@pytest.mark.parametrize(
    ("segment", "identity"),
    [
        pytest.param("%43%50-%31", "CP-1", id="encoded-ascii"),
        pytest.param("caf%C3%A9%20CP", "café CP", id="encoded-utf8-and-space"),
        pytest.param("%E5%85%85" * 48, "充" * 48, id="48-encoded-chars"),
    ],
)
async def test_percent_encoded_identity_is_decoded(
    csms: CsmsServer, guard: Guard, segment: str, identity: str
) -> None:
    """A percent-encoded identity is decoded; the station works under the decoded name."""
    async with connect(
        f"{url_of(csms)}/{segment}", subprotocols=[Subprotocol("ocpp2.0.1")], close_timeout=1
    ) as ws:
        station = Peer(ws, identity, "2.0.1")
        await station.boot()
        await station.heartbeat()
        assert session_of(csms, identity).station_id == identity
    await guard.check()


@pytest.mark.parametrize("version", VERSIONS)
async def test_same_identity_twice_replaces_the_old_connection(
    csms: CsmsServer, guard: Guard, version: str
) -> None:
    """A second connection of a station closes the first with 1000; the second is served."""
    station_id = fresh_id("TWICE")
    async with peer(csms, station_id, version) as old:
        first = session_of(csms, station_id)
        async with peer(csms, station_id, version, boot=False) as new:
            reason = "replaced by a newer connection of the same station"
            assert await old.closed_with() == (1000, reason)
            await new.heartbeat()  # booted before: the registry remembers
            assert session_of(csms, station_id) is not first
            await eventually(lambda: first.ended)
    await eventually(lambda: len(csms.sessions) == 1)  # the canary only: no ghost
    await guard.check(version)


async def test_hundreds_of_connections_from_one_address_get_429() -> None:
    """With max_connections_per_address=50, the connections past 50 get HTTP 429."""
    limit, attempts = 50, 300
    async with (
        start_server(max_connections_per_address=limit) as server,
        guarding(server) as guard,
    ):

        async def attempt(n: int) -> Any:
            try:
                return await connect(
                    f"{url_of(server)}/MANY-{n}",
                    subprotocols=[Subprotocol("ocpp1.6")],
                    close_timeout=1,
                    open_timeout=TIMEOUT * 4,
                )
            except InvalidStatus as refused:
                return refused.response.status_code

        results = await asyncio.gather(*(attempt(n) for n in range(attempts)))
        opened = [r for r in results if not isinstance(r, int)]
        try:
            assert sorted(r for r in results if isinstance(r, int)) == [429] * (
                attempts - limit + 1
            )
            assert len(opened) == limit - 1  # the canary holds one slot
            await heartbeat_of(guard.canary)
        finally:
            await asyncio.gather(*(ws.close() for ws in opened))
        await eventually(lambda: len(server.sessions) == 1)
        await guard.check()


KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # any valid Sec-WebSocket-Key (RFC 6455's example)
UPGRADE = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: ocpp1.6\r\n"

#: Requests for a valid station path that websockets refuses after csms_kit's checks.
REFUSED_BY_WEBSOCKETS = [
    pytest.param(
        f"GET /{{}} HTTP/1.1\r\nHost: h\r\n{UPGRADE}Sec-WebSocket-Version: 13\r\n",
        400,
        id="no-key",
    ),
    pytest.param(
        f"GET /{{}} HTTP/1.1\r\nHost: h\r\n{UPGRADE}"
        f"Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: {KEY}\r\n",
        400,
        id="old-version",
    ),
    pytest.param("GET /{} HTTP/1.1\r\nHost: h\r\n", 426, id="plain-http-get"),
    pytest.param("POST /{} HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n", 405, id="post"),
    pytest.param("GET /{} HTTP/1.0\r\n", 505, id="http-1.0"),
]


async def http_exchange(port: int, request: bytes) -> bytes:
    """Send raw bytes; return everything the server sends until it closes."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(request)
        return await asyncio.wait_for(reader.read(), TIMEOUT)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        pytest.param(f"GET /{'A' * 10_000} HTTP/1.1\r\nHost: h\r\n", 414, id="uri-10k"),
        pytest.param("GET /CP HTTP/1.1\r\n" + "X-A: b\r\n" * 300, 431, id="300-headers"),
        pytest.param(f"GET /CP HTTP/1.1\r\nX-Big: {'a' * 20_000}\r\n", 431, id="header-20k"),
        *REFUSED_BY_WEBSOCKETS,
    ],
)
async def test_bad_http_requests_get_an_http_error(
    csms: CsmsServer, guard: Guard, request_line: str, status: int
) -> None:
    """Malformed or oversized HTTP, plain GET, POST, HTTP/1.0: the exact HTTP error status."""
    request = request_line.replace("{}", fresh_id("HTTP")) + "\r\n"
    answer = await http_exchange(csms.port, request.encode())
    assert answer.split(b"\r\n", 1)[0].split(b" ", 2)[:2] == [b"HTTP/1.1", str(status).encode()]
    assert len(csms.sessions) == 1  # the canary only
    await guard.check()


async def test_tls_client_hello_on_a_plain_listener_is_dropped() -> None:
    """A TLS ClientHello sent to a ws:// listener is dropped after open_timeout."""
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(100)
    async with start_server(open_timeout=0.5) as server, guarding(server) as guard:
        assert await http_exchange(server.port, hello) == b""
        await guard.check()


@pytest.mark.parametrize(("request_line", "status"), REFUSED_BY_WEBSOCKETS)
@pytest.mark.parametrize("limit", ["max_connections", "max_connections_per_address"])
async def test_handshakes_refused_by_websockets_free_their_slot(
    limit: str, request_line: str, status: int
) -> None:
    """Requests websockets refuses after csms_kit admitted them hold no connection slot."""
    # csms_kit's checks admit the request (and count it); websockets then refuses it.
    # The slot must be freed at once, not whenever the garbage collector finds the
    # connection: pause the collector so that the outcome does not depend on when it runs.
    gc.disable()
    try:
        async with start_server(**{limit: 3}) as server, guarding(server) as guard:
            for _ in range(2):  # the canary holds the third slot
                request = request_line.replace("{}", fresh_id("HALF")) + "\r\n"
                answer = await http_exchange(server.port, request.encode())
                assert answer.startswith(f"HTTP/1.1 {status} ".encode())
            await guard.check()  # a new station gets the third slot; the canary is served
    finally:
        gc.enable()


# -- bad answers to the CSMS's own CALLs --------------------------------------------------

ACCEPTED = {"status": "Accepted"}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("answers", "outcome"),
    [
        pytest.param(
            [[3, "other", ACCEPTED], [3, "{id}", ACCEPTED]], "Accepted", id="wrong-id-first"
        ),
        pytest.param(
            [[3, "{id}", {"status": "Exploded"}]], "InvalidResponse", id="invalid-payload"
        ),
        pytest.param([[3, "{id}", []]], "InvalidResponse", id="payload-not-object"),
        pytest.param([[3, "{id}"]], "InvalidResponse", id="callresult-of-2"),
        pytest.param([[4, "{id}", "GenericError"]], "InvalidResponse", id="callerror-of-3"),
        pytest.param([[4, "{id}", "NoSuchCode", "x", {}]], "CallError", id="unknown-error-code"),
        pytest.param([[3, "{id}", ACCEPTED], [3, "{id}", ACCEPTED]], "Accepted", id="twice"),
        pytest.param(
            [[4, "{id}", "GenericError", "x", {}], [3, "{id}", ACCEPTED]],
            "CallError",
            id="error-then-result",
        ),
    ],
)
async def test_station_answering_our_call_badly(
    csms: CsmsServer, guard: Guard, version: str, answers: list[list[Any]], outcome: str
) -> None:
    """A station's bad answer to our CALL fails that call only; nothing is sent back for it."""
    async with peer(csms, version=version) as station:
        session = session_of(csms, station.station_id)
        calling = asyncio.create_task(session.call({}, action="ClearCache", timeout=TIMEOUT))
        outgoing = await station.recv()
        for answer in answers:
            await station.send([outgoing[1] if part == "{id}" else part for part in answer])
        if outcome == "Accepted":
            assert (await calling).status == "Accepted"
        else:
            with pytest.raises(CallFailed) as caught:
                await calling
            assert type(caught.value).__name__ == outcome
        await station.heartbeat()  # nothing was sent back before this answer
        # the next call goes out and works
        calling = asyncio.create_task(session.call({}, action="ClearCache", timeout=TIMEOUT))
        outgoing = await station.recv()
        await station.send([3, outgoing[1], ACCEPTED])
        assert (await calling).status == "Accepted"
        assert not session.ended
    await guard.check(version)
