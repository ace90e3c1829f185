"""csms_kit.pytest_plugin: sample user test files run through pytester, passing and failing."""

from __future__ import annotations

import ssl
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import trustme

from csms_kit import StationSession, current_time, on
from csms_kit.pytest_plugin import CsmsServerFactory
from csms_kit.simulator import ConnectOptions

#: A user's project: a session class, served by overriding ``csms_sessions``, and a check
#: that no fixture leaves a task running once the test is over.
CONFTEST = """
import asyncio

import pytest
import pytest_asyncio

from csms_kit import StationSession, current_time, on


class Csms(StationSession):
    @on("BootNotification")
    def boot(self, request):
        return {"currentTime": current_time(), "interval": 300, "status": "Accepted"}

    @on("StatusNotification")
    def status(self, request):
        return {}

    @on("Heartbeat")
    def heartbeat(self, request):
        return {"currentTime": "2027-01-01T00:00:00Z"}

    @on("Authorize")
    def authorize(self, request):
        key = "idTagInfo" if self.version == "1.6" else "idTokenInfo"
        return {key: {"status": "Accepted"}}


@pytest.fixture
def csms_sessions():
    return Csms


@pytest_asyncio.fixture(autouse=True)
async def no_task_left_running():
    yield
    for _ in range(5):
        await asyncio.sleep(0)
    me = asyncio.current_task()
    leaked = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    assert not leaked, leaked
"""

AUTO_MODE = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""

STRICT_MODE = """
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in ``pytester``'s directory, in this process (hypothesis's plugin,
    which only slows each run down, left out)."""
    return pytester.runpytest("-p", "no:hypothesispytest", "-ra", *args)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user's project in auto mode, with CONFTEST."""
    pytester.makeini(AUTO_MODE)
    pytester.makeconftest(CONFTEST)
    return pytester


def test_the_plugin_is_registered_by_its_entry_point(pytester: pytest.Pytester) -> None:
    """pytest loads csms_kit's plugin without being told; its fixtures are listed."""
    pytester.makeini(AUTO_MODE)
    pytester.makepyfile(
        """
        def test_registered(pytestconfig):
            assert pytestconfig.pluginmanager.has_plugin("csms_kit")
        """
    )
    result = run(pytester, "--fixtures")
    result.stdout.fnmatch_lines(["*csms_server -- *", "*make_station -- *", "*station -- *"])
    run(pytester).assert_outcomes(passed=1)


def test_a_project_that_uses_no_fixture_is_unaffected(pytester: pytest.Pytester) -> None:
    """Plain and async tests run as before: the plugin adds fixtures and nothing else."""
    pytester.makeini(AUTO_MODE)
    pytester.makepyfile(
        """
        import asyncio

        def test_plain():
            assert True

        async def test_async():
            await asyncio.sleep(0)
        """
    )
    run(pytester).assert_outcomes(passed=2)


