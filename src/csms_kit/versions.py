"""The OCPP versions csms_kit speaks, and their WebSocket subprotocol names."""

from __future__ import annotations

import enum


class OcppVersion(str, enum.Enum):
    """An OCPP version, valued by its number as the spec writes it."""

    V16 = "1.6"
    V201 = "2.0.1"
    V21 = "2.1"

    @property
    def subprotocol(self) -> str:
        """The ``Sec-WebSocket-Protocol`` token, e.g. ``"ocpp2.0.1"``."""
        return "ocpp" + self.value

    @property
    def package(self) -> str:
        """Name of the ``ocpp`` package's module for this version, e.g. ``"v201"``."""
        return "v" + self.value.replace(".", "")

    @classmethod
    def parse(cls, value: OcppVersion | str) -> OcppVersion:
        """Accept an ``OcppVersion``, ``"2.0.1"`` or ``"ocpp2.0.1"``."""
        if isinstance(value, OcppVersion):
            return value
        text = value.removeprefix("ocpp")
        try:
            return cls(text)
        except ValueError:
            known = ", ".join(v.value for v in cls)
            raise ValueError(f"unknown OCPP version {value!r}; expected one of {known}") from None

    def __str__(self) -> str:
        return self.value
