"""The current time as OCPP writes it, for ``currentTime`` fields and the like."""

from __future__ import annotations

import time

__all__ = ["current_time"]

# [(whole second, its text)]: every station asks the time in every Heartbeat, and
# formatting a datetime costs more than the rest of the answer. Re-formatted once a
# second at most; the pair is replaced whole, so threads never see half of one.
_last: list[tuple[int, str]] = [(-1, "")]


def current_time() -> str:
    """The current UTC time to the second, RFC 3339: ``"2026-11-27T10:00:00Z"``.

    Handlers answering a Heartbeat or a BootNotification pass it as ``current_time``.
    """
    second = int(time.time())
    cached_second, text = _last[0]
    if cached_second != second:
        text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
        _last[0] = (second, text)
    return text
