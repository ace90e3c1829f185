"""Subprotocol negotiation: the OCPP version is chosen in the WebSocket handshake."""

from __future__ import annotations

from csms_kit.conformance.case import SUITE, Failed
from csms_kit.conformance.context import Context
from csms_kit.conformance.probe import HandshakeFailed, HandshakeRefused, Probe

_SPEC = "OCPP-J 1.6 §3.1.2, Part 4 §3.1.2; RFC 6455 §4.2.2"
_UNKNOWN = "ocpp0.9"  # a subprotocol no CSMS speaks


@SUITE.case(
    "subprotocol-chosen",
    "the CSMS chooses the OCPP version the station offers",
    group="handshake",
    spec=_SPEC,
)
async def subprotocol_chosen(ctx: Context) -> str | None:
    assert ctx.version is not None
    wanted = ctx.version.subprotocol
    probe = await _connected(ctx, [wanted])
    if probe.subprotocol is None:
        raise Failed(f"completed the handshake without choosing {wanted}, the only one offered")
    return f"Sec-WebSocket-Protocol: {probe.subprotocol}"


@SUITE.case(
    "subprotocol-among-unknown",
    "offered after an unknown subprotocol, the station's OCPP version is still chosen",
    group="handshake",
    spec=_SPEC,
)
async def subprotocol_among_unknown(ctx: Context) -> str | None:
    assert ctx.version is not None
    wanted = ctx.version.subprotocol
    probe = await _connected(ctx, [_UNKNOWN, wanted])
    if probe.subprotocol != wanted:
        raise Failed(f"chose {probe.subprotocol!r} from [{_UNKNOWN}, {wanted}]")
    return f"Sec-WebSocket-Protocol: {probe.subprotocol}"


@SUITE.case(
    "subprotocol-no-match",
    "no OCPP version in common: handshake completed without a subprotocol, then closed",
    group="handshake",
    spec=_SPEC,
    once=True,
)
async def subprotocol_no_match(ctx: Context) -> str | None:
    return await _completed_then_closed(ctx, [_UNKNOWN], f"only {_UNKNOWN} offered")


@SUITE.case(
    "subprotocol-none-offered",
    "no subprotocol offered: handshake completed without a subprotocol, then closed",
    group="handshake",
    spec=_SPEC,
    once=True,
)
async def subprotocol_none_offered(ctx: Context) -> str | None:
    return await _completed_then_closed(ctx, None, "no subprotocol offered")


async def _connected(ctx: Context, offer: list[str]) -> Probe:
    result = await ctx.attempt(subprotocols=offer)
    if isinstance(result, HandshakeRefused):
        raise Failed(f"refused the handshake with HTTP {result.status}")
    if isinstance(result, HandshakeFailed):
        raise Failed(f"the handshake failed: {result.reason}")
    return result


async def _completed_then_closed(ctx: Context, offer: list[str] | None, what: str) -> str:
    result = await ctx.attempt(subprotocols=offer)
    if isinstance(result, HandshakeRefused):
        raise Failed(
            f"refused the handshake with HTTP {result.status} ({what}); OCPP-J wants it "
            "completed without Sec-WebSocket-Protocol, then the connection closed"
        )
    if isinstance(result, HandshakeFailed):
        # websockets refuses a 101 naming a subprotocol the station did not offer.
        raise Failed(f"the handshake failed ({what}): {result.reason}")
    if result.subprotocol is not None:
        raise Failed(f"chose {result.subprotocol!r} ({what})")
    if not await result.wait_closed(ctx.target.timeout):
        raise Failed(
            f"kept the connection open for {ctx.target.timeout:g} s without a subprotocol "
            f"({what}); OCPP-J wants it closed at once"
        )
    return f"101 without Sec-WebSocket-Protocol, then close {result.close_code}"
