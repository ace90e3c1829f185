"""CALLs of the station: boot, the boot gate, unknown and unsupported actions, payload errors."""

from __future__ import annotations

from csms_kit.conformance import payloads, rules
from csms_kit.conformance.case import SUITE, Failed
from csms_kit.conformance.context import Context, describe_answer
from csms_kit.versions import OcppVersion

_CODES_SPEC = "OCPP-J 1.6 Table 7, Part 4 Table 8/9 (error codes)"


@SUITE.case(
    "boot-notification",
    "BootNotification is answered with a CALLRESULT and a registration status",
    group="actions",
    spec="OCPP 1.6 §4.2, 2.0.1 B01",
    octt="TC_B_01_CSMS",
)
async def boot_notification(ctx: Context) -> str | None:
    probe = await ctx.open()
    status = await ctx.boot(probe)
    return f"status {status}"


@SUITE.case(
    "boot-gate",
    "a CALL before the station was accepted at boot is answered SecurityError",
    group="actions",
    spec="2.0.1 B02.FR.09, B03.FR.07",
    octt="TC_B_30_CSMS-like (the station has not booted at all)",
    not_for={OcppVersion.V16: "OCPP 1.6 only recommends it (1.6 errata)"},
)
async def boot_gate(ctx: Context) -> str | None:
    ctx.require_fresh_identities()
    probe = await ctx.open()
    before = await ctx.answer(probe, "Heartbeat", {})
    if before[0] == rules.CALLRESULT:
        raise Failed(
            "answered a Heartbeat from a station that never sent BootNotification; "
            "expected CALLERROR SecurityError"
        )
    ctx.expect_error(before, ["SecurityError"], ids=[before[1]], what="a Heartbeat before boot")
    status = await ctx.boot(probe)
    after = await ctx.answer(probe, "Heartbeat", {})
    if status == "Accepted":
        if after[0] != rules.CALLRESULT:
            raise Failed(f"still answered {describe_answer(after)} after accepting the station")
        return "SecurityError before boot; answered once Accepted"
    ctx.expect_error(after, ["SecurityError"], ids=[after[1]], what=f"a Heartbeat when {status}")
    return f"SecurityError before boot and while {status}"


@SUITE.case(
    "action-unknown",
    "a CALL of an action OCPP does not define is answered NotImplemented",
    group="actions",
    spec=_CODES_SPEC,
)
async def action_unknown(ctx: Context) -> str | None:
    probe = await ctx.booted()
    frame = await ctx.answer(probe, "ConformanceProbeNoSuchAction", {})
    return ctx.expect_error(frame, ["NotImplemented"], ids=[frame[1]], what="an unknown action")


@SUITE.case(
    "action-not-supported",
    "a CALL of a known action the CSMS does not handle (Reset) is answered NotSupported",
    group="actions",
    spec=_CODES_SPEC,
)
async def action_not_supported(ctx: Context) -> str | None:
    assert ctx.version is not None
    probe = await ctx.booted()
    action, payload = payloads.csms_only_action(ctx.version)
    frame = await ctx.answer(probe, action, payload)
    if frame[0] == rules.CALLRESULT:
        raise Failed(f"answered a {action} sent by a station with a CALLRESULT")
    return ctx.expect_error(frame, ["NotSupported"], ids=[frame[1]], what=f"a {action} CALL")


@SUITE.case(
    "code-format-violation",
    "a payload with a property the schema does not define: FormationViolation (1.6), "
    "FormatViolation (2.x)",
    group="actions",
    spec=_CODES_SPEC,
)
async def code_format_violation(ctx: Context) -> str | None:
    probe = await ctx.booted()
    frame = await ctx.answer(probe, "Heartbeat", {"conformanceProbe": True})
    if frame[0] == rules.CALLRESULT:
        raise Failed("accepted a Heartbeat with a property its schema does not define")
    return ctx.expect_error(
        frame,
        ["FormatViolation", "PropertyConstraintViolation", "ProtocolError"],
        ids=[frame[1]],
        what="an undefined property",
    )


@SUITE.case(
    "code-occurrence-violation",
    "a payload without a required property: OccurenceConstraintViolation (1.6), "
    "OccurrenceConstraintViolation (2.x), or ProtocolError",
    group="actions",
    spec=_CODES_SPEC,
)
async def code_occurrence_violation(ctx: Context) -> str | None:
    probe = await ctx.booted()
    action, payload = payloads.incomplete_boot_notification()
    frame = await ctx.answer(probe, action, payload)
    if frame[0] == rules.CALLRESULT:
        raise Failed("accepted a BootNotification without its required properties")
    return ctx.expect_error(
        frame,
        ["OccurrenceConstraintViolation", "ProtocolError"],
        ids=[frame[1]],
        what="a missing required property",
    )
