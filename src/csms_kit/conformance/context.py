"""What a case works with: connections to the CSMS, identities, and the checks they share.

A :class:`Context` lives for one case and one OCPP version. It opens probes with the
run's credentials and TLS settings, hands out station identities (a fresh one per
case unless the run fixes it), boots stations, and turns what the CSMS answered
into a pass or a one-line :class:`~csms_kit.conformance.case.Failed` reason.
"""

from __future__ import annotations

import enum
import secrets
import ssl
from collections.abc import Collection, Sequence
from typing import Any

from csms_kit.conformance import payloads, rules
from csms_kit.conformance.case import Failed, Skipped
from csms_kit.conformance.probe import HandshakeFailed, HandshakeRefused, Probe, open_probe
from csms_kit.conformance.target import Target
from csms_kit.versions import OcppVersion

__all__ = ["UNSET", "Context", "describe_answer"]


class _Unset(enum.Enum):
    UNSET = "unset"


#: "Use the run's default" for :meth:`Context.open` options.
UNSET = _Unset.UNSET


def describe_answer(frame: list[Any]) -> str:
    """A frame the CSMS answered with, in a few words (``CALLERROR NotSupported``)."""
    if frame[0] == rules.CALLERROR:
        return f"CALLERROR {frame[2]}"
    return rules.NAMES.get(frame[0], f"MessageTypeId {frame[0]}")


