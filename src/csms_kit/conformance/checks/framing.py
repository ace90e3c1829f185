"""The RPC frames: malformed ones, the ``"-1"`` messageId, unknown message types, ids.

Each case first boots the station, so that a CSMS with a boot gate answers the frame
itself rather than SecurityError, then sends one crafted frame exactly as written.
"""

from __future__ import annotations

import secrets

from csms_kit.conformance import rules
from csms_kit.conformance.case import SUITE, Failed
from csms_kit.conformance.context import Context, describe_answer
from csms_kit.conformance.probe import encode
from csms_kit.versions import OcppVersion

_UNREADABLE = "-1"
# What a frame that is not a valid RPC request may be answered with: 2.x has
# RpcFrameworkError for it; 1.6 has no frame-level code, so its nearest ones.
_BAD_FRAME_CODES = {
    OcppVersion.V16: ("FormatViolation", "ProtocolError", "GenericError"),
    OcppVersion.V201: ("RpcFrameworkError", "FormatViolation", "ProtocolError"),
    OcppVersion.V21: ("RpcFrameworkError", "FormatViolation", "ProtocolError"),
}
_MINUS_ONE_SPEC = 'Part 4 §4.2.3 (CALLERROR, messageId "-1")'
_FRAME_SPEC = "OCPP-J 1.6 §4, Part 4 §4 (RPC framework)"


async def _unreadable_id(ctx: Context, text: str, what: str) -> str:
    """Send ``text``, whose messageId cannot be read; expect a CALLERROR "-1"."""
    assert ctx.version is not None
    probe = await ctx.booted()
    await probe.send_text(text)
    frame = await probe.next_answer(ctx.target.timeout)
    if frame is None:
        if ctx.version is OcppVersion.V16 and not probe.closed:
            # OCPP-J 1.6 has no "-1" rule: silence is allowed, if the connection works.
            await ctx.still_works(probe, what)
            return 'no answer (OCPP-J 1.6 has no "-1" rule); the connection still works'
        raise Failed(ctx.silence(probe, what) + '; expected a CALLERROR with messageId "-1"')
    note = ctx.expect_error(frame, _BAD_FRAME_CODES[ctx.version], ids=[_UNREADABLE], what=what)
    await ctx.still_works(probe, what)
    return note


async def _bad_frame(
    ctx: Context, message_id: str, text: str, what: str, also: tuple[str, ...] = ()
) -> str:
    """Send ``text``, a broken CALL whose messageId can be read; expect a CALLERROR.

    ``also`` are codes this particular fault may fairly be answered with too.
    """
    assert ctx.version is not None
    probe = await ctx.booted()
    await probe.send_text(text)
    frame = await probe.next_answer(ctx.target.timeout)
    if frame is None:
        raise Failed(ctx.silence(probe, what))
    codes = _BAD_FRAME_CODES[ctx.version] + also
    note = ctx.expect_error(frame, codes, ids=[message_id, _UNREADABLE], what=what)
    await ctx.still_works(probe, what)
    return note


@SUITE.case(
    "frame-not-json",
    'text that is not JSON is answered with messageId "-1"',
    group="frames",
    spec=_MINUS_ONE_SPEC,
)
async def frame_not_json(ctx: Context) -> str | None:
    return await _unreadable_id(ctx, "[2, not json", "text that is not JSON")


@SUITE.case(
    "frame-not-array",
    'JSON that is not an array is answered with messageId "-1"',
    group="frames",
    spec=_MINUS_ONE_SPEC,
)
async def frame_not_array(ctx: Context) -> str | None:
    return await _unreadable_id(ctx, '{"messageTypeId":2}', "a JSON object")


@SUITE.case(
    "frame-id-not-string",
    'a CALL whose messageId is a number is answered with messageId "-1"',
    group="frames",
    spec=_MINUS_ONE_SPEC,
)
async def frame_id_not_string(ctx: Context) -> str | None:
    return await _unreadable_id(ctx, '[2,12345,"Heartbeat",{}]', "a numeric messageId")


@SUITE.case(
    "frame-id-too-long",
    'a CALL whose messageId has 37 characters is answered with messageId "-1"',
    group="frames",
    spec=_MINUS_ONE_SPEC,
)
async def frame_id_too_long(ctx: Context) -> str | None:
    text = encode([2, "x" * 37, "Heartbeat", {}])
    return await _unreadable_id(ctx, text, "a 37-character messageId")


