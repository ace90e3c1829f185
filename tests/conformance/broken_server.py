"""A deliberately broken CSMS on plain ``websockets``, for the checker to catch.

Its faults, each one a case of the suite must name:

* it chooses whatever subprotocol the station offers first, even an unknown one,
  and keeps a connection without subprotocol open;
* it answers text it cannot parse with messageId ``"0"`` instead of ``"-1"``;
* it spells error codes the other version's way (``FormatViolation`` on 1.6,
  ``FormationViolation`` on 2.x);
* it swaps NotImplemented and NotSupported;
* it has no boot gate, and answers unknown message types on every version.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

NOW = "2026-11-27T10:00:00Z"
ACTIONS = {"BootNotification", "Heartbeat", "Authorize", "Reset", "DataTransfer"}


def _choose_first(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    return offered[0] if offered else None


def _error(message_id: str, code: str, v16: bool) -> list[Any]:
    # The fault: each version gets the other version's spelling.
    wrong = {
        "FormatViolation": "FormationViolation",
        "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
    }
    if v16:
        wrong = {new: old for old, new in wrong.items()}
    return [4, message_id, wrong.get(code, code), "broken", {}]


def _answer(text: str, v16: bool) -> list[Any] | None:
    try:
        frame = json.loads(text)
    except ValueError:
        return _error("0", "FormatViolation", v16)
    if not isinstance(frame, list) or len(frame) < 2:
        return _error("0", "FormatViolation", v16)
    kind, message_id = frame[0], str(frame[1])
    if kind in (3, 4):
        return None
    if kind != 2:
        return [4, message_id, "MessageTypeNotSupported", "unknown type", {}]
    if len(frame) != 4 or not isinstance(frame[3], dict):
        return _error(message_id, "FormatViolation", v16)
    action, payload = frame[2], frame[3]
    if action not in ACTIONS:
        return [4, message_id, "NotSupported", "unknown action", {}]  # swapped
    if action == "Reset":
        return [4, message_id, "NotImplemented", "no handler", {}]  # swapped
    if action == "BootNotification":
        if not payload:
            return _error(message_id, "OccurrenceConstraintViolation", v16)
        return [3, message_id, {"currentTime": NOW, "interval": 60, "status": "Accepted"}]
    if action == "Heartbeat" and payload:
        return _error(message_id, "FormatViolation", v16)
    return [3, message_id, {"currentTime": NOW}]


async def _handle(connection: ServerConnection) -> None:
    v16 = connection.subprotocol == "ocpp1.6"
    with contextlib.suppress(ConnectionClosed):
        async for message in connection:
            answer = _answer(str(message), v16)
            if answer is not None:
                await connection.send(json.dumps(answer))


@contextlib.asynccontextmanager
async def broken_server() -> AsyncIterator[str]:
    """Run the broken CSMS on a free loopback port; yield its endpoint URL."""
    async with serve(
        _handle, "127.0.0.1", 0, select_subprotocol=_choose_first, compression=None
    ) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ocpp"