def test_importing_the_plugin_imports_nothing_of_csms_kit_beyond_the_package() -> None:
    """Neither the simulator nor the test helpers are loaded until a fixture needs them."""
    code = textwrap.dedent(
        """
        import sys
        import csms_kit, pytest, pytest_asyncio
        before = set(sys.modules)
        import csms_kit.pytest_plugin
        print(" ".join(sorted(set(sys.modules) - before)))
        """
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == ["csms_kit.pytest_plugin"]


def test_a_sample_handler_test_file_passes(project: pytest.Pytester) -> None:
    """station, make_station, ocpp_version, csms_server and its scripted stations work."""
    project.makepyfile(
        """
        import pytest


        async def test_boot_is_accepted(station, csms_server):
            assert station.booted and station.heartbeat_interval == 300
            assert station.station_id == "CP-1" and str(station.version) == "1.6"
            session = await csms_server.session("CP-1")
            assert session.booted
            assert await station.heartbeat() == "2027-01-01T00:00:00Z"


        @pytest.mark.parametrize("ocpp_version", ["1.6", "2.0.1", "2.1"])
        async def test_each_version(station, ocpp_version):
            assert str(station.version) == ocpp_version
            assert await station.authorize() == "Accepted"


        async def test_several_stations(make_station, csms_server):
            first = await make_station()
            second = await make_station(version="2.0.1", connectors=2)
            named = await make_station("CP-9", "2.1")
            assert [s.station_id for s in (first, second, named)] == ["CP-1", "CP-2", "CP-9"]
            assert str(second.version) == "2.0.1" and len(second.connectors) == 2
            ids = await csms_server.registry.station_ids()
            assert sorted(ids) == ["CP-1", "CP-2", "CP-9"]


        async def test_a_scripted_station(csms_server):
            raw = await csms_server.connect_scripted("RAW-1", "2.0.1")
            boot = {
                "reason": "PowerUp",
                "chargingStation": {"model": "M", "vendorName": "V"},
            }
            answer = await raw.call("1", "BootNotification", boot)
            assert answer[:2] == [3, "1"] and answer[2]["status"] == "Accepted"
            session = await csms_server.session("RAW-1")
            assert session.booted
        """
    )
    run(project).assert_outcomes(passed=6)


def test_stations_and_servers_are_gone_after_the_test(project: pytest.Pytester) -> None:
    """Teardown stops every station and closes the server, whatever the test did."""
    project.makepyfile(
        """
        import asyncio

        import pytest

        seen = {}


        async def test_leaves_everything_running(station, make_station, csms_server):
            seen.update(
                station=station, other=await make_station(), port=csms_server.port,
                scripted=await csms_server.connect_scripted("RAW-1"),
            )


        async def test_then_everything_has_stopped():
            assert not seen["station"].connected and not seen["other"].connected
            with pytest.raises(OSError):
                await asyncio.open_connection("127.0.0.1", seen["port"])
        """
    )
    run(project).assert_outcomes(passed=2)


def test_a_wrong_handler_fails_the_test(project: pytest.Pytester) -> None:
    """A handler answering wrong, or raising, fails the test that exercises it; a boot
    that fails in the station fixture is an error of the test's setup."""
    project.makepyfile(
        """
        import pytest

        from csms_kit import on

        from conftest import Csms


        class Refusing(Csms):
            @on("Authorize")
            def authorize(self, request):
                return {"idTagInfo": {"status": "Invalid"}}


        class Broken(Csms):
            @on("BootNotification")
            def boot(self, request):
                raise RuntimeError("the database is down")


        @pytest.fixture
        def csms_sessions(request):
            return request.param


        @pytest.mark.parametrize("csms_sessions", [Refusing], indirect=True)
        async def test_card_is_accepted(station):
            assert await station.authorize() == "Accepted"


        @pytest.mark.parametrize("csms_sessions", [Broken], indirect=True)
        async def test_station_boots(make_station):
            station = await make_station()
            assert station.booted


        @pytest.mark.parametrize("csms_sessions", [Broken], indirect=True)
        async def test_with_a_booted_station(station):
            pass
        """
    )
    result = run(project)
    result.assert_outcomes(failed=2, errors=1)
    for line in (
        "E *AssertionError: assert 'Invalid' == 'Accepted'",
        "E *CallError: station 'CP-1': BootNotification * answered with InternalError*",
        "FAILED *::test_card_is_accepted*",
        "FAILED *::test_station_boots*",
        "ERROR *::test_with_a_booted_station*",
    ):
        result.stdout.fnmatch_lines([line])


def test_an_error_the_test_did_not_see_fails_it_at_teardown(project: pytest.Pytester) -> None:
    """A CALLERROR answering a station's own heartbeat fails the test unless expected."""
    project.makepyfile(
        """
        import asyncio

        import pytest

        from csms_kit import on

        from conftest import Csms


        class NoHeartbeat(Csms):
            @on("Heartbeat")
            def heartbeat(self, request):
                raise RuntimeError("heartbeats are broken")


        @pytest.fixture
        def csms_sessions():
            return NoHeartbeat


        async def wait_for_errors(station):
            for _ in range(100):
                if station.errors:
                    return
                await asyncio.sleep(0.02)


        async def test_unchecked(make_station):
            station = await make_station(heartbeat_interval=0.05)
            await wait_for_errors(station)


        async def test_expected(make_station):
            station = await make_station(heartbeat_interval=0.05, check_errors=False)
            await wait_for_errors(station)
            assert "InternalError" in str(station.errors[0])
        """
    )
    result = run(project)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_unchecked*",
            "*simulated stations met errors the test did not see:*",
            "*CP-1: CallError*",
        ]
    )


