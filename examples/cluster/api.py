"""The HTTP API of the cluster example: it holds no station, yet reaches every one.

It shares the nodes' Redis registry, which lists the stations of every node and
carries a call to the node holding the station. Standard library only: a minimal
HTTP/1.1 server on ``asyncio.start_server`` (one request per connection)::

    GET  /stations              the connected stations: [{station_id, version, node, ...}]
    POST /stations/{id}/reset   send a Reset; 200 with the station's answer
                                404: not connected; 502: the station answered a
                                CALLERROR (its code) or failed; 504: no answer in time

Run it next to the nodes::

    python examples/cluster/api.py --redis redis://localhost:6379/0 --port 8080
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote, urlsplit

from csms_kit import (
    BrokerUnavailable,
    CallError,
    CallFailed,
    CallTimeout,
    OcppVersion,
    StationNotConnected,
)
from csms_kit.cluster import RedisRegistry

log = logging.getLogger("example.api")

#: How long a request may take to arrive, headers and body.
READ_TIMEOUT = 10.0
MAX_HEADERS = 100

Response = tuple[HTTPStatus, Any]


def reset_payload(version: OcppVersion) -> dict[str, Any]:
    """A Reset request for a station of ``version``: 1.6 and 2.x name the types apart."""
    return {"type": "Soft"} if version is OcppVersion.V16 else {"type": "Immediate"}


async def list_stations(registry: RedisRegistry) -> Response:
    records = sorted(await registry.stations(), key=lambda record: record.station_id)
    return HTTPStatus.OK, [record.to_dict() for record in records]


async def reset(registry: RedisRegistry, station_id: str, timeout: float) -> Response:
    """Reset ``station_id``, wherever it is connected; map the failures to HTTP statuses."""
    try:
        record = await registry.record(station_id)
        if record is None:
            raise StationNotConnected(station_id)
        answer = await registry.call_payload(
            station_id, "Reset", reset_payload(record.version), timeout=timeout
        )
    except StationNotConnected as exc:
        return HTTPStatus.NOT_FOUND, {"error": "StationNotConnected", "message": str(exc)}
    except CallError as exc:
        error = {"error": "CallError", "code": exc.raw_code, "description": exc.description}
        return HTTPStatus.BAD_GATEWAY, error
    except CallTimeout as exc:
        return HTTPStatus.GATEWAY_TIMEOUT, {"error": "CallTimeout", "message": str(exc)}
    except BrokerUnavailable as exc:
        return HTTPStatus.SERVICE_UNAVAILABLE, {"error": "BrokerUnavailable", "message": str(exc)}
    except CallFailed as exc:  # disconnected meanwhile, an invalid answer...
        return HTTPStatus.BAD_GATEWAY, {"error": type(exc).__name__, "message": str(exc)}
    return HTTPStatus.OK, answer


async def route(registry: RedisRegistry, method: str, target: str, timeout: float) -> Response:
    parts = [unquote(part) for part in urlsplit(target).path.strip("/").split("/")]
    if parts == ["stations"]:
        if method != "GET":
            return HTTPStatus.METHOD_NOT_ALLOWED, {"error": "use GET"}
        return await list_stations(registry)
    if len(parts) == 3 and parts[0] == "stations" and parts[2] == "reset" and parts[1]:
        if method != "POST":
            return HTTPStatus.METHOD_NOT_ALLOWED, {"error": "use POST"}
        return await reset(registry, parts[1], timeout)
    return HTTPStatus.NOT_FOUND, {"error": f"no route {method} {target}"}


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str]:
    """The method and target of the request; its headers and body are read and dropped."""
    method, target, _ = (await reader.readline()).decode("latin-1").split(" ", 2)
    length = 0
    for _ in range(MAX_HEADERS):
        line = (await reader.readline()).decode("latin-1").strip()
        if not line:
            break
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    else:
        raise ValueError("too many headers")
    if length:
        await reader.readexactly(length)
    return method.upper(), target


async def handle(
    registry: RedisRegistry,
    timeout: float,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    """Answer one HTTP request, then close the connection."""
    try:
        try:
            method, target = await asyncio.wait_for(read_request(reader), READ_TIMEOUT)
        except (ValueError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            status, body = HTTPStatus.BAD_REQUEST, {"error": "bad request"}
        else:
            try:
                status, body = await route(registry, method, target, timeout)
            except Exception:
                log.exception("%s %s failed", method, target)
                status, body = HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"}
            log.info("%s %s -> %d", method, target, status)
        content = json.dumps(body).encode()
        head = (
            f"HTTP/1.1 {status.value} {status.phrase}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(content)}\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(head.encode("latin-1") + content)
        await writer.drain()
    except ConnectionError:
        pass  # the client left
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def run_api(redis_url: str, host: str, port: int, timeout: float) -> None:
    """Serve the API on ``host:port`` until cancelled."""
    # The default node id (host name and process id) keeps each API process apart.
    async with RedisRegistry(redis_url) as registry:

        async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await handle(registry, timeout, reader, writer)

        server = await asyncio.start_server(connected, host, port)
        async with server:
            bound = server.sockets[0].getsockname()[1]
            print(f"API listening on http://{host}:{bound}", flush=True)
            await server.serve_forever()


async def main(arguments: argparse.Namespace) -> int:
    """Run the API; SIGTERM cancels it like Ctrl-C does, so that it closes cleanly."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # no add_signal_handler on Windows
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await run_api(arguments.redis, arguments.host, arguments.port, arguments.call_timeout)
    except BrokerUnavailable as exc:  # Redis is down, or the URL is wrong
        print(f"API: {exc}", file=sys.stderr)
        return 1
    except asyncio.CancelledError:
        print("API stopped", flush=True)
    finally:
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGTERM)
    return 0


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://localhost:6379/0", help="Redis URL")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0: any free port")
    parser.add_argument(
        "--call-timeout", type=float, default=10.0, help="seconds a station has to answer"
    )
    return parser.parse_args()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("csms_kit.websockets").setLevel(logging.WARNING)  # one line per socket
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: main() has closed everything
        sys.exit(asyncio.run(main(parse_arguments())))
