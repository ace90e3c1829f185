"""How a simulated station reaches its CSMS: :class:`ConnectOptions` and :func:`open_link`.

Every way a connection attempt can fail ends as one
:class:`~csms_kit.exceptions.ConnectFailed` whose ``kind`` says where it stopped, so
that a load run can count failures by kind.
"""

from __future__ import annotations

import asyncio
import base64
import ssl as ssl_module
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from csms_kit.client import open_websocket
from csms_kit.exceptions import ConnectFailed, UsageError
from csms_kit.versions import OcppVersion

__all__ = ["ConnectOptions", "open_link"]


@dataclass(frozen=True)
class ConnectOptions:
    """How a station connects; one instance can serve any number of stations.

    ``password`` turns on HTTP Basic auth (security profiles 1 and 2) with the
    station's identity as the username; give ``bytes`` for a 1.6 AuthorizationKey
    that is not text. ``ssl`` is the client's :class:`ssl.SSLContext` for ``wss://``:
    the CAs it trusts, and for profile 3 its certificate. ``subprotocols`` are the
    versions offered, in order of preference (default: only the station's own).
    ``compression`` offers permessage-deflate; it is off by default because it costs
    memory on every connection. ``headers`` are added to the handshake request.
    ``proxy``: see the attribute.
    """

    password: str | bytes | None = None
    ssl: ssl_module.SSLContext | None = None
    subprotocols: tuple[str, ...] | None = None
    open_timeout: float = 10.0
    close_timeout: float = 5.0
    compression: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    #: An HTTP or SOCKS proxy URL, ``True`` for the one the environment names, or
    #: ``None`` (the default: reading the environment costs more than a handshake).
    proxy: str | bool | None = None


def _basic(station_id: str, password: str | bytes) -> str:
    secret = password.encode() if isinstance(password, str) else password
    return "Basic " + base64.b64encode(station_id.encode() + b":" + secret).decode("ascii")


async def open_link(
    url: str, station_id: str, version: OcppVersion, options: ConnectOptions
) -> ClientConnection:
    """Open station ``station_id``'s WebSocket to ``url`` speaking ``version``.

    Raises :class:`~csms_kit.exceptions.ConnectFailed` if the attempt fails, or if the
    CSMS chose another version than ``version`` (or none); then nothing stays open.
    A malformed ``url`` raises :class:`~csms_kit.exceptions.UsageError`.
    """
    headers = list(options.headers)
    if options.password is not None:
        headers.append(("Authorization", _basic(station_id, options.password)))
    extra: dict[str, Any] = {} if options.ssl is None else {"ssl": options.ssl}
    try:
        websocket = await open_websocket(
            url,
            station_id,
            options.subprotocols or (version.subprotocol,),
            open_timeout=options.open_timeout,
            close_timeout=options.close_timeout,
            compression="deflate" if options.compression else None,
            additional_headers=headers or None,
            # The CSMS pings; a ping task per station would cost more than the station.
            ping_interval=None,
            proxy=options.proxy,
            **extra,  # wss:// without a context of ours: the system's CAs
        )
    except InvalidURI as exc:
        raise UsageError(f"{url!r} is not a WebSocket URL: {exc}") from None
    except InvalidStatus as exc:
        status = exc.response.status_code
        raise ConnectFailed(
            station_id, url, "handshake", f"HTTP {status} {exc.response.reason_phrase}", status
        ) from None
    except ssl_module.SSLError as exc:
        raise ConnectFailed(station_id, url, "tls", str(exc)) from None
    except (TimeoutError, asyncio.TimeoutError):
        raise ConnectFailed(station_id, url, "timeout", "the handshake timed out") from None
    except InvalidHandshake as exc:
        raise ConnectFailed(station_id, url, "handshake", str(exc) or type(exc).__name__) from None
    except OSError as exc:
        raise ConnectFailed(station_id, url, "refused", str(exc) or type(exc).__name__) from None
    if websocket.subprotocol != version.subprotocol:
        chosen = websocket.subprotocol
        await websocket.close()
        reason = (
            "the CSMS accepted none of the offered OCPP versions"
            if chosen is None
            else f"the CSMS chose {chosen}, but this station speaks {version.subprotocol}"
        )
        raise ConnectFailed(station_id, url, "handshake", reason)
    return websocket
