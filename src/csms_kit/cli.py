"""The ``csms-kit`` command: ``serve`` the demo CSMS, run the ``demo``, ``call`` a
station, list the ``stations`` of a registry, look at and act on an ``outbox`` store, or
``simulate`` stations against any CSMS (:mod:`csms_kit.simulator.command`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import typing
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from csms_kit.conformance import command as conformance
from csms_kit.demo.run import demo, serve_demo
from csms_kit.exceptions import (
    CallError,
    CallTimeout,
    CsmsKitError,
    StationNotConnected,
    UsageError,
)
from csms_kit.simulator import command as simulate_command
from csms_kit.stopping import cancel_and_wait

if TYPE_CHECKING:
    from csms_kit.outbox import Outbox, OutboxStore

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
    "simulate": (logging.WARNING, logging.INFO),
    "call": (logging.WARNING, logging.INFO),
    "stations": (logging.WARNING, logging.INFO),
    "conformance": (logging.WARNING, logging.INFO),
    "outbox": (logging.WARNING, logging.INFO),
}
#: Exit statuses of ``csms-kit call``, by the error it ends with (1 for any other).
CALL_ERROR, NOT_CONNECTED, TIMED_OUT = 2, 3, 4
#: Exit status of ``csms-kit outbox`` and ``serve --outbox`` when the outbox store cannot
#: be used (corrupt, unwritable, unreachable, or a URL of no known kind).
STORE_UNUSABLE = 2


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
        help="registry shared with other processes: memory://, redis://host:port/db, "
        "nats://host:port (default: %(default)s)",
    )
    serve.add_argument(
        "--node-id",
        default=None,
        metavar="NAME",
        help="this process's name in the registry; with --workers, worker k is NAME-k "
        "(default: host:pid)",
    )
    serve.add_argument(
        "--lease-ttl",
        type=float,
        default=15.0,
        help="seconds a dead process's stations stay listed in a shared registry "
        "(default: %(default)s)",
    )
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        metavar="N",
        help="worker processes sharing the port (SO_REUSEPORT), each holding its own "
        "stations; more than 1 needs a shared registry (redis:// or nats://) "
        "(default: %(default)s)",
    )
    serve.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics, on the --host address "
        "(needs the prometheus extra); with --workers N, worker k serves them on PORT+k-1 "
        "(default: no metrics)",
    )
    serve.add_argument(
        "--outbox",
        default=None,
        metavar="URL",
        help="deliver the commands queued in this outbox store to stations once they are "
        "connected and accepted: a SQLite file path, sqlite:///file.db or "
        "redis://host:port/db (default: no outbox)",
    )
    serve.add_argument(
        "--health-path",
        default=None,
        metavar="PATH",
        help="answer a plain HTTP GET of PATH (e.g. /healthz) with 200, for load balancer "
        "and Kubernetes probes (default: none)",
    )
    # Set by the parent of --workers on each worker's command line: not for users.
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
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
        "--registry",
        required=True,
        metavar="URL",
        help="the registry, e.g. redis://host:6379/0 or nats://host:4222",
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
        "--registry",
        required=True,
        metavar="URL",
        help="the registry, e.g. redis://host:6379/0 or nats://host:4222",
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
    _outbox_parser(commands)
    conformance.add_parser(commands)
    simulate = simulate_command.add_parser(commands)
    for name, command in (
        ("serve", serve),
        ("demo", demo),
        ("simulate", simulate),
        ("call", call),
        ("stations", stations),
    ):
        quiet, loud = (logging.getLevelName(level) for level in _LOG_LEVELS[name])
        command.add_argument(
            "-v", "--verbose", action="store_true", help=f"log at {loud} instead of {quiet}"
        )
    return parser


def _outbox_parser(commands: Any) -> argparse.ArgumentParser:
    """Add ``csms-kit outbox list|show|cancel|submit`` to the sub-parsers."""
    from csms_kit.outbox.submission import Status  # noqa: PLC0415

    # Options every action takes, after its name: ``csms-kit outbox list --store F``.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        required=True,
        metavar="URL",
        help="the outbox store: a SQLite file path, sqlite:///file.db or redis://host:port/db",
    )
    quiet, loud = (logging.getLevelName(level) for level in _LOG_LEVELS["outbox"])
    common.add_argument(
        "-v", "--verbose", action="store_true", help=f"log at {loud} instead of {quiet}"
    )
    outbox: argparse.ArgumentParser = commands.add_parser(
        "outbox",
        help="list, show, cancel or submit the commands of an outbox store",
        description="Look at and act on an outbox store: the commands queued for stations "
        "that a 'csms-kit serve --outbox' (or an application's Outbox) delivers. "
        "Exit status: 0 done, 1 no such submission (or, for cancel, not pending) or a bad "
        f"payload, {STORE_UNUSABLE} the store cannot be used.",
    )
    actions = outbox.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list",
        parents=[common],
        help="list submissions, newest first",
        description="List submissions, newest first: id, station, action, status, time "
        "submitted, and the error of one that failed.",
    )
    listing.add_argument("--station", metavar="ID", help="only this station's submissions")
    listing.add_argument(
        "--status", choices=typing.get_args(Status), help="only submissions in this status"
    )
    listing.add_argument(
        "--limit",
        type=_positive_int,
        default=100,
        metavar="N",
        help="list at most N (default: %(default)s)",
    )
    listing.add_argument("--json", action="store_true", help="print JSON, one list")
    show = actions.add_parser(
        "show",
        parents=[common],
        help="show one submission",
        description="Show everything the store has about one submission.",
    )
    show.add_argument("id", help="the submission's id")
    show.add_argument("--json", action="store_true", help="print JSON, one object")
    cancel = actions.add_parser(
        "cancel",
        parents=[common],
        help="cancel a pending submission",
        description="Cancel a submission that is still queued or sent (a CALL already sent "
        "cannot be taken back: cancelling it only stops resends). Exit status 1 if it is "
        "unknown or no longer pending.",
    )
    cancel.add_argument("id", help="the submission's id")
    submit = actions.add_parser(
        "submit",
        parents=[common],
        help="queue a CALL for a station and print its submission id",
        description="Queue ACTION with the JSON PAYLOAD for STATION, sent as is (the "
        "payload must suit the OCPP version the station speaks) once the station is "
        "connected and accepted. A serving process notices it within its poll interval.",
    )
    submit.add_argument("station", help="the station's identity")
    submit.add_argument("action", help="the OCPP action, e.g. Reset")
    submit.add_argument("payload", nargs="?", default="{}", help="the JSON payload (default: {})")
    submit.add_argument(
        "--expires-in",
        type=_positive_float,
        default=None,
        metavar="S",
        help="seconds before it expires unsent (default: the outbox's, 24 hours)",
    )
    submit.add_argument(
        "--supersede-key",
        default=None,
        metavar="K",
        help="a key: this submission replaces a queued one of the station with the same key",
    )
    return outbox


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text}")
    return value


def _workers_problem(arguments: argparse.Namespace) -> str | None:
    """Why ``serve --workers N`` cannot run as asked, or None."""
    if arguments.workers == 1:
        return None
    if arguments.registry.partition("://")[0].lower() == "memory":
        return (
            f"--workers {arguments.workers} needs a registry shared by the workers, "
            f"not {arguments.registry}: each worker process would have an in-memory "
            "registry of its own, so a station connected to one worker could not be "
            "reached from another. Use --registry redis://HOST:PORT/DB or nats://HOST:PORT."
        )
    if arguments.port == 0:
        return (
            f"--workers {arguments.workers} needs a fixed --port: with port 0 each "
            "worker would listen on a port of its own."
        )
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``csms-kit`` console script; returns the exit status."""
    arguments = _parser().parse_args(argv)
    if arguments.command == "serve":
        problem = _workers_problem(arguments)
        if problem is not None:
            print(f"csms-kit serve: {problem}", file=sys.stderr)
            return 2
    quiet, loud = _LOG_LEVELS[arguments.command]
    level = loud if arguments.verbose else quiet
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("csms_kit.websockets").setLevel(logging.WARNING)
    try:
        if arguments.command == "serve":
            if arguments.workers > 1:
                return _serve_workers(arguments)
            try:
                asyncio.run(_serve(arguments))
            except _Refusal as refusal:
                print(f"csms-kit serve: {refusal}", file=sys.stderr)
                return refusal.status
            return 0
        if arguments.command == "outbox":
            return asyncio.run(_outbox(arguments))
        if arguments.command == "conformance":
            return conformance.run(arguments)
        if arguments.command == "call":
            return asyncio.run(_call(arguments))
        if arguments.command == "stations":
            return asyncio.run(_stations(arguments.registry, arguments.json))
        if arguments.command == "simulate":
            return simulate_command.run(arguments)
        return asyncio.run(demo(arguments.stations, arguments.duration, arguments.pace))
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 0


