"""A connector's energy meter: readings that add up (energy grows with power x time)."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from csms_kit.clock import current_time

__all__ = ["Meter", "Sample"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of a meter, at ``timestamp`` (RFC 3339)."""

    energy_wh: float
    power_w: float
    current_a: float
    voltage_v: float
    timestamp: str


@dataclass(slots=True)
class Meter:
    """An AC meter: the energy register advances at the present power, in real time.

    While charging, power stays near ``max_power_w`` (a few percent of noise) and the
    current follows from power, voltage and ``phases``.
    """

    energy_wh: float
    max_power_w: float = 11_000.0
    phases: int = 3
    power_w: float = 0.0
    voltage_v: float = 230.0
    _read_at: float = 0.0

    @classmethod
    def new(cls, max_power_w: float = 11_000.0) -> Meter:
        """A meter that has already counted some energy, as installed ones have."""
        return cls(energy_wh=float(random.randrange(100_000, 5_000_000)), max_power_w=max_power_w)

    def start(self) -> Sample:
        """The vehicle starts drawing power; the reading at that moment."""
        sample = self.read()
        self.power_w = self.max_power_w * random.uniform(0.9, 1.0)
        return sample

    def stop(self) -> Sample:
        """The vehicle stops drawing power; the reading at that moment."""
        sample = self.read()
        self.power_w = 0.0
        return sample

    def read(self) -> Sample:
        """Advance the register to now and read every value."""
        now = time.monotonic()
        if self._read_at and self.power_w:
            self.energy_wh += self.power_w * (now - self._read_at) / 3600
            self.power_w = min(self.max_power_w, self.power_w * random.uniform(0.98, 1.02))
        self._read_at = now
        self.voltage_v = round(random.uniform(227.0, 233.0), 1)
        current = self.power_w / (self.voltage_v * self.phases)
        return Sample(
            round(self.energy_wh, 1),
            round(self.power_w, 1),
            round(current, 2),
            self.voltage_v,
            current_time(),
        )