class Context:
    """One case's access to the CSMS, for ``version`` (``None`` for a version-free case).

    ``versions`` are the versions of the run, offered together by version-free cases.
    Resource handling: every probe opened here is closed by :meth:`close`, which the
    runner calls when the case ends, however it ends.
    """

    def __init__(
        self, target: Target, version: OcppVersion | None, versions: Sequence[OcppVersion]
    ) -> None:
        self.target = target
        self.version = version
        self.versions = tuple(versions)
        self._probes: list[Probe] = []
        self._identity: str | None = None

    # -- identities --------------------------------------------------------------------

    @property
    def fresh_identities(self) -> bool:
        """Whether this run may make up station identities (none is fixed)."""
        return self.target.fixed_identity is None

    @property
    def identity(self) -> str:
        """This case's station identity: the run's fixed one, or one made up for the case."""
        fixed = self.target.fixed_identity
        if fixed is not None:
            return fixed
        if self._identity is None:
            self._identity = self.new_identity()
        return self._identity

    @staticmethod
    def new_identity(prefix: str = "ck") -> str:
        """A station identity no CSMS has seen: ``ck-`` and 10 random hex digits."""
        return f"{prefix}-{secrets.token_hex(5)}"

    def require_fresh_identities(self) -> None:
        """Skip the case when the run fixes the identity (a CSMS that knows its stations)."""
        if not self.fresh_identities:
            raise Skipped(
                "needs station identities of its own; this run fixes the identity "
                "(--identity or --basic-auth)"
            )

    # -- connections -------------------------------------------------------------------

    @property
    def offer(self) -> list[str]:
        """The subprotocols offered by default: this version's, or every version of the run."""
        if self.version is not None:
            return [self.version.subprotocol]
        return [v.subprotocol for v in self.versions]

    async def attempt(
        self,
        *,
        identity: str | None = None,
        encoded: str | None = None,
        subprotocols: Sequence[str] | _Unset | None = UNSET,
        headers: Sequence[tuple[str, str]] | _Unset = UNSET,
        tls: ssl.SSLContext | _Unset | None = UNSET,
        auto_answer: bool = True,
    ) -> Probe | HandshakeRefused | HandshakeFailed:
        """Try to connect; the probe, or why the CSMS (or the network) refused.

        ``identity`` defaults to this case's; ``encoded`` replaces the whole last path
        segment. ``headers`` default to the run's Basic-auth credentials for the
        identity, ``tls`` to the run's TLS context, ``subprotocols`` to :attr:`offer`
        (``None``: no ``Sec-WebSocket-Protocol`` header at all).
        """
        identity = self.identity if identity is None else identity
        try:
            probe = await open_probe(
                self.target.station_url(identity, encoded=encoded),
                self.version,
                subprotocols=self.offer if isinstance(subprotocols, _Unset) else subprotocols,
                headers=self.target.credentials(identity)
                if isinstance(headers, _Unset)
                else headers,
                ssl=self.target.ssl_context() if isinstance(tls, _Unset) else tls,
                timeout=self.target.timeout,
                auto_answer=auto_answer,
            )
        except (HandshakeRefused, HandshakeFailed) as refusal:
            return refusal
        self._probes.append(probe)
        return probe

    async def open(self, *, identity: str | None = None, auto_answer: bool = True) -> Probe:
        """Connect with the run's settings; a refusal fails the case."""
        result = await self.attempt(identity=identity, auto_answer=auto_answer)
        if isinstance(result, HandshakeRefused):
            raise Failed(f"the CSMS refused the station's connection: HTTP {result.status}")
        if isinstance(result, HandshakeFailed):
            raise Failed(f"could not connect: {result.reason}")
        if self.version is not None and result.subprotocol != self.version.subprotocol:
            raise Failed(f"the CSMS did not choose {self.version.subprotocol} when offered it")
        return result

    async def boot(self, probe: Probe) -> str:
        """Send BootNotification; the status the CSMS gave (a bad answer fails the case)."""
        assert self.version is not None
        answer = await self.answer(
            probe, "BootNotification", payloads.boot_notification(self.version)
        )
        if answer[0] != rules.CALLRESULT:
            raise Failed(f"BootNotification was answered {describe_answer(answer)}")
        status = answer[2].get("status")
        if status not in ("Accepted", "Pending", "Rejected"):
            raise Failed(f"BootNotification was answered with status {status!r}")
        return str(status)

    async def booted(self, *, identity: str | None = None, auto_answer: bool = True) -> Probe:
        """A connected station the CSMS accepted at boot; skip the case if it was not."""
        probe = await self.open(identity=identity, auto_answer=auto_answer)
        status = await self.boot(probe)
        if status != "Accepted":
            raise Skipped(f"needs a station accepted at boot; the CSMS answered {status}")
        return probe

    async def answer(self, probe: Probe, action: str, payload: Any) -> list[Any]:
        """Send a CALL and return its answer; no answer (or a close) fails the case."""
        message_id = probe.next_id()
        await probe.send_frame([rules.CALL, message_id, action, payload])
        return await self.answer_to(probe, message_id, f"the {action} CALL")

    async def answer_to(self, probe: Probe, message_id: str, what: str) -> list[Any]:
        """The answer carrying ``message_id``; none within the timeout fails the case."""
        frame = await probe.answer(message_id, self.target.timeout)
        if frame is None:
            raise Failed(self.silence(probe, what))
        return frame

    def silence(self, probe: Probe, what: str) -> str:
        """Why nothing came back for ``what``: a close, or plain silence."""
        if probe.closed:
            return f"closed the connection ({probe.close_code}) instead of answering {what}"
        return f"no answer to {what} within {self.target.timeout:g} s"

    async def still_works(self, probe: Probe, after: str) -> None:
        """A Heartbeat is still answered: the connection survived ``after``.

        Any answer will do (a station that has not booted may get SecurityError).
        """
        message_id = probe.next_id()
        await probe.send_frame([rules.CALL, message_id, "Heartbeat", {}])
        if await probe.answer(message_id, self.target.timeout) is None:
            if probe.closed:
                raise Failed(f"closed the connection ({probe.close_code}) after {after}")
            raise Failed(f"stopped answering after {after}")

    async def nothing_back(self, probe: Probe, after: str) -> None:
        """The CSMS sends nothing (CALLs aside) within the quiet period, and still works."""
        frames = await probe.unsolicited(self.target.quiet)
        if frames:
            raise Failed(f"answered {after} with {describe_answer(frames[0])}")
        await self.still_works(probe, after)

    def expect_error(
        self,
        frame: list[Any],
        codes: Collection[str],
        *,
        ids: Collection[str],
        what: str,
    ) -> str:
        """Check a CALLERROR: its messageId in ``ids``, its code one of ``codes``.

        ``codes`` are given in 2.x spelling and checked in this version's spelling.
        Returns a note for the report.
        """
        assert self.version is not None
        wanted = [rules.spelled(code, self.version) for code in codes]
        if frame[0] != rules.CALLERROR:
            raise Failed(f"answered {what} with a {describe_answer(frame)}; expected a CALLERROR")
        message_id, code = frame[1], frame[2]
        if message_id not in ids:
            expected = " or ".join(repr(i) for i in ids)
            raise Failed(f"answered {what} with messageId {message_id!r}; expected {expected}")
        if code not in wanted:
            right = rules.spelled(code, self.version)
            if right != code and right in wanted:
                raise Failed(f"answered {code}: OCPP {self.version} spells it {right}")
            raise Failed(f"answered {what} with {code}; expected {' or '.join(wanted)}")
        return f"[4,{message_id!r},{code!r},...]"

    # -- the end -------------------------------------------------------------------------

    @property
    def violations(self) -> list[str]:
        """Every OCPP-J rule the CSMS's frames broke during the case."""
        return [problem for probe in self._probes for problem in probe.violations]

    async def close(self) -> None:
        """Close every probe the case opened."""
        for probe in self._probes:
            await probe.close()
