"""A deliberately broken CSMS fails the suite, and the report names each fault."""

from __future__ import annotations

from csms_kit.conformance import Outcome, Target, run_suite
from csms_kit.versions import OcppVersion
from tests.conformance.broken_server import broken_server
from tests.conformance.conftest import FAST

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21

#: (case, version) -> words the failure's reason must hold.
EXPECTED = {
    ("subprotocol-no-match", None): "chose 'ocpp0.9'",
    ("subprotocol-none-offered", None): "kept the connection open",
    ("frame-not-json", V201): "with messageId '0'; expected '-1'",
    ("frame-not-json", V21): "with messageId '0'; expected '-1'",
    ("code-format-violation", V16): "answered FormatViolation: OCPP 1.6 spells it "
    "FormationViolation",
    ("code-format-violation", V201): "answered FormationViolation: OCPP 2.0.1 spells it "
    "FormatViolation",
    ("code-occurrence-violation", V16): "OCPP 1.6 spells it OccurenceConstraintViolation",
    ("code-occurrence-violation", V21): "OCPP 2.1 spells it OccurrenceConstraintViolation",
    ("action-unknown", V201): "with NotSupported; expected NotImplemented",
    ("action-not-supported", V201): "with NotImplemented; expected NotSupported",
    ("boot-gate", V201): "answered a Heartbeat from a station that never sent BootNotification",
    ("message-type-unknown", V16): "answered MessageTypeId 7 with CALLERROR",
    ("message-type-unknown", V21): "answered MessageTypeId 7 with CALLERROR",
}


async def test_faults_are_found_and_named() -> None:
    """Each fault fails its case with a reason that says what was wrong."""
    cases = {case for case, _ in EXPECTED} | {"boot-notification"}
    async with broken_server() as url:
        report = await run_suite(Target(url, **FAST), cases=cases)
    assert not report.ok
    reasons = {
        (r.case.id, r.version): r.reason for r in report.results if r.outcome is Outcome.FAIL
    }
    for key, words in EXPECTED.items():
        assert key in reasons, f"{key} did not fail:\n{report.table()}"
        assert words in reasons[key], f"{key}: {reasons[key]!r}"
    # What the broken server does right still passes: the report is not all red.
    passed = {(r.case.id, r.version) for r in report.results if r.outcome is Outcome.PASS}
    assert {("boot-notification", v) for v in (V16, V201, V21)} <= passed
    table = report.table()
    assert "FAIL  2.0.1    action-unknown" in table
    assert "-> answered an unknown action with NotSupported; expected NotImplemented" in table
