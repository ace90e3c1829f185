"""How strictly payloads are checked: per session, per action, per firmware quirk."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Quirk", "Validation", "ValidationPolicy"]


class Validation(str, enum.Enum):
    """What happens when a payload breaks its JSON schema."""

    #: Refuse it: an incoming CALL is answered with the matching CALLERROR, an
    #: outgoing payload raises :class:`~csms_kit.exceptions.InvalidPayload`.
    ENFORCE = "enforce"
    #: Log a warning and carry on as if it were valid.
    LOG = "log"
    #: Do not validate at all.
    OFF = "off"


@dataclass(frozen=True)
class Quirk:
    """One schema constraint relaxed for a station's known firmware bug.

    ``path`` names the field in the payload by its JSON (camelCase) keys joined with
    dots; arrays are crossed without an index, so ``"meterValue.sampledValue.unit"``
    is the unit of every sampled value. ``drop`` lists the schema keywords to remove
    there, e.g. ``("maxLength",)``, ``("enum",)`` or ``("format",)``; ``"required"``
    makes the field optional and ``"additionalProperties"`` (at the object's path, or
    ``""`` for the payload itself) lets unknown keys through. ``message`` says whether
    the quirk applies to the action's request or to its response.

    A relaxed field still reaches the handler: an enum value outside the list comes as
    a plain ``str``, a missing required field as ``None``, unknown keys are dropped.
    """

    action: str
    path: str
    drop: tuple[str, ...]
    message: Literal["request", "response"] = "request"

    def __post_init__(self) -> None:
        drop = (self.drop,) if isinstance(self.drop, str) else tuple(self.drop)
        object.__setattr__(self, "drop", drop)
        if not drop or not all(isinstance(keyword, str) for keyword in drop):
            raise ValueError("Quirk.drop must name at least one schema keyword")
        if self.message not in ("request", "response"):
            raise ValueError("Quirk.message must be 'request' or 'response'")


@dataclass(frozen=True)
class ValidationPolicy:
    """Validation settings for one session.

    ``default`` applies to every action unless ``per_action`` names it; ``quirks``
    relax single constraints and apply whatever the mode.
    """

    default: Validation = Validation.ENFORCE
    per_action: Mapping[str, Validation] = field(default_factory=dict)
    quirks: tuple[Quirk, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "default", Validation(self.default))
        object.__setattr__(
            self,
            "per_action",
            {str(action): Validation(mode) for action, mode in self.per_action.items()},
        )
        object.__setattr__(self, "quirks", tuple(self.quirks))

    def __hash__(self) -> int:
        return hash((self.default, frozenset(self.per_action.items()), self.quirks))

    def mode_for(self, action: str) -> Validation:
        """The mode that applies to ``action``."""
        return self.per_action.get(action, self.default)

    def quirks_for(self, action: str, message: str) -> tuple[Quirk, ...]:
        """The quirks for one message of one action, in a stable order (a cache key)."""
        return tuple(q for q in self.quirks if q.action == action and q.message == message)