def test_without_csms_sessions_the_fixture_says_what_to_define(
    pytester: pytest.Pytester,
) -> None:
    """Requesting csms_server with no csms_sessions fixture errors with the fix."""
    pytester.makeini(AUTO_MODE)
    pytester.makepyfile(
        """
        async def test_boot(station):
            assert station.booted
        """
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*define a fixture named csms_sessions*"])


def test_the_fixtures_work_in_pytest_asyncios_strict_mode(pytester: pytest.Pytester) -> None:
    """In strict mode (pytest-asyncio's default) the fixtures run without being marked."""
    pytester.makeini(STRICT_MODE)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        """
        import pytest


        @pytest.mark.asyncio
        async def test_boot(station, csms_server):
            assert station.booted
            assert (await csms_server.session("CP-1")).booted
        """
    )
    run(pytester).assert_outcomes(passed=1)


def test_servers_from_the_factory_take_serve_options(project: pytest.Pytester) -> None:
    """csms_server_factory serves other sessions with serve()'s options: a path prefix,
    an authenticate hook; csms_serve_options does the same for csms_server."""
    project.makepyfile(
        """
        import pytest

        from csms_kit import Rejection
        from csms_kit.exceptions import ConnectFailed
        from csms_kit.simulator import ConnectOptions

        from conftest import Csms


        def only_secret(handshake):
            if handshake.password != b"secret":
                return Rejection(401)
            return None


        @pytest.fixture
        def csms_serve_options():
            return {"authenticate": only_secret}


        async def test_the_served_options(make_station):
            station = await make_station(options=ConnectOptions(password="secret"))
            assert station.booted
            with pytest.raises(ConnectFailed, match="401"):
                await make_station(options=ConnectOptions(password="wrong"))


        async def test_the_factory(csms_server_factory):
            first = await csms_server_factory(Csms, path_prefix="/ocpp/")
            second = await csms_server_factory({"2.1": Csms})
            assert first.url == f"ws://127.0.0.1:{first.port}/ocpp"
            assert second.url == f"ws://127.0.0.1:{second.port}" != first.url
            one = await first.simulate_station()
            two = await second.simulate_station(version="2.1")
            assert one.booted and two.booted
            assert await first.registry.station_ids() == ["CP-1"]
            assert await second.registry.station_ids() == ["CP-1"]
        """
    )
    run(project).assert_outcomes(passed=2)


# -- the fixtures in this project's own run ------------------------------------------------


class Csms(StationSession):
    """Boots every station and acknowledges its status."""

    @on("BootNotification")
    def boot(self, request: Any) -> dict[str, Any]:
        return {"currentTime": current_time(), "interval": 300, "status": "Accepted"}

    @on("StatusNotification")
    def status(self, request: Any) -> dict[str, Any]:
        return {}


async def test_a_server_given_ssl_is_reached_at_a_wss_url(
    csms_server_factory: CsmsServerFactory,
) -> None:
    """With ``ssl`` the URL says wss://, and a station trusting the CA boots over TLS."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    csms = await csms_server_factory(Csms, ssl=server_context)
    assert csms.url == f"wss://127.0.0.1:{csms.port}"
    station = await csms.simulate_station(options=ConnectOptions(ssl=client_context))
    assert station.booted
    session = await csms.session(station.station_id)
    assert session.handshake is not None and session.handshake.tls


async def test_session_fails_for_a_station_that_never_connects(
    csms_server_factory: CsmsServerFactory,
) -> None:
    """LiveCsms.session waits, then fails with AssertionError naming the station."""
    csms = await csms_server_factory(Csms)
    with pytest.raises(AssertionError, match="'CP-404' is not connected"):
        await csms.session("CP-404", timeout=0.05)
