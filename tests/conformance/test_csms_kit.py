"""csms_kit's own server passes the whole suite, for OCPP 1.6, 2.0.1 and 2.1."""

from __future__ import annotations

from csms_kit.conformance import Outcome, Target, run_suite
from csms_kit.versions import OcppVersion
from tests.conformance.conftest import FAST, csms_kit_server

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21
SECURITY = {
    "basic-auth-valid",
    "basic-auth-wrong-password",
    "basic-auth-username-mismatch",
    "basic-auth-missing",
    "tls-below-1.2",
    "tls-cipher-suites",
    "client-cert-valid",
    "client-cert-missing",
    "client-cert-unknown-ca",
    "client-cert-other-identity",
}
#: The only skips: rules of another version, and the security cases (no options given).
EXPECTED_SKIPS = {
    ("identity-48-characters", V16),
    ("identity-49-characters", V16),
    ("identity-colon", V16),
    ("boot-gate", V16),
    ("message-type-send-before-2.1", V21),
    ("send-not-answered", V16),
    ("send-not-answered", V201),
    ("callresulterror-not-answered", V16),
    ("callresulterror-not-answered", V201),
} | {(case, None) for case in SECURITY}


async def test_every_case_passes_or_does_not_apply() -> None:
    """No failure, and nothing skipped but what cannot apply to a plain ws:// endpoint."""
    async with csms_kit_server() as url:
        report = await run_suite(Target(url, **FAST))
    assert report.ok, report.table()
    assert report.spoken == {V16: True, V201: True, V21: True}
    skipped = {(r.case.id, r.version) for r in report.results if r.outcome is Outcome.SKIP}
    assert skipped == EXPECTED_SKIPS, report.table()
    assert report.count(Outcome.PASS) == len(report.results) - len(EXPECTED_SKIPS)


async def test_notes_say_what_was_seen() -> None:
    """A pass carries what the CSMS did: the "-1" CALLERROR, the 2.1 CALLRESULTERROR, 1009."""
    async with csms_kit_server() as url:
        report = await run_suite(
            Target(url, **FAST),
            [V201, V21],
            cases={"frame-not-json", "invalid-callresult", "oversize-frame", "boot-gate"},
        )
    notes = {(r.case.id, r.version): r.reason for r in report.results}
    assert notes[("frame-not-json", V201)] == "[4,'-1','RpcFrameworkError',...]"
    assert notes[("invalid-callresult", V21)].startswith("[5,")
    assert "TriggerMessage" in notes[("invalid-callresult", V21)]
    assert notes[("invalid-callresult", V201)].startswith("no CALLRESULTERROR")
    assert notes[("oversize-frame", V21)] == "closed with 1009 after a 4 MiB frame"
    assert notes[("boot-gate", V201)] == "SecurityError before boot; answered once Accepted"
