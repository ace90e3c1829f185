"""``csms-kit conformance URL``: the command line of the conformance checker."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from csms_kit.conformance.case import SUITE
from csms_kit.conformance.runner import run_suite
from csms_kit.conformance.target import Target
from csms_kit.versions import OcppVersion

__all__ = ["EXIT_FAILED", "EXIT_USAGE", "add_parser", "run"]

#: Exit statuses: 0 when every case passed or was skipped.
EXIT_FAILED, EXIT_USAGE = 1, 2

_DESCRIPTION = (
    "Check any CSMS against the OCPP-J rules: connect to URL (the OCPP-J endpoint; "
    "stations connect to URL/<identity>) as a station, send well-formed and malformed "
    "frames, and print a table of the cases, each with its source in the OCPP "
    "documents and, where one exists, the OCTT test case id. Exit status: 0 if no "
    "case failed, 1 if one did, 2 for bad options."
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``conformance`` command to the ``csms-kit`` sub-parsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "conformance",
        help="check a CSMS against the OCPP-J rules and print a pass/fail table",
        description=_DESCRIPTION,
    )
    parser.add_argument("url", nargs="?", help="the CSMS's OCPP-J endpoint, ws:// or wss://")
    parser.add_argument(
        "--version",
        dest="versions",
        action="append",
        choices=[v.value for v in OcppVersion],
        metavar="V",
        help="an OCPP version to check: 1.6, 2.0.1 or 2.1; repeat for several "
        "(default: every version the CSMS speaks)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--basic-auth",
        metavar="ID:PASSWORD",
        help="connect as station ID with this password (security profiles 1 and 2) "
        "and run the Basic-auth cases",
    )
    parser.add_argument(
        "--cafile", metavar="F", help="CA certificates that sign the CSMS's certificate (wss://)"
    )
    parser.add_argument(
        "--cert", metavar="F", help="the station's client certificate (security profile 3)"
    )
    parser.add_argument("--key", metavar="F", help="the private key of --cert")
    parser.add_argument(
        "--identity",
        metavar="ID",
        help="the station identity to use for every connection (default: a new one per "
        "case; with --basic-auth, its ID; with --cert, give the certificate's CN)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds to wait for an answer (default: %(default)s)",
    )
    parser.add_argument(
        "--quiet-period",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds of silence that count as 'not answered' (default: %(default)s)",
    )
    parser.add_argument(
        "--call-wait",
        type=float,
        default=3.0,
        metavar="S",
        help="seconds to wait for the CSMS to send a CALL of its own (default: %(default)s)",
    )
    parser.add_argument(
        "--case",
        dest="cases",
        action="append",
        metavar="ID",
        help="run only this case (repeat for several; see --list)",
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log at INFO instead of WARNING"
    )
    return parser


def _target(arguments: argparse.Namespace) -> Target:
    basic_auth = None
    if arguments.basic_auth is not None:
        identity, colon, password = arguments.basic_auth.partition(":")
        if not colon or not identity or not password:
            raise ValueError("--basic-auth takes ID:PASSWORD")
        basic_auth = (identity, password)
    if arguments.cert is not None and arguments.identity is None:
        raise ValueError("with --cert, give --identity: the CN of the station's certificate")
    if min(arguments.timeout, arguments.quiet_period, arguments.call_wait) <= 0:
        raise ValueError("--timeout, --quiet-period and --call-wait must be positive")
    return Target(
        arguments.url,
        basic_auth=basic_auth,
        cafile=arguments.cafile,
        cert=arguments.cert,
        key=arguments.key,
        identity=arguments.identity,
        timeout=arguments.timeout,
        quiet=arguments.quiet_period,
        call_wait=arguments.call_wait,
    )


def _list_cases() -> str:
    lines = []
    for case in SUITE:
        scope = "once" if case.once else "per version"
        lines.append(f"{case.id}  [{case.group}, {scope}]\n    {case.title}\n    {case.source}")
    return "\n".join(lines)


def run(arguments: argparse.Namespace) -> int:
    """Run ``csms-kit conformance`` with parsed ``arguments``; return the exit status."""
    if arguments.list:
        print(_list_cases())
        return 0
    if arguments.url is None:
        print("csms-kit conformance: give the CSMS's URL (or --list)", file=sys.stderr)
        return EXIT_USAGE
    try:
        target = _target(arguments)
    except ValueError as exc:
        print(f"csms-kit conformance: {exc}", file=sys.stderr)
        return EXIT_USAGE
    unknown = sorted(set(arguments.cases or ()) - {case.id for case in SUITE})
    if unknown:
        print(f"csms-kit conformance: no such case: {', '.join(unknown)}", file=sys.stderr)
        return EXIT_USAGE
    versions = None
    if arguments.versions:
        versions = [OcppVersion.parse(v) for v in dict.fromkeys(arguments.versions)]
    report = asyncio.run(run_suite(target, versions, cases=arguments.cases))
    print(report.to_json() if arguments.json else report.table())
    return 0 if report.ok else EXIT_FAILED
