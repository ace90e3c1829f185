"""The ``csms-kit`` command: ``serve`` the demo CSMS, or run the ``demo``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from csms_kit.demo.run import demo, serve_demo

__all__ = ["main"]

# The help is read in a terminal, so it is plain text, not the module's reST docstring.
_DESCRIPTION = (
    "Try csms_kit: serve a demo CSMS that accepts any station, or run it together with "
    "simulated stations of OCPP 1.6, 2.0.1 and 2.1."
)
_EPILOG = "Run 'csms-kit COMMAND --help' for the options of a command."

# (quiet, verbose) log levels: serve logs each station's connection at INFO; demo
# prints its own progress, so it logs only what went wrong unless asked for more.
_LOG_LEVELS = {"serve": (logging.INFO, logging.DEBUG), "demo": (logging.WARNING, logging.INFO)}


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
    for name, command in (("serve", serve), ("demo", demo)):
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
            asyncio.run(serve_demo(arguments.host, arguments.port))
            return 0
        return asyncio.run(demo(arguments.stations, arguments.duration, arguments.pace))
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 0


if __name__ == "__main__":
    sys.exit(main())
