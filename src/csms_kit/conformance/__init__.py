"""An OCPP-J conformance checker for any CSMS: ``csms-kit conformance URL``.

It connects to a CSMS as a station, over plain ``websockets`` so that crafted frames
go out byte for byte, and runs a suite of cases: subprotocol negotiation, identity
rules, malformed frames and the ``"-1"`` messageId, error codes spelled per
version, NotImplemented vs NotSupported, unknown message types, the 2.1 SEND and
CALLRESULTERROR, the boot gate, pings, over-size frames and, with credentials,
security profiles 1 to 3. Each case names its source in the OCPP documents.

::

    report = await run_suite(Target("ws://localhost:9000/ocpp"))
    print(report.table())

Modules: :mod:`~.case` (the registry and outcomes), :mod:`~.probe` (the raw
station connection), :mod:`~.target` (where and how to connect), :mod:`~.context`
(what a case works with), :mod:`~.checks` (the cases), :mod:`~.runner`,
:mod:`~.report`, :mod:`~.command` (the CLI).
"""

from csms_kit.conformance.case import SUITE, Case, CaseResult, Outcome
from csms_kit.conformance.report import Report
from csms_kit.conformance.runner import run_suite
from csms_kit.conformance.target import Target

__all__ = ["SUITE", "Case", "CaseResult", "Outcome", "Report", "Target", "run_suite"]
