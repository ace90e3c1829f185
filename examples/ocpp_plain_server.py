"""A CSMS written the way the ``ocpp`` package's own examples write one.

One ``ChargePoint`` per connection on ``websockets.serve``, with ``@on`` handlers for
BootNotification and Heartbeat, for OCPP 1.6, 2.0.1 and 2.1; nothing of csms_kit.
The docs run ``csms-kit conformance`` against it (docs/conformance.md), and so do
the tests:

    python examples/ocpp_plain_server.py --port 9100
    csms-kit conformance ws://127.0.0.1:9100/
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from datetime import datetime, timezone
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v16.enums import RegistrationStatus
from ocpp.v21 import ChargePoint as ChargePoint21
from ocpp.v21 import call_result as result21
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201
from ocpp.v201.enums import RegistrationStatusEnumType


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


class CentralSystem16(ChargePoint16):
    @on(Action16.boot_notification)
    def on_boot_notification(
        self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any
    ) -> Any:
        return result16.BootNotification(
            current_time=now(), interval=10, status=RegistrationStatus.accepted
        )

    @on(Action16.heartbeat)
    def on_heartbeat(self) -> Any:
        return result16.Heartbeat(current_time=now())


class CentralSystem201(ChargePoint201):
    @on(Action201.boot_notification)
    def on_boot_notification(self, charging_station: Any, reason: str, **kwargs: Any) -> Any:
        return result201.BootNotification(
            current_time=now(), interval=10, status=RegistrationStatusEnumType.accepted
        )

    @on(Action201.heartbeat)
    def on_heartbeat(self) -> Any:
        return result201.Heartbeat(current_time=now())


class CentralSystem21(ChargePoint21):
    @on("BootNotification")
    def on_boot_notification(self, charging_station: Any, reason: str, **kwargs: Any) -> Any:
        return result21.BootNotification(current_time=now(), interval=10, status="Accepted")

    @on("Heartbeat")
    def on_heartbeat(self) -> Any:
        return result21.Heartbeat(current_time=now())


CHARGE_POINTS = {
    "ocpp1.6": CentralSystem16,
    "ocpp2.0.1": CentralSystem201,
    "ocpp2.1": CentralSystem21,
}


async def on_connect(websocket: Any) -> None:
    """For every new charge point that connects, create a ChargePoint and start it."""
    try:
        requested_protocols = websocket.request.headers["Sec-WebSocket-Protocol"]
    except KeyError:
        logging.error("Client hasn't requested any Subprotocol. Closing Connection")
        await websocket.close()
        return
    if websocket.subprotocol:
        logging.info("Protocols Matched: %s", websocket.subprotocol)
    else:
        logging.warning(
            "Protocols Mismatched | Expected Subprotocols: %s, but client supports %s | "
            "Closing connection",
            list(CHARGE_POINTS),
            requested_protocols,
        )
        await websocket.close()
        return

    charge_point_id = websocket.request.path.strip("/")
    charge_point = CHARGE_POINTS[websocket.subprotocol](charge_point_id, websocket)
    await charge_point.start()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000, help="0: any free port")
    arguments = parser.parse_args()
    server = await websockets.serve(
        on_connect, arguments.host, arguments.port, subprotocols=list(CHARGE_POINTS)
    )
    port = server.sockets[0].getsockname()[1]
    print(f"ocpp CSMS listening on ws://{arguments.host}:{port}/", flush=True)
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