class _Refusal(Exception):
    """``csms-kit serve`` cannot start as asked: the message says why, ``status`` is the
    exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def _metrics(host: str, port: int) -> tuple[list[Any], Callable[[], None]]:
    """The metrics instrument, its /metrics endpoint started; and how to stop it."""
    try:
        from prometheus_client import start_http_server  # noqa: PLC0415

        from csms_kit.metrics import PrometheusMetrics  # noqa: PLC0415
    except ImportError:
        raise _Refusal(
            "--metrics-port needs prometheus-client: pip install 'csms-kit[prometheus]'"
        ) from None
    metrics = PrometheusMetrics()
    try:
        # prometheus_client's own server, in a thread: scrapes never wait on the loop.
        server, thread = start_http_server(port, addr=host)
    except OSError as exc:
        raise _Refusal(f"cannot serve metrics on {host}:{port}: {exc}") from None
    print(f"csms_kit metrics on http://{host}:{server.server_port}/metrics", flush=True)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return [metrics], stop


async def _serve(arguments: argparse.Namespace) -> None:
    """Serve until SIGINT or SIGTERM (or until the parent is gone, for a worker)."""
    loop = asyncio.get_running_loop()
    instruments: list[Any] = []
    stop_metrics: Callable[[], None] | None = None
    if arguments.metrics_port is not None:
        instruments, stop_metrics = _metrics(arguments.host, arguments.metrics_port)
    serving = _serve_demo(arguments, instruments)
    task = asyncio.ensure_future(serving)
    stopping = False

    def stop() -> None:
        # Once only: a second cancel would interrupt the graceful close. A worker gets
        # SIGINT twice on Ctrl-C: from the terminal and forwarded by its parent.
        nonlocal stopping
        if not stopping:
            stopping = True
            task.cancel()

    handled: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop)
            handled.append(signum)
    watcher = (
        None
        if arguments.parent_pid is None
        else asyncio.ensure_future(_watch_parent(arguments.parent_pid, stop))
    )
    try:
        await task
    except asyncio.CancelledError:
        if not stopping:
            raise
        print("stopped", file=sys.stderr)
    finally:
        if not task.done():  # we were cancelled ourselves
            stop()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await cancel_and_wait(watcher)
        for handled_signal in handled:
            loop.remove_signal_handler(handled_signal)
        if stop_metrics is not None:
            stop_metrics()


async def _serve_demo(arguments: argparse.Namespace, instruments: list[Any]) -> None:
    """:func:`~csms_kit.demo.run.serve_demo` with the options; exit status 2 for an
    ``--outbox`` store that cannot be used."""
    from csms_kit.outbox import OutboxStoreError  # noqa: PLC0415

    try:
        await serve_demo(
            arguments.host,
            arguments.port,
            arguments.registry,
            arguments.node_id,
            arguments.lease_ttl,
            reuse_port=arguments.reuse_port,
            instruments=instruments,
            outbox=None if arguments.outbox is None else _outbox_store(arguments.outbox),
            health_path=arguments.health_path,
        )
    except OutboxStoreError as exc:
        raise _Refusal(str(exc), STORE_UNUSABLE) from None


def _outbox_store(url: str) -> OutboxStore:
    """The outbox store at ``url``; :class:`_Refusal` (exit status 2) if there is none."""
    from csms_kit.outbox import store_from_url  # noqa: PLC0415

    try:
        return store_from_url(url)
    except UsageError as exc:
        raise _Refusal(str(exc), STORE_UNUSABLE) from None
    except ImportError as exc:  # redis:// without the redis extra
        raise _Refusal(f"outbox store {url}: {exc}", STORE_UNUSABLE) from None


async def _check_outbox_store(url: str) -> None:
    """Open and close the store at ``url``; :class:`_Refusal` if it cannot be used."""
    store = _outbox_store(url)
    try:
        async with store:
            pass
    except CsmsKitError as exc:
        raise _Refusal(str(exc), STORE_UNUSABLE) from None


async def _watch_parent(parent_pid: int, stop: Callable[[], None]) -> None:
    """Stop a worker whose parent is gone (killed with SIGKILL, say)."""
    while True:
        await asyncio.sleep(1)
        if os.getppid() != parent_pid:
            break
    logging.getLogger("csms_kit.workers").warning("parent %d is gone: stopping", parent_pid)
    stop()


def _serve_workers(arguments: argparse.Namespace) -> int:
    """Run ``--workers N`` worker processes; forward SIGINT/SIGTERM; 1 if one failed."""
    from csms_kit.workers import WorkerGroup, worker_command  # noqa: PLC0415

    if arguments.outbox is not None:
        # Each worker would refuse to start; one clear error from the parent instead.
        try:
            asyncio.run(_check_outbox_store(arguments.outbox))
        except _Refusal as refusal:
            print(f"csms-kit serve: {refusal}", file=sys.stderr)
            return refusal.status
    base = arguments.node_id or f"{socket.gethostname()}:{os.getpid()}"
    names = [f"{base}-{k}" for k in range(1, arguments.workers + 1)]
    commands = [
        worker_command(
            host=arguments.host,
            port=arguments.port,
            registry=arguments.registry,
            node_id=name,
            lease_ttl=arguments.lease_ttl,
            verbose=arguments.verbose,
        )
        for name in names
    ]
    if arguments.metrics_port is not None:  # one endpoint per worker process
        for k, command in enumerate(commands):
            port = arguments.metrics_port + k if arguments.metrics_port else 0
            command += ["--metrics-port", str(port)]
    if arguments.outbox is not None:  # every worker delivers to the stations it holds
        for command in commands:
            command += ["--outbox", arguments.outbox]
    if arguments.health_path is not None:  # whichever worker the kernel picks answers
        for command in commands:
            command += ["--health-path", arguments.health_path]
    group = WorkerGroup(commands, names=names)

    def forward(signum: int, frame: Any) -> None:
        group.stop(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        logging.getLogger("csms_kit.workers").info(
            "%d workers on %s:%d, registry %s",
            arguments.workers,
            arguments.host,
            arguments.port,
            arguments.registry,
        )
        return group.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


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


async def _outbox(arguments: argparse.Namespace) -> int:
    """``csms-kit outbox ACTION``: open the store, act, print; the exit status."""
    from csms_kit.outbox import Outbox, OutboxStoreError  # noqa: PLC0415

    name = f"csms-kit outbox {arguments.outbox_command}"
    try:
        # No registry: this outbox never delivers, it only reads and writes the store.
        outbox = Outbox(_outbox_store(arguments.store))
    except _Refusal as refusal:
        print(f"{name}: {refusal}", file=sys.stderr)
        return refusal.status
    try:
        async with outbox:
            act = _OUTBOX_ACTIONS[arguments.outbox_command]
            return await act(outbox, arguments, name)
    except OutboxStoreError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return STORE_UNUSABLE
    except CsmsKitError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1


async def _outbox_list(outbox: Outbox, arguments: argparse.Namespace, name: str) -> int:
    found = await outbox.find(
        station_id=arguments.station, status=arguments.status, limit=arguments.limit
    )
    if arguments.json:
        print(json.dumps([submission.to_dict() for submission in found]))
        return 0
    for submission in found:
        line = (
            f"{submission.id}\t{submission.station_id}\t{submission.action}\t"
            f"{submission.status}\t{submission.submitted_at.isoformat(timespec='seconds')}"
        )
        if submission.status == "failed":
            line += f"\t{submission.error_code}: {submission.error}"
        print(line)
    return 0


async def _outbox_show(outbox: Outbox, arguments: argparse.Namespace, name: str) -> int:
    submission = await outbox.get(arguments.id)
    if submission is None:
        print(f"{name}: no submission {arguments.id!r} in the store", file=sys.stderr)
        return 1
    data = submission.to_dict()
    if arguments.json:
        print(json.dumps(data))
        return 0
    width = max(len(key) for key in data)
    for key, value in data.items():
        if value is not None:
            shown = value if isinstance(value, str) else json.dumps(value)
            print(f"{key.ljust(width)}  {shown}")
    return 0


async def _outbox_cancel(outbox: Outbox, arguments: argparse.Namespace, name: str) -> int:
    cancelled = await outbox.cancel(arguments.id)
    if cancelled is None:
        submission = await outbox.get(arguments.id)
        why = (
            f"no submission {arguments.id!r} in the store"
            if submission is None
            else f"submission {arguments.id} is {submission.status}, not pending"
        )
        print(f"{name}: {why}", file=sys.stderr)
        return 1
    note = ""
    if cancelled.attempts:
        note = " (its CALL was already sent: the station may still act on it)"
    print(f"cancelled {cancelled.id}{note}")
    return 0


async def _outbox_submit(outbox: Outbox, arguments: argparse.Namespace, name: str) -> int:
    from csms_kit.outbox import RawCall  # noqa: PLC0415

    try:
        payload: Any = json.loads(arguments.payload)
    except ValueError as exc:
        print(f"{name}: the payload is not JSON: {exc}", file=sys.stderr)
        return 1
    if not isinstance(payload, dict):
        print(f"{name}: the payload must be a JSON object", file=sys.stderr)
        return 1
    submission = await outbox.submit(
        arguments.station,
        RawCall(arguments.action, payload),
        expires_in=arguments.expires_in,
        supersede_key=arguments.supersede_key,
    )
    print(submission.id)
    return 0


_OUTBOX_ACTIONS: dict[str, Callable[[Outbox, argparse.Namespace, str], Awaitable[int]]] = {
    "list": _outbox_list,
    "show": _outbox_show,
    "cancel": _outbox_cancel,
    "submit": _outbox_submit,
}


if __name__ == "__main__":
    sys.exit(main())
