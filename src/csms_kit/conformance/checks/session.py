"""The connection over time: the CSMS's own CALLs, 2.1 SEND and CALLRESULTERROR, pings, size.

A checker cannot make an arbitrary CSMS send a CALL, so the cases about the CSMS's
CALLs use what CSMSs do on their own: a station that sends a CALL before booting,
and a station that has just booted, often get a CALL (a TriggerMessage, a
configuration query). If none comes, those cases are skipped, saying so.
"""

from __future__ import annotations

import asyncio
from typing import Any

from csms_kit.conformance import payloads, rules
from csms_kit.conformance.case import SUITE, Failed, Skipped
from csms_kit.conformance.context import Context, describe_answer
from csms_kit.conformance.probe import Probe, encode
from csms_kit.versions import OcppVersion

_ONLY_21 = {
    OcppVersion.V16: "exists only in OCPP 2.1",
    OcppVersion.V201: "exists only in OCPP 2.1",
}


async def _csms_call(ctx: Context) -> tuple[Probe, list[Any]]:
    """A station with a CALL of the CSMS's in hand, not answered yet."""
    probe = await ctx.open(auto_answer=False)
    # A CALL before boot: a CSMS with a boot gate may ask the station to boot.
    message_id = probe.next_id()
    await probe.send_frame([rules.CALL, message_id, "Heartbeat", {}])
    call = await probe.csms_call(ctx.target.quiet)
    if call is None:
        await probe.answer(message_id, 0)  # whatever the Heartbeat got
        boot = probe.next_id()
        assert ctx.version is not None
        await probe.send_frame(
            [rules.CALL, boot, "BootNotification", payloads.boot_notification(ctx.version)]
        )
        call = await probe.csms_call(ctx.target.call_wait)
    if call is None:
        raise Skipped(
            f"the CSMS sent no CALL within {ctx.target.call_wait:g} s of a station "
            "connecting and booting: nothing to check"
        )
    return probe, call


@SUITE.case(
    "csms-one-call-at-a-time",
    "the CSMS sends no second CALL while its first is unanswered",
    group="session",
    spec="OCPP-J 1.6 §4, Part 4 §4 (one CALL outstanding per direction)",
)
async def csms_one_call_at_a_time(ctx: Context) -> str | None:
    probe, call = await _csms_call(ctx)
    hold = max(ctx.target.quiet, 1.0)
    second = await probe.csms_call(hold)
    if second is not None:
        raise Failed(f"sent CALL {second[2]} while its CALL {call[2]} was still unanswered")
    await probe.send_frame(
        [rules.CALLERROR, call[1], "NotSupported", "not handled by the conformance probe", {}]
    )
    return f"held the answer to {call[2]} for {hold:g} s: no second CALL"


@SUITE.case(
    "invalid-callresult",
    "an invalid CALLRESULT to the CSMS's CALL: 2.1 answers CALLRESULTERROR, "
    "older versions never send one",
    group="session",
    spec="2.1 Part 4 (CALLRESULTERROR, MessageTypeId 5; new in 2.1)",
)
async def invalid_callresult(ctx: Context) -> str | None:
    probe, call = await _csms_call(ctx)
    # No response schema of OCPP defines this property, and most require others.
    await probe.send_frame([rules.CALLRESULT, call[1], {"conformanceProbe": True}])
    if ctx.version is OcppVersion.V21:
        frame = await probe.answer(call[1], ctx.target.timeout, frozenset({rules.CALLRESULTERROR}))
        if frame is None:
            raise Failed(
                ctx.silence(probe, f"an invalid CALLRESULT to {call[2]}")
                + "; expected a CALLRESULTERROR"
            )
        return f"[5,{call[1]!r},{frame[2]!r},...] for the answer to {call[2]}"
    await ctx.still_works(probe, f"an invalid CALLRESULT to {call[2]}")
    return f"no CALLRESULTERROR (not in OCPP {ctx.version}); the connection still works"


@SUITE.case(
    "send-not-answered",
    "a SEND (NotifyPeriodicEventStream) is never answered",
    group="session",
    spec="2.1 Part 4 (SEND, MessageTypeId 6: never answered)",
    not_for=_ONLY_21,
)
async def send_not_answered(ctx: Context) -> str | None:
    probe = await ctx.booted()
    action, payload = payloads.send_message()
    await probe.send_frame([rules.SEND, probe.next_id(), action, payload])
    await ctx.nothing_back(probe, f"a SEND {action}")
    return f"no answer for {ctx.target.quiet:g} s; the connection still works"


@SUITE.case(
    "callresulterror-not-answered",
    "a CALLRESULTERROR from the station is not answered",
    group="session",
    spec="2.1 Part 4 (CALLRESULTERROR, MessageTypeId 5)",
    not_for=_ONLY_21,
)
async def callresulterror_not_answered(ctx: Context) -> str | None:
    probe = await ctx.booted()
    await probe.send_text('[5,"ck-result","FormatViolation","about no CALLRESULT",{}]')
    await ctx.nothing_back(probe, "a CALLRESULTERROR")
    return "ignored; the connection still works"


@SUITE.case(
    "websocket-ping",
    "a WebSocket ping is answered with a pong",
    group="session",
    spec="RFC 6455 §5.5.2 (a ping gets a pong)",
)
async def websocket_ping(ctx: Context) -> str | None:
    probe = await ctx.open()
    latency = await probe.ping(ctx.target.timeout)
    if latency is None:
        raise Failed(ctx.silence(probe, "a WebSocket ping"))
    return f"pong after {latency * 1000:.1f} ms"


@SUITE.case(
    "oversize-frame",
    "a frame over the CSMS's size limit closes the connection with 1009, or is handled",
    group="session",
    spec="RFC 6455 §7.4.1 (1009: message too big)",
)
async def oversize_frame(ctx: Context) -> str | None:
    probe = await ctx.booted()
    message_id = probe.next_id()
    size = ctx.target.oversize
    overhead = len(encode([rules.CALL, message_id, "DataTransfer", payloads.data_transfer(0)]))
    text = encode(
        [rules.CALL, message_id, "DataTransfer", payloads.data_transfer(size - overhead)]
    )
    mib = f"{len(text.encode()) / 2**20:g} MiB"
    try:
        await asyncio.wait_for(probe.send_text(text), ctx.target.timeout * 4)
    except asyncio.TimeoutError:
        raise Failed(f"did not read a {mib} frame within {ctx.target.timeout * 4:g} s") from None
    frame = await probe.answer(message_id, ctx.target.timeout)
    if frame is not None:
        return f"answered a {mib} frame ({describe_answer(frame)}): its limit is higher"
    if not probe.closed and not await probe.wait_closed(ctx.target.timeout):
        raise Failed(
            f"neither answered nor closed within {ctx.target.timeout:g} s of a {mib} frame"
        )
    if probe.close_code != 1009:
        raise Failed(
            f"closed with {probe.close_code} {probe.close_reason!r} after a {mib} frame; "
            "1009 says the message was too big"
        )
    return f"closed with 1009 after a {mib} frame"
