"""The ``csms-kit`` command: ``serve`` the demo CSMS, run the ``demo``, ``call`` a
station or list the ``stations`` of a registry."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

from csms_kit.demo.run import demo, serve_demo
from csms_kit.exceptions import CallError, CallTimeout, CsmsKitError, StationNotConnected

__all__ = ["main"]

# The help is read in a terminal, so it is plain text, not the module's reST docstring.
_DESCRIPTION = (
    "Try csms_kit: serve a demo CSMS that accepts any station, or run it together with "
    "simulated stations of OCPP 1.6, 2.0.1 and 2.1."
)
_EPILOG = "Run 'csms-kit COMMAND --help' for the options of a command."

# (quiet, verbose) log levels: serve logs each station's connection at INFO; demo
# prints its own progress, so it logs only what went wrong unless asked for more.
_LOG_LEVELS = {
    "serve": (logging.INFO, logging.DEBUG),
    "demo": (logging.WARNING, logging.INFO),
    "call": (logging.WARNING, logging.INFO),
    "stations": (logging.WARNING, logging.INFO),
}
#: Exit statuses of ``csms-kit call``, by the error it ends with (1 for any other).
CALL_ERROR, NOT_CONNECTED, TIMED_OUT = 2, 3, 4


def _parser() -> argparse.ArgumentParser:
    # Looked up when needed, not at import: the package's __init__ stays free to import
    # anything without a cycle through this module.
    from csms_kit import __version__  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="csms-kit", description=_DESCRIPTION, epilog=_EPILOG)
    parser.add_argument("--version", action="version", version=f"csms-kit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the demo CSMS (accepts any station)",
        description="Run the demo CSMS. Stations connect to ws://HOST:PORT/<station id>; "
        "stop it with Ctrl-C.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--port", type=int, default=9000, help="port to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--registry",
        default="memory://",
        metavar="URL",
        help="registry shared with other processes: memory://, redis://host:port/db "
        "(default: %(default)s)",
    )
    serve.add_argument(
        "--node-id", default=None, help="this process's name in the registry (default: host:pid)"
    )
    serve.add_argument(
        "--lease-ttl",
        type=float,
        default=15.0,
        help="seconds a dead process's stations stay listed in a shared registry "
        "(default: %(default)s)",
    )
    call = commands.add_parser(
        "call",
        help="send one CALL to a station through a registry and print the answer",
        description="Send ACTION with the JSON PAYLOAD to STATION, wherever it is connected, "
        "and print the answer's payload as JSON. Exit status: 0 answered, 2 CALLERROR, "
        "3 station not connected, 4 timeout, 1 any other error (on standard error).",
    )
    call.add_argument("station", help="the station's identity")
    call.add_argument("action", help="the OCPP action, e.g. Reset")
    call.add_argument("payload", nargs="?", default="{}", help="the JSON payload (default: {})")
    call.add_argument(
        "--registry", required=True, metavar="URL", help="the registry, e.g. redis://host:6379/0"
    )
    call.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait (default: %(default)s)"
    )
    stations = commands.add_parser(
        "stations",
        help="list the stations connected to a registry",
        description="List the connected stations with their node, OCPP version and "
        "connection time.",
    )
    stations.add_argument(
        "--registry", required=True, metavar="URL", help="the registry, e.g. redis://host:6379/0"
    )
    stations.add_argument("--json", action="store_true", help="print JSON, one list")
    demo = commands.add_parser(
        "demo",
        help="run the demo CSMS with simulated stations",
        description="Run the demo CSMS on a free loopback port with simulated stations, "
        "print progress every second, and exit 0 if nothing failed.",
    )
    demo.add_argument(
        "--stations", type=int, default=300, help="simulated stations (default: %(default)s)"
    )
    demo.add_argument(
        "--duration", type=float, default=20.0, help="seconds to run (default: %(default)s)"
    )
    demo.add_argument(
        "--pace",
        type=float,
        default=2.0,
        help="seconds between a station's messages (default: %(default)s)",
    )
    for name, command in (
        ("serve", serve),
        ("demo", demo),
        ("call", call),
        ("stations", stations),
    ):
        quiet, loud = (logging.getLevelName(level) for level in _LOG_LEVELS[name])
        command.add_argument(
            "-v", "--verbose", action="store_true", help=f"log at {loud} instead of {quiet}"
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``csms-kit`` console script; returns the exit status."""
    arguments = _parser().parse_args(argv)
    quiet, loud = _LOG_LEVELS[arguments.command]
    level = loud if arguments.verbose else quiet
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("csms_kit.websockets").setLevel(logging.WARNING)
    try:
        if arguments.command == "serve":
            asyncio.run(
                serve_demo(
                    arguments.host,
                    arguments.port,
                    arguments.registry,
                    arguments.node_id,
                    arguments.lease_ttl,
                )
            )
            return 0
        if arguments.command == "call":
            return asyncio.run(_call(arguments))
        if arguments.command == "stations":
            return asyncio.run(_stations(arguments.registry, arguments.json))
        return asyncio.run(demo(arguments.stations, arguments.duration, arguments.pace))
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 0


async def _call(arguments: argparse.Namespace) -> int:
    from csms_kit.cluster import registry_from_url  # noqa: PLC0415

    try:
        payload: Any = json.loads(arguments.payload)
    except ValueError as exc:
        print(f"csms-kit call: the payload is not JSON: {exc}", file=sys.stderr)
        return 1
    if not isinstance(payload, dict):
        print("csms-kit call: the payload must be a JSON object", file=sys.stderr)
        return 1
    try:
        async with registry_from_url(arguments.registry) as registry:
            answer = await registry.call_payload(
                arguments.station, arguments.action, payload, timeout=arguments.timeout
            )
    except CsmsKitError as exc:
        print(f"csms-kit call: {exc}", file=sys.stderr)
        if isinstance(exc, CallError):
            return CALL_ERROR
        if isinstance(exc, StationNotConnected):
            return NOT_CONNECTED
        return TIMED_OUT if isinstance(exc, CallTimeout) else 1
    print(json.dumps(answer))
    return 0


async def _stations(registry_url: str, as_json: bool) -> int:
    from csms_kit.cluster import registry_from_url  # noqa: PLC0415

    try:
        async with registry_from_url(registry_url) as registry:
            records = sorted(await registry.stations(), key=lambda r: r.station_id)
    except CsmsKitError as exc:
        print(f"csms-kit stations: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps([record.to_dict() for record in records]))
        return 0
    for record in records:
        print(
            f"{record.station_id}\t{record.node}\tOCPP {record.version}\t"
            f"{record.connected_at.isoformat(timespec='seconds')}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
