"""Dataclasses for messages the ``ocpp`` package's schemas define but its code lacks.

``ocpp`` 2.1.0 ships the OCPP 2.1 SEND message NotifyPeriodicEventStream as a schema
only; these follow the package's conventions so handlers receive it typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from csms_kit.versions import OcppVersion

__all__ = ["REQUESTS", "NotifyPeriodicEventStream", "StreamDataElementType"]


@dataclass
class StreamDataElementType:
    """One value of a periodic event stream: offset ``t`` from the basetime, value ``v``."""

    t: float
    v: str
    custom_data: dict[str, Any] | None = None


@dataclass
class NotifyPeriodicEventStream:
    """OCPP 2.1 SEND: values of a periodic event stream (never answered)."""

    id: int
    pending: int
    basetime: str
    data: list[StreamDataElementType]
    custom_data: dict[str, Any] | None = None


#: (version, action) -> request dataclass, for actions ``ocpp`` has no class for.
REQUESTS: dict[tuple[OcppVersion, str], type[Any]] = {
    (OcppVersion.V21, "NotifyPeriodicEventStream"): NotifyPeriodicEventStream,
}
