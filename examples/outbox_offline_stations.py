"""Commands for stations that are offline: queued in a SQLite outbox, delivered when
they come back, in order, and surviving a restart of the CSMS.

Run it::

    python examples/outbox_offline_stations.py [outbox.db]

It queues commands for two stations that are not connected, one of which a newer
command supersedes and one of which expires, then "restarts" the CSMS (a new server and
outbox on the same file), brings the stations online (simulated: a 1.6 and a 2.0.1
one) and prints what became of each command. The same commands go to both versions:
``csms_kit.commands`` builds each for the station's version when it is delivered.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from csms_kit import commands
from csms_kit.demo.csms import DemoCsms
from csms_kit.outbox import Outbox, RawCall
from csms_kit.server import serve
from csms_kit.simulator import simulate_station


async def queue_commands(store: Path) -> list[str]:
    """Submit while the stations are away (no server running at all)."""
    async with Outbox(store) as outbox:
        submitted = [
            await outbox.submit("station_001", commands.ChangeAvailability(operative=False)),
            await outbox.submit(
                "station_001",
                commands.SetConfiguration("HeartbeatInterval", "120"),
                supersede_key="heartbeat",
            ),
            # Replaces the one above while it is still queued: only 300 is delivered.
            await outbox.submit(
                "station_001",
                commands.SetConfiguration("HeartbeatInterval", "300"),
                supersede_key="heartbeat",
            ),
            await outbox.submit("station_002", commands.ChangeAvailability(operative=False)),
            # Gone stale before the station is back: never sent.
            await outbox.submit("station_002", commands.ClearCache(), expires_in=0.5),
            await outbox.submit(
                "station_002", RawCall("DataTransfer", {"vendorId": "acme", "data": "hi"})
            ),
        ]
    return [submission.id for submission in submitted]


async def deliver(store: Path, ids: list[str]) -> int:
    """The CSMS after a restart: stations come back and get what is still due."""
    async with (
        Outbox(store, start_delay=0.2) as outbox,
        serve(DemoCsms, "127.0.0.1", 0, outbox=outbox) as server,
    ):
        url = f"ws://127.0.0.1:{server.port}"
        async with (
            simulate_station(url, "station_001", "1.6"),
            simulate_station(url, "station_002", "2.0.1"),
        ):
            finals = [await outbox.wait(i, timeout=30) for i in ids]
    for final in finals:
        outcome = final.result.get("status") if isinstance(final.result, dict) else final.error
        print(f"{final.station_id}  {final.action:<20} {final.status:<10} {outcome}")
    expected = ["answered", "superseded", "answered", "answered", "expired", "answered"]
    return 0 if [f.status for f in finals] == expected else 1


async def main(store: Path) -> int:
    ids = await queue_commands(store)
    await asyncio.sleep(1.0)  # the stations stay away a while; one command expires
    return await deliver(store, ids)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(scratch) / "outbox.db"
        sys.exit(asyncio.run(main(path)))
