"""A raw OCPP-J station connection for the conformance cases, on plain ``websockets``.

Nothing of csms_kit's own session is used here: the cases send broken frames on
purpose, so a frame goes out exactly as the text given (no serializer, no
validation, no compression), and whatever the CSMS sends back is read as it is.

Every frame the CSMS sends is checked against OCPP-J's shape rules as it arrives
(:attr:`Probe.violations`), whatever the case is looking at; a CALL from the CSMS
is answered at once with CALLERROR ``NotSupported`` unless the case takes the CSMS's
CALLs itself (``auto_answer=False``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl as ssl_module
from collections import deque
from collections.abc import Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from csms_kit.conformance import rules
from csms_kit.versions import OcppVersion

__all__ = [
    "HandshakeFailed",
    "HandshakeRefused",
    "Probe",
    "encode",
    "frame_problems",
    "open_probe",
]

_USER_AGENT = "csms-kit-conformance"
_ANSWERS = frozenset({rules.CALLRESULT, rules.CALLERROR})


class HandshakeRefused(Exception):
    """The CSMS answered the WebSocket handshake with an HTTP status other than 101."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


class HandshakeFailed(Exception):
    """The connection or the handshake failed before any HTTP answer (TCP, TLS, ...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def encode(frame: Any) -> str:
    """A frame as compact JSON text, non-ASCII characters kept as they are."""
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def frame_problems(frame: Any, version: OcppVersion | None) -> tuple[list[str], bool]:
    """What is wrong with a frame the CSMS sent, by OCPP-J's rules for ``version``.

    The flag says whether the frame is still usable (a known type with a messageId):
    a CALLERROR with a misspelled code is a problem, and still the answer it is.
    """
    if type(frame) is not list or not frame:
        return ["sent a frame that is not a non-empty JSON array"], False
    kind = frame[0]
    if type(kind) is not int or kind not in rules.ARITY:
        return [f"sent a frame with MessageTypeId {kind!r}"], False
    name = rules.NAMES[kind]
    if version is not None and kind not in rules.MESSAGE_TYPES[version]:
        problem = f"sent a {name} (MessageTypeId {kind}), which OCPP {version} does not define"
        return [problem], False
    if len(frame) != rules.ARITY[kind]:
        return [f"sent a {name} of {len(frame)} elements instead of {rules.ARITY[kind]}"], False
    message_id = frame[1]
    if type(message_id) is not str or not 0 < len(message_id) <= rules.MAX_MESSAGE_ID:
        return [f"sent a {name} whose messageId is not a string of 1 to 36 characters"], False
    problems: list[str] = []
    if kind in (rules.CALLERROR, rules.CALLRESULTERROR):
        _, _, code, description, details = frame
        if type(code) is not str:
            problems.append(f"sent a {name} whose errorCode is not a string")
        elif version is not None and code not in rules.ERROR_CODES[version]:
            right = rules.spelled(code, version)
            hint = f" (OCPP {version} spells it {right})" if right != code else ""
            problems.append(f"sent errorCode {code!r}, not an OCPP {version} code{hint}")
        if type(description) is not str:
            problems.append(f"sent a {name} whose errorDescription is not a string")
        elif len(description) > rules.MAX_DESCRIPTION:
            problems.append(
                f"sent an errorDescription of {len(description)} characters (at most 255)"
            )
        if type(details) is not dict:
            problems.append(f"sent a {name} whose errorDetails is not an object")
    elif kind in (rules.CALL, rules.SEND):
        if type(frame[2]) is not str or type(frame[3]) is not dict:
            problems.append(f"sent a {name} whose action is not a string or payload an object")
    elif type(frame[2]) is not dict:
        problems.append("sent a CALLRESULT whose payload is not an object")
    return problems, True


async def open_probe(
    url: str,
    version: OcppVersion | None,
    *,
    subprotocols: Sequence[str] | None,
    headers: Sequence[tuple[str, str]] = (),
    ssl: ssl_module.SSLContext | None = None,
    timeout: float = 5.0,
    compression: str | None = None,
    auto_answer: bool = True,
) -> Probe:
    """Open a station connection to ``url``, offering ``subprotocols`` (``None``: no header).

    ``version`` is the OCPP version whose rules the CSMS's frames are checked
    against (``None``: only the rules every version shares). Raises
    :class:`HandshakeRefused` or :class:`HandshakeFailed`.
    """
    try:
        connection = await connect(
            url,
            subprotocols=None if subprotocols is None else [Subprotocol(s) for s in subprotocols],
            additional_headers=list(headers),
            ssl=ssl,
            open_timeout=timeout,
            close_timeout=timeout,
            compression=compression,
            ping_interval=None,  # the cases send their own pings; the CSMS's are answered
            max_size=None,  # what the CSMS sends is the CSMS's business, read it all
            user_agent_header=_USER_AGENT,
        )
    except InvalidStatus as exc:
        body = exc.response.body.decode("utf-8", "replace") if exc.response.body else ""
        raise HandshakeRefused(exc.response.status_code, body.strip()) from None
    except InvalidHandshake as exc:
        raise HandshakeFailed(str(exc) or type(exc).__name__) from None
    except (OSError, EOFError, asyncio.TimeoutError) as exc:
        raise HandshakeFailed(_describe_error(exc)) from None
    return Probe(connection, version, auto_answer=auto_answer)


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, ssl_module.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionResetError):
        return "the CSMS reset the connection"
    return str(exc) or type(exc).__name__


class Probe:
    """One open station connection: send text exactly, read and check what comes back."""

    def __init__(
        self, connection: ClientConnection, version: OcppVersion | None, *, auto_answer: bool
    ) -> None:
        self._connection = connection
        self.version = version
        self.auto_answer = auto_answer
        #: The subprotocol the CSMS chose (``None``: it sent no header).
        self.subprotocol: str | None = connection.subprotocol
        #: OCPP-J rules the CSMS's frames broke on this connection.
        self.violations: list[str] = []
        #: Every CALL the CSMS sent, in order.
        self.csms_calls: list[list[Any]] = []
        self._answers: deque[list[Any]] = deque()
        self._calls: deque[list[Any]] = deque()
        #: The close code and reason once the connection is closed (1006: no close frame).
        self.close_code: int | None = None
        self.close_reason = ""
        self._counter = 0

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    def next_id(self) -> str:
        """A fresh messageId for this connection."""
        self._counter += 1
        return f"ck-{self._counter}"

    # -- sending -----------------------------------------------------------------------

    async def send_text(self, text: str) -> bool:
        """Send one text frame as given; ``False`` if the connection is closed."""
        try:
            await self._connection.send(text)
        except ConnectionClosed as exc:
            self._note_closed(exc)
            return False
        return True

    async def send_frame(self, frame: Any) -> bool:
        """Send ``frame`` as compact JSON; ``False`` if the connection is closed."""
        return await self.send_text(encode(frame))

    async def call(self, action: str, payload: Any, timeout: float) -> list[Any] | None:
        """Send a CALL and return the CALLRESULT or CALLERROR for it (``None``: none came)."""
        message_id = self.next_id()
        if not await self.send_frame([rules.CALL, message_id, action, payload]):
            return None
        return await self.answer(message_id, timeout)

    async def ping(self, timeout: float) -> float | None:
        """Send a WebSocket ping; the seconds until its pong, or ``None`` if none came."""
        try:
            waiter = await self._connection.ping()
            return await asyncio.wait_for(waiter, timeout)
        except ConnectionClosed as exc:
            self._note_closed(exc)
        except asyncio.TimeoutError:
            pass
        return None

    async def close(self) -> None:
        """Close the connection (normal closure) and wait for it to end."""
        with contextlib.suppress(Exception):
            await self._connection.close()
        if self.close_code is None:
            self.close_code = self._connection.close_code or 1006

    # -- receiving -----------------------------------------------------------------------

    async def answer(
        self, message_id: str, timeout: float, kinds: frozenset[int] = _ANSWERS
    ) -> list[Any] | None:
        """The next frame of a type in ``kinds`` carrying ``message_id``, within ``timeout``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for frame in self._answers:
                if frame[0] in kinds and len(frame) > 1 and frame[1] == message_id:
                    self._answers.remove(frame)
                    return frame
            if not await self._read(deadline):
                return None

    async def next_answer(self, timeout: float) -> list[Any] | None:
        """The next frame the CSMS sends that is not a CALL, whatever its messageId."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._answers:
            if not await self._read(deadline):
                return None
        return self._answers.popleft()

    async def unsolicited(self, seconds: float) -> list[list[Any]]:
        """Everything but CALLs the CSMS sends within ``seconds`` (and before)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while await self._read(deadline):
            pass
        frames = list(self._answers)
        self._answers.clear()
        return frames

    async def csms_call(self, timeout: float) -> list[Any] | None:
        """The next CALL the CSMS sends (only with ``auto_answer=False``)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._calls:
            if not await self._read(deadline):
                return None
        return self._calls.popleft()

    async def wait_closed(self, timeout: float) -> bool:
        """Read until the CSMS closes the connection; ``False`` if it is still open."""
        deadline = asyncio.get_running_loop().time() + timeout
        while await self._read(deadline):
            pass
        return self.closed

    async def _read(self, deadline: float) -> bool:
        """Read and file one message; ``False`` at the deadline or once closed."""
        if self.closed:
            return False
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return False
        try:
            # Cancelling recv() loses nothing (websockets documents it as safe).
            message = await asyncio.wait_for(self._connection.recv(), remaining)
        except asyncio.TimeoutError:
            return False
        except ConnectionClosed as exc:
            self._note_closed(exc)
            return False
        await self._file(message)
        return True

    async def _file(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            self.violations.append("sent a binary frame (OCPP-J uses text frames)")
            return
        try:
            frame = json.loads(message, parse_constant=_no_constants)
        except (ValueError, RecursionError):
            self.violations.append("sent text that is not valid JSON")
            return
        problems, usable = frame_problems(frame, self.version)
        self.violations.extend(problems)
        if not usable:
            return
        if frame[0] != rules.CALL:
            self._answers.append(frame)
            return
        self.csms_calls.append(frame)
        if not self.auto_answer:
            self._calls.append(frame)
            return
        await self.send_frame(
            [rules.CALLERROR, frame[1], "NotSupported", "not handled by the conformance probe", {}]
        )

    def _note_closed(self, exc: ConnectionClosed) -> None:
        if exc.rcvd is not None:
            self.close_code, self.close_reason = exc.rcvd.code, exc.rcvd.reason
        else:
            self.close_code, self.close_reason = 1006, "no close frame"
