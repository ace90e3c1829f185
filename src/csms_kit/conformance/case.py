"""The case registry: what each conformance case checks and where its rule comes from.

A case is an async function registered with :meth:`Suite.case`. It gets a
:class:`~csms_kit.conformance.context.Context` and either returns (the CSMS passed;
an optional note says what was seen), raises :class:`Failed` with a one-line reason,
or raises :class:`Skipped` when it cannot apply (with the reason why). Every case
names its source: the OCPP-J section or requirement id, and the OCTT test case id
where one exists.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from csms_kit.versions import OcppVersion

if TYPE_CHECKING:
    from csms_kit.conformance.context import Context

__all__ = ["GROUPS", "SUITE", "Case", "CaseResult", "Failed", "Outcome", "Skipped", "Suite"]

#: A case's body: returns an optional note on success, raises Failed or Skipped.
CaseFunction = Callable[["Context"], Awaitable["str | None"]]


class Outcome(str, enum.Enum):
    """How a case ended."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


class Failed(Exception):
    """The CSMS broke the case's rule; ``reason`` says how, in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Skipped(Exception):
    """The case does not apply to this CSMS or this run; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Case:
    """One conformance case and its metadata.

    ``spec`` names the rule (OCPP-J section, table or requirement id); ``octt`` the
    OCA test tool's case id when there is one. ``once`` cases do not depend on the
    OCPP version and run a single time; the others run for each version, except
    those in ``not_for``, which are skipped there with the reason given.
    ``needs`` says which run options the case needs: ``"basic_auth"``, ``"tls"``,
    ``"client_cert"``; without them it is skipped.
    """

    id: str
    title: str
    group: str
    spec: str
    run: CaseFunction = field(repr=False, compare=False)
    octt: str | None = None
    once: bool = False
    not_for: Mapping[OcppVersion, str] = field(default_factory=dict)
    needs: frozenset[str] = frozenset()

    @property
    def source(self) -> str:
        """The spec reference and the OCTT id, as one line."""
        return f"{self.spec}; {self.octt}" if self.octt else self.spec


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one case for one version (``None`` for a ``once`` case)."""

    case: Case
    version: OcppVersion | None
    outcome: Outcome
    reason: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        """Plain data for the JSON report."""
        return {
            "case": self.case.id,
            "title": self.case.title,
            "group": self.case.group,
            "version": None if self.version is None else str(self.version),
            "outcome": self.outcome.value,
            "reason": self.reason,
            "spec": self.case.spec,
            "octt": self.case.octt,
            "seconds": round(self.seconds, 3),
        }


#: The order in which groups of cases run (and show in the report).
GROUPS = ("handshake", "identity", "actions", "frames", "session", "security")


class Suite:
    """An ordered registry of cases: by group (:data:`GROUPS`), then as registered."""

    def __init__(self) -> None:
        self._cases: dict[str, Case] = {}

    def case(
        self,
        id: str,
        title: str,
        *,
        group: str,
        spec: str,
        octt: str | None = None,
        once: bool = False,
        not_for: Mapping[OcppVersion, str] | None = None,
        needs: frozenset[str] = frozenset(),
    ) -> Callable[[CaseFunction], CaseFunction]:
        """Register the decorated function as a case; a duplicate id raises ``ValueError``."""

        def register(function: CaseFunction) -> CaseFunction:
            if id in self._cases:
                raise ValueError(f"conformance case {id!r} is registered twice")
            if group not in GROUPS:
                raise ValueError(f"unknown group {group!r}; expected one of {GROUPS}")
            self._cases[id] = Case(
                id, title, group, spec, function, octt, once, dict(not_for or {}), needs
            )
            return function

        return register

    def __iter__(self) -> Iterator[Case]:
        return iter(sorted(self._cases.values(), key=lambda case: GROUPS.index(case.group)))

    def __len__(self) -> int:
        return len(self._cases)

    def __getitem__(self, id: str) -> Case:
        return self._cases[id]


#: The suite ``csms-kit conformance`` runs (filled by :mod:`csms_kit.conformance.checks`).
SUITE = Suite()
