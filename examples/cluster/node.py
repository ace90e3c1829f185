"""One CSMS node of the cluster example: stations connect here, any process may call them.

Every node shares one Redis registry: it lists who is connected where, and carries
calls from other processes (see ``api.py``) to the stations connected to this node.
Run two or more, each with its own port and node id::

    python examples/cluster/node.py --redis redis://localhost:6379/0 --port 9001 --node-id n1

Stations connect to ``ws://HOST:PORT/<station id>`` with OCPP 1.6, 2.0.1 or 2.1. Stop a
node with Ctrl-C or SIGTERM: it closes its stations' connections and removes them from
the registry at once (a node that dies instead drops out when its lease lapses).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from csms_kit import BrokerUnavailable, OcppVersion, StationSession, current_time, on, serve
from csms_kit.cluster import RedisRegistry

log = logging.getLogger("example.node")


class ExampleCsms(StationSession):
    """Accepts every station; answers Heartbeat and StatusNotification, for any version."""

    @on("BootNotification")
    def boot(self, request: Any) -> dict[str, Any]:
        log.info("%s booted (OCPP %s)", self.station_id, self.version)
        return {"currentTime": current_time(), "interval": 300, "status": "Accepted"}

    @on("Heartbeat")
    def heartbeat(self, request: Any) -> dict[str, Any]:
        return {"currentTime": current_time()}

    @on("StatusNotification")
    def status(self, request: Any) -> dict[str, Any]:
        if self.version is OcppVersion.V16:
            log.info("%s connector %s: %s", self.station_id, request.connector_id, request.status)
        else:
            log.info("%s EVSE %s: %s", self.station_id, request.evse_id, request.connector_status)
        return {}


async def run_node(redis_url: str, host: str, port: int, node_id: str, lease_ttl: float) -> None:
    """Serve stations on ``host:port`` as ``node_id`` until cancelled."""
    async with (
        RedisRegistry(redis_url, node_id=node_id, lease_ttl=lease_ttl) as registry,
        serve(ExampleCsms, host, port, registry=registry) as server,
    ):
        # A test (or a supervisor) waits for this line; with --port 0 it names the port.
        print(f"node {node_id} listening on ws://{host}:{server.port}", flush=True)
        await server.serve_forever()


async def main(arguments: argparse.Namespace) -> int:
    """Run the node; SIGTERM cancels it like Ctrl-C does, so that it closes cleanly."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    # The library never installs signal handlers; an application may.
    with contextlib.suppress(NotImplementedError):  # no add_signal_handler on Windows
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await run_node(
            arguments.redis, arguments.host, arguments.port, arguments.node_id, arguments.lease_ttl
        )
    except BrokerUnavailable as exc:  # Redis is down, or the URL is wrong
        print(f"node {arguments.node_id}: {exc}", file=sys.stderr)
        return 1
    except asyncio.CancelledError:
        print(f"node {arguments.node_id} stopped", flush=True)
    finally:
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGTERM)
    return 0


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://localhost:6379/0", help="Redis URL")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001, help="0: any free port")
    parser.add_argument("--node-id", required=True, help="this node's name in the registry")
    parser.add_argument("--lease-ttl", type=float, default=15.0, help="seconds")
    return parser.parse_args()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("csms_kit.websockets").setLevel(logging.WARNING)  # one line per socket
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: main() has closed everything
        sys.exit(asyncio.run(main(parse_arguments())))
