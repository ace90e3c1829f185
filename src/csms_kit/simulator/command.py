"""``csms-kit simulate``: the command-line glue of :func:`~csms_kit.simulator.fleet.run_load`.

Progress goes to standard error, a line a second; the summary to standard output, as
text or (``--json``) as one JSON object. The exit status is 0 when no station saw an
error, 1 otherwise, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
from typing import Any, TextIO

from csms_kit.exceptions import UsageError
from csms_kit.simulator.connect import ConnectOptions
from csms_kit.simulator.fleet import SCENARIOS, Fleet, run_load
from csms_kit.versions import OcppVersion

__all__ = ["add_parser", "run"]


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _rate(text: str) -> float:
    """A rate per second: ``0.5`` or ``1/60``."""
    try:
        numerator, _, denominator = text.partition("/")
        value = float(numerator) / (float(denominator) if denominator else 1.0)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not a rate: {text!r} (e.g. 2, 0.5 or 1/60)") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def _versions(text: str) -> list[OcppVersion]:
    try:
        return [OcppVersion.parse(part.strip()) for part in text.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add ``simulate`` to the ``csms-kit`` subcommands ``commands``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "simulate",
        help="run simulated stations against a CSMS (load, storms)",
        description="Connect N simulated stations to the CSMS at URL (each at URL/<id>), "
        "run a scenario, print progress every second and a summary. Exit status: 0 if "
        "no station saw an error (a CALLERROR, a refused handshake, a timeout, a lost "
        "connection), 1 otherwise.",
    )
    parser.add_argument("url", metavar="URL", help="the CSMS's URL, e.g. ws://127.0.0.1:9000")
    parser.add_argument(
        "--stations", type=_count, default=100, metavar="N", help="how many (default: %(default)s)"
    )
    parser.add_argument(
        "--version",
        type=_versions,
        default=[OcppVersion.V16],
        metavar="V[,V...]",
        help="OCPP version 1.6, 2.0.1 or 2.1; several (comma-separated) are shared out "
        "in turn (default: 1.6)",
    )
    parser.add_argument(
        "--scenario",
        choices=SCENARIOS,
        default="idle",
        help="idle: boot, status, heartbeats; charging: charging sessions over and over; "
        "storm: every connection dropped at once halfway (default: %(default)s)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds to run (default: %(default)s)",
    )
    parser.add_argument(
        "--rate",
        type=_rate,
        default=None,
        metavar="R",
        help="each station's heartbeats and meter readings per second, e.g. 1 or 1/60 "
        "(default: the CSMS's heartbeat interval, a reading a minute)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--id-prefix",
        default="sim-",
        metavar="PREFIX",
        help="station ids are PREFIX<n> (default: %(default)s)",
    )
    parser.add_argument(
        "--connectors",
        type=_count,
        default=1,
        metavar="N",
        help="per station (default: %(default)s)",
    )
    parser.add_argument(
        "--concurrency",
        type=_count,
        default=100,
        metavar="N",
        help="first connection attempts at once (default: %(default)s)",
    )
    parser.add_argument(
        "--call-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds to wait for each answer (default: %(default)s)",
    )
    parser.add_argument(
        "--open-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds to wait for each handshake (default: %(default)s)",
    )
    parser.add_argument(
        "--password", help="HTTP Basic auth password (the username is the station id)"
    )
    parser.add_argument(
        "--cafile", metavar="FILE", help="CA certificates to trust for wss:// (PEM)"
    )
    parser.add_argument(
        "--cert", metavar="FILE", help="client certificate for wss:// (PEM; profile 3)"
    )
    parser.add_argument("--key", metavar="FILE", help="the client certificate's key (PEM)")
    parser.add_argument(
        "--compression", action="store_true", help="offer permessage-deflate (costs memory)"
    )
    return parser


def _ssl_context(arguments: argparse.Namespace) -> ssl.SSLContext | None:
    if not (arguments.cafile or arguments.cert or arguments.url.startswith("wss:")):
        return None
    context = ssl.create_default_context(cafile=arguments.cafile)
    if arguments.cert:
        context.load_cert_chain(arguments.cert, arguments.key)
    return context


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value} ms"


def _text(summary: dict[str, Any]) -> str:
    latency = summary["latency_ms"]
    messages = summary["messages"]
    errors = summary["errors"]
    lines = [
        f"simulate: {summary['stations']} stations (OCPP {', '.join(summary['versions'])}), "
        f"scenario {summary['scenario']}, {summary['seconds']} s",
        f"  online {summary['online']}/{summary['stations']} at the end, "
        f"{summary['ever_online']} ever; {summary['connections']} connections",
        f"  messages {messages['sent']} sent, {messages['received']} received, "
        f"{messages['per_second']}/s",
        f"  round trips {summary['calls']}: "
        + ", ".join(f"{name} {_ms(latency[name])}" for name in ("p50", "p90", "p99", "max")),
        f"  transactions {summary['transactions']['started']} started, "
        f"{summary['transactions']['ended']} ended",
        f"  simulator loop lag at most {summary['loop_lag_ms']['max']} ms",
    ]
    if summary["storm"] is not None:
        back = summary["storm"]["recovered_s"]
        lines.append(
            "  storm: all online again after " + (f"{back} s" if back is not None else "-")
        )
    kinds = ", ".join(f"{kind} {n}" for kind, n in errors["by_kind"].items())
    lines.append(f"  errors {errors['total']}" + (f" ({kinds})" if kinds else ""))
    lines.extend(f"    {text}" for text in errors["first"])
    return "\n".join(lines)


def run(arguments: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``csms-kit simulate`` with its parsed ``arguments``; the exit status."""
    out = out or sys.stdout
    try:
        options = ConnectOptions(
            password=arguments.password,
            ssl=_ssl_context(arguments),
            open_timeout=arguments.open_timeout,
            compression=arguments.compression,
        )
    except (OSError, ssl.SSLError) as exc:
        print(f"csms-kit simulate: cannot load the TLS files: {exc}", file=sys.stderr)
        return 2
    try:
        fleet = Fleet(
            arguments.url,
            arguments.stations,
            arguments.version,
            scenario=arguments.scenario,
            rate=arguments.rate,
            id_prefix=arguments.id_prefix,
            connectors=arguments.connectors,
            options=options,
            concurrency=arguments.concurrency,
            call_timeout=arguments.call_timeout,
        )
    except (UsageError, ValueError) as exc:  # a malformed URL, say
        print(f"csms-kit simulate: {exc}", file=sys.stderr)
        return 2
    interactive = sys.stderr.isatty()

    def progress(line: str) -> None:
        # On a terminal the line is rewritten in place; in a log, one line each second.
        print(
            ("\r\x1b[K" + line) if interactive else line,
            end="" if interactive else "\n",
            file=sys.stderr,
            flush=True,
        )

    summary = asyncio.run(run_load(fleet, arguments.duration, progress=progress))
    if interactive:
        print(file=sys.stderr)
    print(json.dumps(summary) if arguments.json else _text(summary), file=out, flush=True)
    return 0 if summary["ok"] else 1
