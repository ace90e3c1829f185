"""A simple station-side client: connect to a CSMS as a charging station.

The OCPP-J rules are symmetric, so the station side is an
:class:`~csms_kit.role.Role` too, without the CSMS's policy: its
``call()`` sends the station's requests (BootNotification, Heartbeat, ...) and its
``@on`` handlers answer the CSMS's requests; when the CSMS goes away, calls fail with
:class:`~csms_kit.exceptions.CsmsDisconnected`. :class:`StationClient` answers the
common CSMS requests with "Accepted"; subclass it to do more::

    async with connect_station("ws://localhost:9000", "CP-1", "2.0.1") as station:
        await station.call(call.BootNotification(...))

For stations that boot, charge, answer commands and reconnect by themselves, see
:mod:`csms_kit.simulator`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote

import websockets
from websockets.asyncio.client import ClientConnection

from csms_kit.exceptions import CsmsDisconnected
from csms_kit.role import Role
from csms_kit.routing import on
from csms_kit.versions import OcppVersion
from csms_kit.websocket import WebSocketTransport, read_in_small_chunks, redacting_logger

__all__ = ["StationClient", "connect_station", "open_websocket", "station_url"]


class StationClient(Role):
    """The station side of a connection, answering common CSMS requests positively."""

    peer_disconnected = CsmsDisconnected

    @on("RemoteStartTransaction")
    @on("RemoteStopTransaction")
    @on("RequestStartTransaction")
    @on("RequestStopTransaction")
    @on("Reset")
    @on("ChangeAvailability")
    @on("ChangeConfiguration")
    @on("ClearCache")
    @on("TriggerMessage")
    def accept(self, request: Any) -> dict[str, Any]:
        """Answer ``{"status": "Accepted"}`` (plus what 2.x requires)."""
        return {"status": "Accepted"}

    @on("GetConfiguration")
    def get_configuration(self, request: Any) -> dict[str, Any]:
        return {"configurationKey": [], "unknownKey": list(request.key or [])}


@contextlib.asynccontextmanager
async def connect_station(
    url: str,
    station_id: str,
    version: OcppVersion | str = OcppVersion.V16,
    *,
    session_class: type[Role] = StationClient,
    **options: Any,
) -> AsyncIterator[Role]:
    """Connect to ``<url>/<station_id>`` offering ``version``; yield the running session.

    ``options`` go to ``websockets.connect`` (e.g. ``ssl``, ``additional_headers``,
    ``compression``). On exit the connection is closed and the session's tasks end.
    """
    version = OcppVersion.parse(version)
    websocket = await open_websocket(url, station_id, [version.subprotocol], **options)
    session = session_class(station_id, WebSocketTransport(websocket), version)
    task = asyncio.create_task(session.run(), name=f"csms_kit station {station_id}")
    try:
        yield session
    finally:
        await session.close()
        await task


def station_url(url: str, station_id: str) -> str:
    """``<url>/<station_id>``, the identity percent-encoded as OCPP-J wants it."""
    return f"{url.rstrip('/')}/{quote(station_id, safe='')}"


async def open_websocket(
    url: str, station_id: str, subprotocols: Sequence[str], **options: Any
) -> ClientConnection:
    """Open the WebSocket of station ``station_id`` at ``url``, offering ``subprotocols``.

    ``options`` go to ``websockets.connect``; its exceptions pass through.
    """
    options.setdefault("logger", redacting_logger("csms_kit.client"))
    websocket = await websockets.connect(
        station_url(url, station_id),
        subprotocols=[websockets.Subprotocol(p) for p in subprotocols],
        **options,
    )
    read_in_small_chunks(websocket.transport)
    return websocket
