"""Losing the CSMS: backoff, the queue kept while offline, and its replay once back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from csms_kit import OcppVersion, on, serve
from csms_kit.demo.csms import DemoCsms
from csms_kit.simulator import Backoff, SimulatedStation
from csms_kit.simulator.offline import OfflineQueue, QueuedMessage
from tests.helpers import wait_until
from tests.simulator.conftest import V2X, VERSIONS, Csms, Recorder, recording_server

V16 = OcppVersion.V16


class Quick(SimulatedStation):
    """Reconnects within a tenth of a second or so."""

    backoff = Backoff(wait_minimum=0.05, random_range=0.05, repeat_times=3)


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    """Attempt n waits minimum * 2**min(n, repeat) plus up to random_range, never more."""
    backoff = Backoff(wait_minimum=1.0, random_range=2.0, repeat_times=3)
    for attempt, base in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (9, 8.0)]:
        delays = [backoff.delay(attempt) for _ in range(200)]
        assert all(base <= d <= base + 2.0 for d in delays)
        assert max(delays) - min(delays) > 1.0  # jittered, not all alike
    assert backoff.maximum == 10.0


def test_a_full_queue_drops_the_oldest_reading_first() -> None:
    """Past its limit the queue drops meter readings before starts and ends."""
    queue = OfflineQueue(limit=3)
    start = QueuedMessage("StartTransaction", {}, None)
    reading = QueuedMessage("MeterValues", {}, None, expendable=True)
    stop = QueuedMessage("StopTransaction", {}, None)
    for message in (start, reading, stop):
        queue.add(message)
    later = QueuedMessage("StartTransaction", {}, None)
    queue.add(later)
    assert list(queue) == [start, stop, later] and queue.dropped == 1
    queue.add(QueuedMessage("StopTransaction", {}, None))
    assert queue.head is stop and queue.dropped == 2


async def drop_from_the_csms(csms: Recorder, station: SimulatedStation) -> None:
    """The CSMS closes the station's connection and refuses it for now."""
    csms.plan.refuse = True
    await csms.session(station.station_id).close(1012, "restarting")
    await wait_until(lambda: not station.connected, 5, "the station saw the drop")


@pytest.mark.parametrize("version", VERSIONS, ids=str)
async def test_reconnects_and_replays_what_happened_offline(
    version: OcppVersion, csms: Recorder
) -> None:
    """Dropped mid-transaction: readings and the end wait, then go out in order once back."""
    async with Quick(csms.url, "CP-1", version) as station:
        transaction = await station.start_transaction(1)
        await drop_from_the_csms(csms, station)
        assert not station.online
        await station.send_meter_values(transaction)
        await station.send_meter_values(transaction)
        await station.stop_transaction(transaction)
        assert station.queued == 3
        await wait_until(lambda: csms.plan.refused >= 2, 5, "attempts while refused")
        csms.plan.refuse = False
        await station.wait_online(timeout=5)
        await wait_until(lambda: station.queued == 0, 5, "the queue replayed")
        kinds = [type(e).__name__ for e in station.errors]
        assert kinds[0] == "CsmsDisconnected" and set(kinds[1:]) == {"ConnectFailed"}
        assert len(csms.calls("BootNotification")) == 1  # a reconnection is no reboot
    if version is V16:
        readings = csms.calls("MeterValues")
        [stop] = csms.calls("StopTransaction")
        assert [r["transactionId"] for r in readings] == [transaction.id] * 2
        assert stop["transactionId"] == transaction.id and stop["reason"] == "EVDisconnected"
        assert csms.actions()[-5:] == [
            "MeterValues",
            "MeterValues",
            "StopTransaction",
            "StatusNotification",
            "StatusNotification",
        ]  # what happened offline first, then the status now
    else:
        events = csms.calls("TransactionEvent")
        assert [e["eventType"] for e in events] == ["Started", "Updated", "Updated", "Ended"]
        assert [e["seqNo"] for e in events] == [0, 1, 2, 3]
        assert [e.get("offline", False) for e in events] == [False, True, True, True]


async def test_a_transaction_started_offline_gets_its_id_on_replay(csms: Recorder) -> None:
    """1.6: begun offline, its readings and StopTransaction carry the id the CSMS gives."""
    async with Quick(csms.url, "CP-1", "1.6") as station:
        await drop_from_the_csms(csms, station)
        transaction = await station.charge(samples=2, interval=0)
        assert transaction is not None and transaction.id is None and station.queued == 4
        csms.plan.refuse = False
        await wait_until(lambda: station.queued == 0, 5, "the queue replayed")
        assert isinstance(transaction.id, int)
        assert "Authorize" not in csms.actions()  # offline, the station lets the driver charge
        readings = csms.calls("MeterValues")
        assert [r["transactionId"] for r in readings] == [transaction.id] * 2
        assert csms.calls("StopTransaction")[0]["transactionId"] == transaction.id


class DropsTheFirstReading(Csms):
    """Closes the connection instead of answering the first meter reading."""

    dropped = False

    @on("TransactionEvent")
    async def transaction_event(self, request: Any) -> dict[str, Any]:
        if request.event_type == "Updated" and not DropsTheFirstReading.dropped:
            DropsTheFirstReading.dropped = True
            await self.close(1011, "oops")
        return {}


async def test_a_message_lost_in_flight_is_sent_again() -> None:
    """The connection drops before the answer: the reading goes again, marked offline."""
    server, csms = recording_server(DropsTheFirstReading)
    async with server, Quick(csms.url, "CP-1", "2.0.1") as station:
        transaction = await station.start_transaction(1)
        await station.send_meter_values(transaction)  # returns: kept for later
        await wait_until(lambda: station.queued == 0 and station.online, 5, "sent again")
        updates = [e for e in csms.calls("TransactionEvent") if e["eventType"] == "Updated"]
        assert [(u["seqNo"], u.get("offline", False)) for u in updates] == [(1, False), (1, True)]
    csms.check()


async def test_a_csms_that_forgot_the_station_makes_it_boot_again() -> None:
    """A new CSMS process on the same port does not know the station: it boots again."""
    first, csms = recording_server()
    async with first:
        port = first.port
        station = Quick(csms.url, "CP-1", "2.0.1")
        await station.start()
    try:
        await wait_until(lambda: not station.connected, 5, "the first CSMS is gone")
        async with serve(DemoCsms, "127.0.0.1", port) as second:
            await wait_until(lambda: station.boots == 2 and station.online, 10, "booted again")
            assert second.registry.get("CP-1") is not None
    finally:
        await station.stop()
    assert type(station.errors[0]).__name__ == "CsmsDisconnected"


@pytest.mark.parametrize("version", V2X, ids=str)
async def test_drop_and_close_reconnect_without_counting_an_error(
    version: OcppVersion, csms: Recorder
) -> None:
    """drop() loses the connection the hard way, close() the polite way; both come back."""
    async with Quick(csms.url, "CP-1", version) as station:
        first = station.connected_at
        station.drop(reconnect_in=0)
        await wait_until(lambda: station.connected_at != first and station.online, 5)
        second = station.connected_at
        await station.close()  # on purpose too: back after the backoff
        await wait_until(lambda: station.connected_at != second and station.online, 5)
        assert station.errors == () and csms.server.registry.get("CP-1") is not None
        await asyncio.sleep(0)
