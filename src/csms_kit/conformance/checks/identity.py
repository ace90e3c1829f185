"""The station identity: the last segment of the connection URL, percent-encoded."""

from __future__ import annotations

import secrets
from urllib.parse import quote

from csms_kit.conformance.case import SUITE, Failed
from csms_kit.conformance.context import Context
from csms_kit.conformance.probe import HandshakeFailed, HandshakeRefused
from csms_kit.versions import OcppVersion

_SPEC = "Part 4 §3.1.1 (the connection URL)"
_NOT_16 = {OcppVersion.V16: "a rule of OCPP 2.x Part 4, not of OCPP-J 1.6"}


def _identity(length: int) -> str:
    return ("ck-" + secrets.token_hex(length))[:length]


async def _accepted(ctx: Context, identity: str, encoded: str | None = None) -> str:
    ctx.require_fresh_identities()
    result = await ctx.attempt(identity=identity, encoded=encoded)
    if isinstance(result, HandshakeRefused):
        raise Failed(f"refused identity {identity!r} with HTTP {result.status}")
    if isinstance(result, HandshakeFailed):
        raise Failed(f"the handshake failed for identity {identity!r}: {result.reason}")
    await result.wait_closed(0.2)  # a CSMS that accepts, then drops the station at once
    if result.closed:
        raise Failed(f"accepted identity {identity!r}, then closed ({result.close_code})")
    return f"accepted {len(identity)}-character identity"


async def _refused(ctx: Context, identity: str, rule: str) -> str:
    ctx.require_fresh_identities()
    result = await ctx.attempt(identity=identity)
    if isinstance(result, HandshakeRefused):
        return f"refused with HTTP {result.status}"
    if isinstance(result, HandshakeFailed):
        return f"refused: {result.reason}"
    if await result.wait_closed(ctx.target.quiet):
        return f"completed the handshake, then closed ({result.close_code})"
    raise Failed(f"accepted identity {identity!r}: {rule}")


@SUITE.case(
    "identity-48-characters",
    "an identity of 48 characters is accepted",
    group="identity",
    spec=_SPEC,
    not_for=_NOT_16,
)
async def identity_48(ctx: Context) -> str | None:
    return await _accepted(ctx, _identity(48))


@SUITE.case(
    "identity-49-characters",
    "an identity of 49 characters is refused",
    group="identity",
    spec=_SPEC,
    not_for=_NOT_16,
)
async def identity_49(ctx: Context) -> str | None:
    return await _refused(ctx, _identity(49), "an identity has at most 48 characters")


@SUITE.case(
    "identity-colon",
    "an identity with ':' is refused",
    group="identity",
    spec="Part 4 §3.1.1; 2.0 Part 4 errata §3.1 (no ':')",
    not_for=_NOT_16,
)
async def identity_colon(ctx: Context) -> str | None:
    identity = f"ck:{secrets.token_hex(4)}"
    return await _refused(ctx, identity, "an identity must not contain ':'")


@SUITE.case(
    "identity-percent-encoded",
    "a percent-encoded identity is accepted",
    group="identity",
    spec=_SPEC,
)
async def identity_percent_encoded(ctx: Context) -> str | None:
    # Characters an identifierString allows but a URL path segment needs encoded.
    identity = f"ck*{secrets.token_hex(3)}=a+b|c@d"
    encoded = quote(identity, safe="")
    note = await _accepted(ctx, identity, encoded)
    return f"{note} ({encoded})"
