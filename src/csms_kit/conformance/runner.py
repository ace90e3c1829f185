"""Running the suite against one CSMS: which cases, for which versions, in which order.

For each OCPP version of the run, the runner first asks the CSMS whether it speaks
it (a handshake offering only that version). A version the CSMS does not speak is
skipped as a whole, unless the run asked for it by name: then its cases run and
fail. Per-version cases run version by version; version-free cases run after them,
the security ones last.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Sequence

from csms_kit.conformance import checks as _checks  # noqa: F401 - registers the cases
from csms_kit.conformance.case import SUITE, Case, CaseResult, Failed, Outcome, Skipped, Suite
from csms_kit.conformance.context import Context
from csms_kit.conformance.probe import HandshakeFailed, HandshakeRefused
from csms_kit.conformance.report import Report
from csms_kit.conformance.target import Target
from csms_kit.versions import OcppVersion

__all__ = ["run_suite"]

_ALL_VERSIONS = (OcppVersion.V16, OcppVersion.V201, OcppVersion.V21)


async def run_suite(
    target: Target,
    versions: Sequence[OcppVersion] | None = None,
    *,
    cases: Collection[str] | None = None,
    suite: Suite = SUITE,
    progress: Callable[[CaseResult], None] | None = None,
) -> Report:
    """Run the suite against ``target``; ``versions`` default to all three.

    ``cases`` restricts the run to those case ids. ``progress`` is called with each
    result as it comes.
    """
    started = time.perf_counter()
    explicit = versions is not None
    wanted = tuple(versions) if versions is not None else _ALL_VERSIONS
    spoken = {version: await _speaks(target, version) for version in wanted}
    speaking = [v for v in wanted if spoken[v] is not False] or list(wanted)
    selected = [case for case in suite if cases is None or case.id in cases]
    results: list[CaseResult] = []

    async def record(case: Case, version: OcppVersion | None) -> None:
        result = await _run_case(case, target, version, speaking)
        results.append(result)
        if progress is not None:
            progress(result)

    for version in wanted:
        for case in selected:
            if case.once:
                continue
            if spoken[version] is False and not explicit:
                reason = f"the CSMS does not speak OCPP {version}"
                results.append(CaseResult(case, version, Outcome.SKIP, reason))
                continue
            await record(case, version)
    ordered = sorted((c for c in selected if c.once), key=lambda c: c.group == "security")
    for case in ordered:
        await record(case, None)
    return Report(
        target.url,
        list(wanted),
        spoken,
        target.profile,
        results,
        time.perf_counter() - started,
    )


async def _speaks(target: Target, version: OcppVersion) -> bool | None:
    """Whether the CSMS chooses ``version`` when offered only it (``None``: cannot tell)."""
    context = Context(target, version, [version])
    try:
        result = await context.attempt()
    finally:
        await context.close()
    if isinstance(result, (HandshakeRefused, HandshakeFailed)):
        return None
    return result.subprotocol == version.subprotocol


def _missing(case: Case, target: Target) -> str | None:
    """Why the run's options do not allow ``case``, or ``None``."""
    if "basic_auth" in case.needs and target.basic_auth is None:
        return "needs --basic-auth ID:PASSWORD (security profiles 1 and 2)"
    if "tls" in case.needs and not target.secure:
        return "needs a wss:// URL (security profiles 2 and 3)"
    if "client_cert" in case.needs and (target.cert is None or not target.secure):
        return "needs a wss:// URL and --cert/--key (security profile 3)"
    return None


async def _run_case(
    case: Case, target: Target, version: OcppVersion | None, versions: Sequence[OcppVersion]
) -> CaseResult:
    if version is not None and version in case.not_for:
        return CaseResult(case, version, Outcome.SKIP, case.not_for[version])
    missing = _missing(case, target)
    if missing is not None:
        return CaseResult(case, version, Outcome.SKIP, missing)
    context = Context(target, version, versions)
    started = time.perf_counter()
    # Generous: a case waits a few timeouts at most; this only stops a stuck one.
    limit = 6 * target.timeout + 4 * target.quiet + 10
    try:
        note = await asyncio.wait_for(case.run(context), limit)
    except Failed as failed:
        outcome, reason = Outcome.FAIL, failed.reason
    except Skipped as skipped:
        outcome, reason = Outcome.SKIP, skipped.reason
    except asyncio.TimeoutError:
        outcome, reason = Outcome.FAIL, f"the case did not finish within {limit:g} s"
    except Exception as exc:  # the CSMS did something the probe did not expect
        outcome, reason = Outcome.FAIL, f"the probe hit {type(exc).__name__}: {exc}"
    else:
        outcome, reason = Outcome.PASS, note or ""
        violations = context.violations
        if violations:
            more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
            outcome, reason = Outcome.FAIL, violations[0] + more
    finally:
        await context.close()
    return CaseResult(case, version, outcome, reason, time.perf_counter() - started)
