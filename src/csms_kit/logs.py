"""Structured fields on the log records csms_kit writes about a station.

Every record about a station carries ``station_id`` (and ``message_id`` where one
message is concerned) as attributes of the :class:`logging.LogRecord`, besides the
text: JSON formatters and ``structlog`` pick them up as fields. csms_kit never
configures logging itself; see the server docs for a JSON logging setup.
"""

from __future__ import annotations

__all__ = ["station_fields"]


def station_fields(station_id: str, message_id: str | None = None) -> dict[str, str]:
    """The ``extra`` of a log call about ``station_id`` (and its message ``message_id``)."""
    if message_id is None:
        return {"station_id": station_id}
    return {"station_id": station_id, "message_id": message_id}
