"""examples/multi_station_server.py's sessions and job, tested as a user would: through
the pytest plugin's fixtures, with simulated stations of OCPP 1.6, 2.0.1 and 2.1."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from csms_kit.pytest_plugin import LiveCsms, StationFactory
from csms_kit.simulator import SimulatedStation
from tests.helpers import wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "multi_station_server.py"

each_version = pytest.mark.parametrize("ocpp_version", ["1.6", "2.0.1", "2.1"])


def load_example() -> ModuleType:
    """Import examples/multi_station_server.py as a module."""
    name = "csms_kit_example_multi_station_server"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


example = load_example()


@pytest.fixture
def csms_sessions() -> dict[str, Any]:
    """What the example serves: one session class for 1.6, one for 2.0.1 and 2.1."""
    return {"1.6": example.Csms16, "2.0.1": example.Csms2x, "2.1": example.Csms2x}


@contextlib.asynccontextmanager
async def example_job(csms: LiveCsms) -> AsyncIterator[None]:
    """Run the example's start_charges job on the server's registry, polling often."""
    job = asyncio.create_task(example.start_charges(csms.registry, every=0.02))
    try:
        yield
    finally:
        job.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await job


@each_version
async def test_boot_is_accepted_with_a_five_minute_heartbeat(
    station: SimulatedStation, csms_server: LiveCsms
) -> None:
    """BootNotification: Accepted, interval 300 s; the server records what was booted."""
    assert station.booted and station.heartbeat_interval == 300
    session = await csms_server.session(station.station_id)
    assert session.booted
    assert session.boot_info is not None
    assert session.boot_info.serial_number == station.serial_number
    assert await csms_server.registry.registration_status(station.station_id) == "Accepted"


@each_version
async def test_heartbeat_answers_the_current_time(station: SimulatedStation) -> None:
    """Heartbeat: the CSMS's clock, in UTC, now."""
    answered = datetime.datetime.fromisoformat((await station.heartbeat()).replace("Z", "+00:00"))
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - answered).total_seconds()) < 5


@each_version
async def test_every_card_is_accepted(station: SimulatedStation) -> None:
    """Authorize: Accepted, whatever the card."""
    assert await station.authorize("04A2B3C4D5E6F7") == "Accepted"
    assert await station.authorize("UNKNOWN") == "Accepted"


@each_version
async def test_a_charging_session_is_accepted_from_start_to_stop(
    station: SimulatedStation,
) -> None:
    """A driver's session: authorize, start, stop. 1.6: StartTransaction gives a
    transaction id and accepts the card; 2.x: the card was authorized first, so
    TransactionEvent answers carry no verdict."""
    transaction = await station.charge(samples=0, reason="EVDisconnected")
    assert transaction is not None and transaction.ended
    assert transaction.id is not None
    if station.version == "1.6":
        assert transaction.authorization == "Accepted"
    else:
        assert transaction.authorization is None
        assert transaction.seq_no == 2  # Started, Ended
    assert station.transactions == []


@each_version
async def test_meter_values_during_a_session_are_acknowledged(
    station: SimulatedStation,
) -> None:
    """Readings during a session (1.6: MeterValues; 2.x: TransactionEvent Updated)."""
    transaction = await station.charge(samples=2, interval=0.01)
    assert transaction is not None and transaction.ended
    if station.version != "1.6":
        assert transaction.seq_no == 4  # Started, two Updated, Ended
    assert station.transactions == []


@each_version
async def test_the_job_starts_a_charge_on_each_booted_station_once(
    csms_server: LiveCsms, make_station: StationFactory
) -> None:
    """start_charges: each booted station gets one remote start, for its version, and
    charges; a station that connects later gets its own."""
    first = await make_station()
    async with example_job(csms_server):
        await wait_until(lambda: bool(first.transactions), 5, "first station charging")
        second = await make_station("CP-late", connectors=2)
        await wait_until(lambda: bool(second.transactions), 5, "second station charging")
        await asyncio.sleep(0.1)  # several more rounds of the job
    for station in (first, second):
        [transaction] = station.transactions
        assert transaction.id_token == "REMOTE-1"
        assert transaction.connector.id == 1
        if station.version == "1.6":
            assert transaction.id is not None  # the example's StartTransaction answer
        else:
            assert transaction.remote_start_id == 1
            assert transaction.id_token_type == "Central"


@each_version
async def test_a_remote_start_is_refused_by_a_busy_station(
    csms_server: LiveCsms, station: SimulatedStation
) -> None:
    """The example's remote_start() command, sent twice: the second finds no free
    connector and the station says Rejected."""
    session = await csms_server.session(station.station_id)
    first = await csms_server.registry.call(station.station_id, example.remote_start(session))
    assert first.status == "Accepted"
    await wait_until(lambda: bool(station.transactions), 5, "station charging")
    again = await csms_server.registry.call(station.station_id, example.remote_start(session))
    assert again.status == "Rejected"
