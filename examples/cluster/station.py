"""A station for the cluster example: connects, boots, and answers the CSMS until Ctrl-C.

``csms_kit.connect_station`` runs a station that accepts common CSMS requests (Reset
among them)::

    python examples/cluster/station.py ws://127.0.0.1:9001 CP-1 1.6
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

from csms_kit import OcppVersion, connect_station


def boot_payload(version: OcppVersion) -> dict[str, Any]:
    if version is OcppVersion.V16:
        return {"chargePointVendor": "Example", "chargePointModel": "EX-1"}
    return {"chargingStation": {"vendorName": "Example", "model": "EX-1"}, "reason": "PowerUp"}


async def main(url: str, station_id: str, version: OcppVersion) -> None:
    async with connect_station(url, station_id, version) as station:
        answer = await station.call(boot_payload(version), action="BootNotification")
        print(f"{station_id} booted on {url}: {answer.status}", flush=True)
        await asyncio.Event().wait()  # answer the CSMS's calls until Ctrl-C


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="a node's URL, e.g. ws://127.0.0.1:9001")
    parser.add_argument("station_id")
    parser.add_argument("version", nargs="?", default="1.6", help="1.6, 2.0.1 or 2.1")
    arguments = parser.parse_args()
    version = OcppVersion.parse(arguments.version)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(arguments.url, arguments.station_id, version))