@SUITE.case(
    "frame-wrong-length",
    "a CALL of 3 elements is answered with a CALLERROR",
    group="frames",
    spec=_FRAME_SPEC,
)
async def frame_wrong_length(ctx: Context) -> str | None:
    return await _bad_frame(ctx, "ck-short", '[2,"ck-short","Heartbeat"]', "a 3-element CALL")


@SUITE.case(
    "frame-type-as-string",
    'a MessageTypeId written "2" is answered with a CALLERROR',
    group="frames",
    spec=_FRAME_SPEC,
)
async def frame_type_as_string(ctx: Context) -> str | None:
    text = '["2","ck-string","Heartbeat",{}]'
    return await _bad_frame(ctx, "ck-string", text, 'a MessageTypeId "2"')


@SUITE.case(
    "frame-payload-not-object",
    "a CALL whose payload is an array is answered with a CALLERROR",
    group="frames",
    spec=_FRAME_SPEC,
)
async def frame_payload_not_object(ctx: Context) -> str | None:
    text = '[2,"ck-array","Heartbeat",[]]'
    # An array where the payload object should be is a data type fault, too.
    also = ("TypeConstraintViolation",)
    return await _bad_frame(ctx, "ck-array", text, "a CALL with an array payload", also)


@SUITE.case(
    "message-id-echoed",
    "the answer carries the CALL's messageId exactly, even at 36 characters",
    group="frames",
    spec="OCPP-J 1.6 §4, Part 4 §4 (messageId: up to 36 characters)",
)
async def message_id_echoed(ctx: Context) -> str | None:
    probe = await ctx.booted()
    message_id = f"ck:{secrets.token_hex(8)}/id_.~!".ljust(36, "z")
    await probe.send_frame([rules.CALL, message_id, "Heartbeat", {}])
    frame = await ctx.answer_to(probe, message_id, "a Heartbeat with a 36-character messageId")
    if frame[0] != rules.CALLRESULT:
        raise Failed(f"answered the Heartbeat with {describe_answer(frame)}")
    return "36-character messageId echoed"


@SUITE.case(
    "message-type-unknown",
    "an unknown MessageTypeId: 1.6 and 2.1 ignore it, 2.0.1 answers MessageTypeNotSupported",
    group="frames",
    spec="OCPP-J 1.6 §4, Part 4 §4; 2.0.1 Part 4 Table 8 (MessageTypeNotSupported)",
)
async def message_type_unknown(ctx: Context) -> str | None:
    return await _unknown_type(ctx, '[7,"ck-seven","Heartbeat",{}]', "ck-seven", "MessageTypeId 7")


@SUITE.case(
    "message-type-send-before-2.1",
    "a SEND (MessageTypeId 6) is an unknown message type before OCPP 2.1",
    group="frames",
    spec="2.0.1 Part 4 Table 8 (MessageTypeNotSupported); SEND is new in 2.1",
    not_for={OcppVersion.V21: "SEND is a message type of OCPP 2.1"},
)
async def message_type_send_before_21(ctx: Context) -> str | None:
    text = '[6,"ck-send","Heartbeat",{}]'
    return await _unknown_type(ctx, text, "ck-send", "a SEND (MessageTypeId 6)")


async def _unknown_type(ctx: Context, text: str, message_id: str, what: str) -> str:
    probe = await ctx.booted()
    await probe.send_text(text)
    if ctx.version is OcppVersion.V201:
        frame = await probe.next_answer(ctx.target.timeout)
        if frame is None:
            raise Failed(ctx.silence(probe, what) + "; expected MessageTypeNotSupported")
        note = ctx.expect_error(
            frame, ["MessageTypeNotSupported"], ids=[message_id, _UNREADABLE], what=what
        )
        await ctx.still_works(probe, what)
        return note
    await ctx.nothing_back(probe, what)
    return f"ignored for {ctx.target.quiet:g} s; the connection still works"


@SUITE.case(
    "unsolicited-callresult",
    "a CALLRESULT and a CALLERROR that answer no CALL are not answered",
    group="frames",
    spec="OCPP-J 1.6 §4, Part 4 §4 (only a CALL is answered)",
)
async def unsolicited_callresult(ctx: Context) -> str | None:
    probe = await ctx.booted()
    await probe.send_text('[3,"ck-nobody",{}]')
    await probe.send_text('[4,"ck-nobody-2","GenericError","no such CALL",{}]')
    await ctx.nothing_back(probe, "a CALLRESULT and a CALLERROR for no CALL")
    return "ignored; the connection still works"
