"""The conformance report: a pass/fail table for people, JSON for scripts."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from csms_kit.conformance.case import CaseResult, Outcome
from csms_kit.versions import OcppVersion

__all__ = ["Report"]

_LABELS = {Outcome.PASS: "PASS", Outcome.FAIL: "FAIL", Outcome.SKIP: "SKIP"}


@dataclass
class Report:
    """Everything one run found: per case and version, the outcome and why.

    ``spoken`` tells, per version of the run, whether the CSMS chose that version
    when offered only it (``None``: the handshake was refused, so it is unknown).
    """

    url: str
    versions: list[OcppVersion]
    spoken: dict[OcppVersion, bool | None]
    profile: int
    results: list[CaseResult] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, outcome: Outcome) -> int:
        return sum(1 for result in self.results if result.outcome is outcome)

    @property
    def ok(self) -> bool:
        """No case failed."""
        return self.count(Outcome.FAIL) == 0

    @property
    def failures(self) -> list[CaseResult]:
        return [result for result in self.results if result.outcome is Outcome.FAIL]

    def summary(self) -> str:
        """``N passed, N failed, N skipped in S s``."""
        counts = Counter(result.outcome for result in self.results)
        return (
            f"{counts[Outcome.PASS]} passed, {counts[Outcome.FAIL]} failed, "
            f"{counts[Outcome.SKIP]} skipped in {self.seconds:.1f} s"
        )

    def table(self, *, verbose: bool = True) -> str:
        """The report as a text table; without ``verbose``, passes show no note."""
        spoken = ", ".join(
            f"{version} {'yes' if said else 'no' if said is False else 'unknown'}"
            for version, said in self.spoken.items()
        )
        lines = [
            f"OCPP-J conformance of {self.url}",
            f"security profile {self.profile}; versions spoken: {spoken}",
            "",
        ]
        width = max([len(r.case.id) for r in self.results] + [4])
        lines.append(f"{'':4}  {'version':7}  {'case':{width}}  source")
        for result in self.results:
            version = "any" if result.version is None else str(result.version)
            lines.append(
                f"{_LABELS[result.outcome]}  {version:7}  {result.case.id:{width}}  "
                f"{result.case.source}"
            )
            if result.reason and (verbose or result.outcome is not Outcome.PASS):
                lines.append(f"{'':4}  {'':7}  -> {result.reason}")
        lines.extend(["", self.summary()])
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "url": self.url,
            "profile": self.profile,
            "versions": [str(v) for v in self.versions],
            "spoken": {str(v): said for v, said in self.spoken.items()},
            "passed": self.count(Outcome.PASS),
            "failed": self.count(Outcome.FAIL),
            "skipped": self.count(Outcome.SKIP),
            "seconds": round(self.seconds, 3),
            "results": [result.to_dict() for result in self.results],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)
