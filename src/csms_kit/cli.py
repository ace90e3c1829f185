"""The ``csms-kit`` command: ``serve`` the demo CSMS, or run the ``demo``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from csms_kit.demo.run import demo, serve_demo

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="csms-kit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the demo CSMS (accepts any station)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=9000, help="port to listen on")
    demo = commands.add_parser("demo", help="run the demo CSMS with simulated stations")
    demo.add_argument("--stations", type=int, default=300, help="simulated stations")
    demo.add_argument("--duration", type=float, default=20.0, help="seconds to run")
    demo.add_argument(
        "--pace", type=float, default=2.0, help="seconds between a station's messages"
    )
    for command in (serve, demo):
        command.add_argument("-v", "--verbose", action="store_true", help="log more")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``csms-kit`` console script."""
    arguments = _parser().parse_args(argv)
    quiet, loud = (
        (logging.INFO, logging.DEBUG)
        if arguments.command == "serve"
        else (
            logging.WARNING,
            logging.INFO,
        )
    )
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
