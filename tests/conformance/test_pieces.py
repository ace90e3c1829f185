"""The checker's pieces on their own: the frame rules, the spellings, targets, the registry."""

from __future__ import annotations

from typing import Any

import pytest

from csms_kit.conformance import Target, rules
from csms_kit.conformance.case import Outcome, Suite
from csms_kit.conformance.probe import frame_problems
from csms_kit.versions import OcppVersion

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21


@pytest.mark.parametrize(
    ("frame", "version", "problem"),
    [
        ([4, "1", "FormatViolation", "", {}], V16, "(OCPP 1.6 spells it FormationViolation)"),
        ([4, "1", "FormationViolation", "", {}], V21, "(OCPP 2.1 spells it FormatViolation)"),
        ([4, "1", "GenericError", "x" * 256, {}], V201, "errorDescription of 256 characters"),
        ([4, "1", "GenericError", "", None], V201, "errorDetails is not an object"),
        ([5, "1", "GenericError", "", {}], V201, "CALLRESULTERROR (MessageTypeId 5), which"),
        ([6, "1", "Heartbeat", {}], V16, "SEND (MessageTypeId 6), which OCPP 1.6"),
        ([3, 7, {}], V21, "messageId is not a string of 1 to 36 characters"),
        ([3, "1"], V21, "CALLRESULT of 2 elements instead of 3"),
        ({"a": 1}, V21, "not a non-empty JSON array"),
    ],
)
def test_frame_problems(frame: Any, version: OcppVersion, problem: str) -> None:
    """Each broken frame from a CSMS is described, in the words of its rule."""
    problems, _ = frame_problems(frame, version)
    assert any(problem in text for text in problems), problems


def test_a_misspelled_callerror_is_still_the_answer() -> None:
    """A CALLERROR with a wrong code is a problem and still usable as the answer."""
    problems, usable = frame_problems([4, "1", "FormatViolation", "", {}], V16)
    assert usable and problems
    assert frame_problems([3, "1", {}], V16) == ([], True)


def test_spellings() -> None:
    """The two codes that changed between 1.6 and 2.x, both ways; others unchanged."""
    assert rules.spelled("FormatViolation", V16) == "FormationViolation"
    assert rules.spelled("OccurenceConstraintViolation", V201) == "OccurrenceConstraintViolation"
    assert rules.spelled("NotSupported", V16) == "NotSupported"
    assert "RpcFrameworkError" not in rules.ERROR_CODES[V16]


@pytest.mark.parametrize(
    ("url", "options", "complaint"),
    [
        ("http://h/", {}, "must be ws://"),
        ("ws://h/ocpp?x=1", {}, "query or fragment"),
        ("wss://h/", {"cert": "c.pem"}, "both cert and key"),
        ("ws://h/", {"basic_auth": ("A", "p" * 16), "identity": "B"}, "is its username"),
    ],
)
def test_target_refuses_bad_settings(url: str, options: Any, complaint: str) -> None:
    """A Target that cannot work is refused when made, saying why."""
    with pytest.raises(ValueError, match=complaint):
        Target(url, **options)


def test_station_url_and_profile() -> None:
    """The identity is percent-encoded after the endpoint; the options give the profile."""
    assert Target("ws://h:1/ocpp/").station_url("a b:c") == "ws://h:1/ocpp/a%20b%3Ac"
    assert Target("ws://h:1").station_url("x") == "ws://h:1/x"
    assert Target("ws://h/").profile == 0
    assert Target("ws://h/", basic_auth=("A", "p")).profile == 1
    assert Target("wss://h/", basic_auth=("A", "p")).profile == 2
    assert Target("wss://h/", cert="c", key="k", identity="A").profile == 3


def test_registry_refuses_duplicates_and_unknown_groups() -> None:
    """A case id is registered once; a group must be one the report knows."""
    suite = Suite()

    async def body(ctx: Any) -> None:
        return None

    suite.case("a", "A", group="frames", spec="s")(body)
    with pytest.raises(ValueError, match="registered twice"):
        suite.case("a", "A", group="frames", spec="s")(body)
    with pytest.raises(ValueError, match="unknown group"):
        suite.case("b", "B", group="misc", spec="s")(body)
    suite.case("c", "C", group="handshake", spec="s")(body)
    assert [case.id for case in suite] == ["c", "a"]  # handshake runs before frames
    assert Outcome("fail") is Outcome.FAIL
