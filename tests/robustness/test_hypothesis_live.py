"""Hypothesis feeds arbitrary frames to a live server, one batch per example.

The frames go over one live connection per OCPP version, kept across examples and
reopened when the server closes it (too many malformed frames in a row). After each
batch a sentinel Heartbeat is sent; its answer comes after every answer to the batch,
since the server reads frames in order and handles CALLs in order. Then:

* every CALL-shaped frame whose messageId can be read (a string of at most 36
  characters without a lone surrogate) got exactly one reply carrying that id;
* nothing else came back but CALLERRORs with id ``"-1"`` (and, on 2.0.1,
  MessageTypeNotSupported for unknown message types, which carries the frame's id);
* a canary station on the same server is still answered.

Hypothesis cannot run examples inside pytest-asyncio's running loop, so these tests
are synchronous and drive an event loop of their own (``asyncio.Runner``), in debug
mode like every other test, and check for leaked tasks themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State
from websockets.typing import Subprotocol

from csms_kit import CsmsServer, StationSession
from tests.robustness.conftest import (
    HEARTBEAT_ANSWER,
    TIMEOUT,
    RobustCsms,
    UnlimitedCsms,
    boot_request,
    fresh_id,
    guarding,
    heartbeat_of,
    start_server,
    status_request,
    url_of,
)

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- the oracle: the answers OCPP-J prescribes ----------------------------------------------


def strict_json(text: str) -> Any:
    """Parse ``text`` as OCPP-J JSON: no NaN or Infinity, no number overflowing; ValueError."""

    def refuse(name: str) -> Any:
        raise ValueError(name)

    def finite(digits: str) -> float:
        value = float(digits)
        if math.isinf(value):
            raise ValueError("overflow")
        return value

    try:
        return json.loads(text, parse_constant=refuse, parse_float=finite)
    except RecursionError:
        raise ValueError("too deep") from None


def readable_id(value: Any) -> str | None:
    """``value`` as a messageId, if it is one: a str of <= 36 chars, no lone surrogate."""
    if type(value) is not str or len(value) > 36:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


def reply_id(text: str, version: str) -> str | None:
    """The messageId of the one reply ``text`` must get, or ``None`` if it gets none."""
    try:
        frame = strict_json(text)
    except ValueError:
        return "-1"
    if type(frame) is not list or not frame:
        return "-1"
    message_id = readable_id(frame[1]) if len(frame) > 1 else None
    if message_id is None:
        message_id = "-1"
    kind = frame[0]
    if type(kind) is not int or kind == 2:
        return message_id  # a CALL, or what may have been one
    if kind in (3, 4):
        return None  # answers are never answered (and we have no CALL outstanding)
    return message_id if version == "2.0.1" else None  # unknown type: 1.6 ignores it


def check_reply_shape(frame: Any) -> None:
    """A reply is a well-formed CALLRESULT or CALLERROR."""
    assert type(frame) is list
    if frame[0] == 3:  # (a station may use "-1" as a messageId of its own)
        assert len(frame) == 3 and type(frame[2]) is dict
    else:
        assert frame[0] == 4 and len(frame) == 5, frame
        _, message_id, code, description, details = frame
        assert type(message_id) is str and type(code) is str and code
        assert type(description) is str and len(description) <= 255
        assert type(details) is dict


# -- the frames -----------------------------------------------------------------------------

ACTIONS = [
    "BootNotification",
    "Heartbeat",
    "StatusNotification",
    "Authorize",
    "DataTransfer",
    "FirmwareStatusNotification",
    "StartTransaction",
    "TransactionEvent",
    "Reset",
    "FooBar",
    "heartbeat",
    "",
]
VALID_CALLS = [
    ("Heartbeat", {}),
    ("BootNotification", boot_request("1.6")),
    ("BootNotification", boot_request("2.0.1")),
    ("StatusNotification", status_request("1.6")),
    ("StatusNotification", status_request("2.0.1")),
    ("Authorize", {"idTag": "TAG"}),
    ("Authorize", {"idToken": {"idToken": "TAG", "type": "Central"}}),
    ("DataTransfer", {"vendorId": "ACME"}),
]
HOSTILE = [
    "[" * 100_000,
    '[2,"big","Heartbeat",{"a":' + "9" * 5000 + "}]",
    '[2,"nan","Heartbeat",{"a":NaN}]',
    '[2,"inf","Heartbeat",{"a":1e400}]',
    '[2,"\\ud800","Heartbeat",{}]',
    '[2,"lone","Heartbeat",{"a":"\\udfff"}]',
    "\ufeff[]",
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities included: json.dumps writes them as NaN, Infinity
    | st.text(max_size=12)  # lone surrogates included: json.dumps escapes them
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
message_ids = (
    st.text(max_size=40)
    | st.sampled_from(["-1", "", "x" * 36, "x" * 37, "\ud800", "\ud83d\ude00"])
    | json_scalars
)
message_types = st.sampled_from([2, 2, 2, 3, 4, 5, 6, 7, 0, -2, "2", 2.0, True, None])


@st.composite
def call_shaped(draw: st.DrawFn) -> str:
    """``[2, id, action, payload]``, valid or not, sometimes with the wrong element count."""
    message_id = draw(message_ids)
    if draw(st.booleans()):
        action, payload = draw(st.sampled_from(VALID_CALLS))
    else:
        action = draw(st.sampled_from(ACTIONS) | st.text(max_size=12) | json_scalars)
        payload = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3) | json_values)
    frame = [2, message_id, action, payload]
    frame = frame[: draw(st.sampled_from([4, 4, 4, 4, 1, 2, 3]))]
    if draw(st.integers(0, 9)) == 0:
        frame.append(draw(json_values))
    return json.dumps(frame)


@st.composite
def typed_frames(draw: st.DrawFn) -> str:
    """Frames of any MessageTypeId, CALLRESULT and CALLERROR shapes included."""
    kind = draw(message_types)
    rest = draw(st.lists(json_values, max_size=4))
    return json.dumps([kind, draw(message_ids), *rest])


frames = (
    call_shaped()
    | typed_frames()
    | st.text(st.characters(exclude_categories=("Cs",)), max_size=40)  # any text
    | json_values.map(json.dumps)  # any JSON
    | st.sampled_from(HOSTILE)
)
batches = st.lists(frames, min_size=1, max_size=12)


# -- the live side ----------------------------------------------------------------------------


class Live:
    """One live connection per version, reopened when the server has closed it."""

    def __init__(self, server: CsmsServer, canary: StationSession) -> None:
        self.server = server
        self.canary = canary
        self.connections: dict[str, ClientConnection] = {}
        self.reconnects = 0
        self.frames = 0
        self.calls_with_id = 0
        self.canary_checked = -1.0
        self.canary_checks = 0

    async def connection(self, version: str) -> ClientConnection:
        ws = self.connections.get(version)
        if ws is not None and ws.state is State.OPEN:
            return ws
        if ws is not None:
            await ws.close()
            self.reconnects += 1
        ws = await connect(
            f"{url_of(self.server)}/{fresh_id('HYPO')}",
            subprotocols=[Subprotocol(f"ocpp{version}")],
            ping_interval=None,
            close_timeout=1,
            open_timeout=TIMEOUT,
        )
        self.connections[version] = ws
        await ws.send(json.dumps([2, "boot", "BootNotification", boot_request(version)]))
        answer = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert answer[:2] == [3, "boot"] and answer[2]["status"] == "Accepted"
        return ws

    async def exchange(self, version: str, texts: list[str], *, exact: bool) -> None:
        """Send ``texts`` and a sentinel; check every reply against the oracle.

        With ``exact``, the server may not close the connection; otherwise it may close
        it with 1002 (too many malformed frames), and replies after that are missing.
        A failing example drops its connection, so that the next one starts clean.
        """
        ws = await self.connection(version)
        try:
            await self._exchange(ws, version, texts, exact=exact)
        except BaseException:
            del self.connections[version]
            await ws.close()
            raise

    async def _exchange(
        self, ws: ClientConnection, version: str, texts: list[str], *, exact: bool
    ) -> None:
        expected = Counter(i for i in (reply_id(t, version) for t in texts) if i is not None)
        self.frames += len(texts)
        self.calls_with_id += sum(n for i, n in expected.items() if i != "-1")
        replies: list[Any] = []
        closed: ConnectionClosed | None = None
        try:
            for text in texts:
                await ws.send(text)
            await self._sentinel(ws, replies, exact=exact)
        except ConnectionClosed as exc:
            closed = exc
        try:  # after a close, the frames received before it are still read
            while closed is not None:
                frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
                check_reply_shape(frame)
                replies.append(frame)
        except ConnectionClosed:
            pass
        got = Counter(frame[1] for frame in replies)
        if closed is None:
            assert got == expected, f"replies {got} != expected {expected} for {texts!r}"
        else:
            assert not exact, f"the server closed the connection: {closed}"
            assert closed.rcvd is not None
            assert (closed.rcvd.code, closed.rcvd.reason) == (1002, "too many malformed frames")
            assert not got - expected, f"unexpected replies {got - expected} for {texts!r}"
        assert not self.canary.ended
        # the canary has the default rate limit too: at most one heartbeat per 0.1 s
        now = asyncio.get_running_loop().time()
        if now - self.canary_checked >= 0.1:
            await heartbeat_of(self.canary)
            self.canary_checked = now
            self.canary_checks += 1

    async def _sentinel(self, ws: ClientConnection, replies: list[Any], *, exact: bool) -> None:
        """Send Heartbeats until one is handled; collect the replies that come before it.

        A handled Heartbeat is answered by the worker that answers every CALL in
        arrival order, so its answer comes after every answer to the batch. A
        Heartbeat over the rate limit is answered at once by the reader instead,
        possibly before CALLs still queued: it proves nothing, so try again later.
        """
        while True:
            sentinel = uuid.uuid4().hex
            await ws.send(json.dumps([2, sentinel, "Heartbeat", {}]))
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
                check_reply_shape(frame)
                if frame[1] == sentinel:
                    break
                replies.append(frame)
            if frame == [3, sentinel, HEARTBEAT_ANSWER]:
                return
            assert not exact, f"the sentinel got {frame}"
            assert frame == [4, sentinel, "GenericError", "rate limit exceeded", {}]
            await asyncio.sleep(0.1)

    async def aclose(self) -> None:
        for ws in self.connections.values():
            await ws.close()


@contextlib.asynccontextmanager
async def live_server(session_class: type[StationSession]) -> AsyncIterator[Live]:
    async with start_server(session_class) as server, guarding(server) as guard:
        live = Live(server, guard.canary)
        try:
            yield live
        finally:
            await live.aclose()
        await guard.check("1.6")
        await guard.check("2.0.1")


async def no_leaked_tasks() -> None:
    """What tests/conftest.py checks for async tests: no task outlives the test."""
    me = asyncio.current_task()
    for _ in range(5):
        await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    assert not leaked, f"tasks leaked by the test: {leaked}"


def run_live(session_class: type[StationSession], exact: bool) -> Live:
    """Run the hypothesis examples against one live server; return the counters."""
    with asyncio.Runner(debug=True) as runner:
        stack = contextlib.AsyncExitStack()
        live = runner.run(stack.enter_async_context(live_server(session_class)))
        try:

            @SETTINGS
            @given(version=st.sampled_from(["1.6", "2.0.1"]), texts=batches)
            @example(version="1.6", texts=["garbage"] * 12 + ['[2,"late","Heartbeat",{}]'])
            @example(version="2.0.1", texts=["[]"] * 10 + ['[2,"late","Heartbeat",{}]'])
            def check(version: str, texts: list[str]) -> None:
                runner.run(asyncio.wait_for(live.exchange(version, texts, exact=exact), 60))

            check()
        finally:
            runner.run(stack.aclose())
        runner.run(no_leaked_tasks())
    return live


def test_every_call_with_a_readable_id_gets_exactly_one_reply() -> None:
    """Without limits: each CALL-shaped frame with a readable id gets exactly one reply."""
    live = run_live(UnlimitedCsms, exact=True)
    assert live.reconnects == 0
    assert live.calls_with_id >= 40, "the strategies produced too few CALLs to judge"
    assert live.canary_checks >= 5


def test_default_limits_close_only_for_malformed_frames() -> None:
    """With the default limits too; the server may only close for malformed frames (1002)."""
    live = run_live(RobustCsms, exact=False)
    assert live.reconnects >= 1, "the explicit examples should have been closed with 1002"
    assert live.calls_with_id >= 40
    assert live.canary_checks >= 5
