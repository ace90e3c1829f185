"""What a simulated station is made of: :class:`Connector`, :class:`Transaction` and the
charging profiles the CSMS installed (:class:`InstalledProfile`).

Statuses are kept in OCPP 1.6's words (``Available``, ``Preparing``, ``Charging``,
``Finishing``, ``Unavailable``, ...), which say more than 2.x's; the messages of
each version translate them (:mod:`csms_kit.simulator.messages`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from csms_kit.simulator.meter import Meter

__all__ = ["Connector", "InstalledProfile", "Transaction"]


@dataclass(slots=True, eq=False)
class Connector:
    """One connector; in OCPP 2.x, EVSE ``id`` with a single connector (``connectorId`` 1)."""

    id: int
    meter: Meter = field(default_factory=Meter.new)
    #: Its status, in OCPP 1.6's words.
    status: str = "Available"
    #: The status last reported to the CSMS, in the version's words.
    reported: str | None = None
    #: Whether ChangeAvailability left it operative.
    operative: bool = True
    transaction: Transaction | None = None


@dataclass(slots=True, eq=False)
class Transaction:
    """A charging session on one connector."""

    connector: Connector
    id_token: str
    #: 2.x: the idToken's type (``"Central"`` for a token the CSMS sent).
    id_token_type: str
    #: The energy register at the start, in Wh.
    meter_start: int
    #: 1.6: the CSMS's transactionId once StartTransaction is answered; 2.x: the station's.
    id: int | str | None = None
    remote_start_id: int | None = None
    #: The CSMS's verdict on the id token (idTagInfo/idTokenInfo status), once known.
    authorization: str | None = None
    #: 2.x: the seqNo of the next TransactionEvent.
    seq_no: int = 0
    #: Whether its start message was made (a remote start may be refused before that).
    announced: bool = False
    ended: bool = False
    stop_reason: str | None = None
    #: Resolved when the transaction ends: wakes a session waiting for its next reading.
    finished: asyncio.Future[None] | None = None

    def end(self, reason: str) -> None:
        """Mark it ended for ``reason`` (1.6's words) and wake whoever waits on it."""
        self.ended = True
        self.stop_reason = reason
        if self.finished is not None and not self.finished.done():
            self.finished.set_result(None)


@dataclass(frozen=True, slots=True)
class InstalledProfile:
    """A charging profile the CSMS installed, as much of it as the station acts on.

    ``evse_id``: the connector (2.x: EVSE) it applies to, 0 for the whole station;
    ``purpose`` in the words of the station's version.
    """

    id: int
    evse_id: int
    purpose: str
    stack_level: int
