"""pytest fixtures for testing a CSMS built on csms_kit: your sessions, real stations.

pytest loads this plugin by itself once csms_kit is installed (entry point
``pytest11``, name ``csms_kit``). Tell it what to serve, in a ``conftest.py``::

    @pytest.fixture
    def csms_sessions():
        return MySession  # or {"1.6": My16, "2.0.1": My2x, "2.1": My2x}

and a handler test is a few lines::

    async def test_boot_is_accepted(station):
        assert station.booted

Fixtures (each function-scoped; the async ones run on pytest-asyncio):

``csms_sessions``
    What to serve, as :func:`~csms_kit.serve`'s first argument. Override it.
``csms_serve_options``
    Keyword arguments for :func:`~csms_kit.serve` (hooks, registry, ...); ``{}``.
``csms_server``
    A :class:`LiveCsms`: the server running those on a free loopback port.
``csms_server_factory``
    ``await csms_server_factory(sessions, **serve_options)``: more servers, or others.
``ocpp_version``
    The version ``make_station`` and ``station`` speak unless told: ``"1.6"``.
    Parametrize it (``@pytest.mark.parametrize("ocpp_version", ["1.6", "2.1"])``).
``make_station``
    ``await make_station(station_id, version, **options)``: a simulated station,
    online (booted, status reported); see :meth:`LiveCsms.simulate_station`.
``station``
    One such station, ``"CP-1"``.

Resource handling: stations and scripted stations are stopped, then the servers
closed, when the test ends, whether it passed or not.

Error handling: a simulated station that met an error the test did not see (a
CALLERROR answering a heartbeat, a dropped connection) fails the test at teardown,
unless it was made with ``check_errors=False``.

Importing this module imports nothing of csms_kit's beyond the package itself: the
simulator and the WebSocket client are imported when a fixture first needs them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    from typing import TypeAlias

    from csms_kit.admission import SessionFactory
    from csms_kit.registry import ConnectionRegistry
    from csms_kit.server import CsmsServer
    from csms_kit.session import StationSession
    from csms_kit.simulator import SimulatedStation
    from csms_kit.testing import ScriptedStation
    from csms_kit.versions import OcppVersion

    #: What :func:`~csms_kit.serve` serves: a session factory, or one per version.
    Sessions: TypeAlias = SessionFactory | Mapping[OcppVersion | str, SessionFactory]

__all__ = ["CsmsServerFactory", "LiveCsms", "StationFactory"]

#: Seconds the server gives a station's CALLs in progress to be answered at teardown.
_CLOSE_GRACE = 2.0
#: Seconds a simulated station has to come online, unless told.
_ONLINE_TIMEOUT = 10.0


def _async_fixture(function: Callable[..., Any]) -> Any:
    """``pytest_asyncio.fixture`` (works in its strict mode and its auto mode alike),
    or a plain fixture where pytest-asyncio is missing (anyio's plugin runs those)."""
    try:
        import pytest_asyncio  # noqa: PLC0415 - optional
    except ImportError:  # pragma: no cover - pytest-asyncio is a dev dependency
        return pytest.fixture(function)
    return pytest_asyncio.fixture(function)


class LiveCsms:
    """A CSMS serving on loopback for one test: :attr:`server`, :attr:`url`, its stations.

    Made by the ``csms_server`` and ``csms_server_factory`` fixtures, already
    listening. :attr:`url` is where stations connect: ``ws://127.0.0.1:<port>`` (with
    the path prefix, and ``wss://`` if the server was given ``ssl``); a station's
    identity goes after it.

    Resource handling: what :meth:`simulate_station` and :meth:`connect_scripted`
    return is stopped (closed) by :meth:`aclose`, newest first, before the server is
    closed; the fixtures call it when the test ends.
    """

    def __init__(self, server: CsmsServer, *, tls: bool = False) -> None:
        self.server = server
        host, port = server.sockets[0].getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        prefix = server.admission.path_prefix.rstrip("/")
        self.url = f"{'wss' if tls else 'ws'}://{host}:{port}{prefix}"
        self._resources = contextlib.AsyncExitStack()
        self._checked: list[SimulatedStation] = []
        self._station_ids: set[str] = set()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return self.server.port

    @property
    def registry(self) -> ConnectionRegistry:
        """The server's registry: ``call()`` a station, list who is connected..."""
        return self.server.registry

    async def session(self, station_id: str, timeout: float = 5.0) -> StationSession:
        """The session of ``station_id``, waiting up to ``timeout`` seconds for it.

        Fails with ``AssertionError`` if the station does not connect in time.
        """
        try:
            await self.registry.wait_connected(station_id, timeout)
        except TimeoutError:
            raise AssertionError(f"station {station_id!r} is not connected") from None
        session = self.registry.local_session(station_id)
        if session is None:
            raise AssertionError(f"station {station_id!r} is connected to another node")
        return session

    def _new_station_id(self, station_id: str | None) -> str:
        if station_id is None:
            number = 1
            while f"CP-{number}" in self._station_ids:
                number += 1
            station_id = f"CP-{number}"
        self._station_ids.add(station_id)
        return station_id

    async def simulate_station(
        self,
        station_id: str | None = None,
        version: OcppVersion | str = "1.6",
        *,
        station_class: type[SimulatedStation] | None = None,
        wait: bool = True,
        timeout: float = _ONLINE_TIMEOUT,
        check_errors: bool = True,
        **options: Any,
    ) -> SimulatedStation:
        """Start a :class:`~csms_kit.simulator.SimulatedStation` against this server.

        ``station_id`` defaults to the first of ``"CP-1"``, ``"CP-2"``... not taken
        here yet. ``station_class`` is a subclass to use instead (one that answers
        otherwise); ``options`` go to it (``connectors=``, ``options=ConnectOptions(...)``
        for Basic auth or TLS, ``heartbeat_interval=``...).

        With ``wait`` it returns once the station is online (connected, Accepted at
        boot, status reported); a station refused, answered with a CALLERROR or still
        not Accepted after ``timeout`` seconds raises as
        :meth:`~csms_kit.simulator.SimulatedStation.start` does. Without ``wait`` it
        returns at once and the station keeps trying (to test Pending or Rejected).

        ``check_errors``: fail the test at teardown if the station met errors in its
        own tasks (see the module docstring). Turn it off for a test that provokes them.
        """
        from csms_kit.simulator import SimulatedStation  # noqa: PLC0415 - when a fixture needs it

        station_class = station_class or SimulatedStation
        station = station_class(self.url, self._new_station_id(station_id), version, **options)
        await station.start(wait=wait, timeout=timeout)  # stops the station if it fails
        self._resources.push_async_callback(station.stop)
        if check_errors:
            self._checked.append(station)
        return station

    async def connect_scripted(
        self,
        station_id: str | None = None,
        version: OcppVersion | str = "1.6",
        **websockets_options: Any,
    ) -> ScriptedStation:
        """Connect a :class:`~csms_kit.testing.ScriptedStation`: OCPP-J frames by hand.

        As :func:`csms_kit.testing.connect_scripted`, at this server's URL; the
        connection is closed at teardown (if it is still open). The server may not
        have registered the session yet when this returns: :meth:`session` waits.
        """
        from csms_kit.testing import connect_scripted  # noqa: PLC0415 - when a fixture needs it

        scripted = connect_scripted(
            self.url, self._new_station_id(station_id), str(version), **websockets_options
        )
        return await self._resources.enter_async_context(scripted)

    async def aclose(self) -> None:
        """Stop the stations, close the server; then fail if a station met errors."""
        try:
            await self._resources.aclose()
        finally:
            await self.server.close(grace=_CLOSE_GRACE)
        unseen = [
            f"  {station.station_id}: {error!r}"
            for station in self._checked
            for error in station.errors
        ]
        if unseen:
            pytest.fail(
                "simulated stations met errors the test did not see:\n"
                + "\n".join(unseen)
                + "\n(make the station with check_errors=False if the test expects them)",
                pytrace=False,
            )


class CsmsServerFactory(Protocol):
    """The ``csms_server_factory`` fixture's type."""

    async def __call__(
        self,
        sessions: Sessions,
        /,
        **serve_options: Any,
    ) -> LiveCsms: ...


class StationFactory(Protocol):
    """The ``make_station`` fixture's type: :meth:`LiveCsms.simulate_station`'s arguments."""

    async def __call__(
        self,
        station_id: str | None = None,
        version: OcppVersion | str | None = None,
        **options: Any,
    ) -> SimulatedStation: ...


async def _start_csms(sessions: Sessions, **serve_options: Any) -> LiveCsms:
    """Serve ``sessions`` as :func:`~csms_kit.serve` does, on a free port of 127.0.0.1
    unless ``host``, ``port`` or ``sock`` say otherwise; the server is listening."""
    from csms_kit.server import serve  # noqa: PLC0415 - when a fixture needs it

    if "sock" not in serve_options:
        serve_options.setdefault("host", "127.0.0.1")
        serve_options.setdefault("port", 0)
    server = serve(sessions, **serve_options)
    await server.start()
    return LiveCsms(server, tls=serve_options.get("ssl") is not None)


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def csms_sessions() -> Any:
    """What ``csms_server`` serves: a session class, or a mapping from version to one.

    Override it in your ``conftest.py`` (or a test module, or a class).
    """
    pytest.fail(
        "csms_server needs to know what to serve: define a fixture named csms_sessions "
        "that returns your StationSession subclass (or a mapping from OCPP version to "
        "one), in conftest.py or the test module",
        pytrace=False,
    )


@pytest.fixture
def csms_serve_options() -> dict[str, Any]:
    """Keyword arguments for :func:`~csms_kit.serve` (hooks, registry, ...); override it."""
    return {}


@pytest.fixture
def ocpp_version() -> str:
    """The version ``make_station`` and ``station`` speak unless told; parametrize it."""
    return "1.6"


@_async_fixture
async def csms_server_factory() -> AsyncIterator[CsmsServerFactory]:
    """``await csms_server_factory(sessions, **serve_options)``: a :class:`LiveCsms`,
    closed (with its stations) when the test ends, newest first."""
    started: list[LiveCsms] = []

    async def factory(
        sessions: Sessions,
        /,
        **serve_options: Any,
    ) -> LiveCsms:
        live = await _start_csms(sessions, **serve_options)
        started.append(live)
        return live

    try:
        yield factory
    finally:
        failures: list[BaseException] = []
        for live in reversed(started):
            try:
                await live.aclose()
            except BaseException as exc:  # close the others, then report the first
                failures.append(exc)
        if failures:
            raise failures[0]


@_async_fixture
async def csms_server(
    csms_server_factory: CsmsServerFactory,
    csms_sessions: Any,
    csms_serve_options: dict[str, Any],
) -> LiveCsms:
    """The ``csms_sessions`` served with ``csms_serve_options``: a :class:`LiveCsms`."""
    return await csms_server_factory(csms_sessions, **csms_serve_options)


@pytest.fixture
def make_station(csms_server: LiveCsms, ocpp_version: str) -> StationFactory:
    """``await make_station(station_id=None, version=None, **options)``: a simulated
    station online at ``csms_server`` (:meth:`LiveCsms.simulate_station`), speaking
    ``ocpp_version`` unless told."""

    async def factory(
        station_id: str | None = None,
        version: OcppVersion | str | None = None,
        **options: Any,
    ) -> SimulatedStation:
        return await csms_server.simulate_station(
            station_id, ocpp_version if version is None else version, **options
        )

    return factory


@_async_fixture
async def station(make_station: StationFactory) -> SimulatedStation:
    """A simulated station ``"CP-1"`` online at ``csms_server``, speaking ``ocpp_version``."""
    return await make_station("CP-1")
