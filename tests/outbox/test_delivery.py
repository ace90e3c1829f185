"""Delivery: order, supersede, expiry, failures and retries, for every OCPP version."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from csms_kit import OcppVersion
from csms_kit.commands.control import ClearCache, DataTransfer, Reset
from csms_kit.outbox import Outbox
from tests.helpers import wait_until
from tests.outbox.conftest import Recording, Refusing, data_transfer

VERSIONS = [str(v) for v in OcppVersion]


@pytest.mark.parametrize("version", VERSIONS)
async def test_an_offline_station_gets_its_commands_in_order_when_it_is_back(
    make_outbox: Any, csms_with: Any, version: str
) -> None:
    outbox: Outbox = await make_outbox()
    live = await csms_with(outbox)
    queued = [await outbox.submit("CP-1", data_transfer(n)) for n in range(5)]
    assert [s.status for s in queued] == ["queued"] * 5
    assert [s.sequence for s in queued] == sorted(s.sequence for s in queued)

    station = await live.simulate_station("CP-1", version, station_class=Recording)
    finals = [await outbox.wait(s.id, timeout=10) for s in queued]

    assert station.data() == ["0", "1", "2", "3", "4"]
    assert [s.status for s in finals] == ["answered"] * 5
    assert [s.result for s in finals] == [{"status": "Accepted", "data": str(n)} for n in range(5)]
    assert all(s.attempts == 1 and s.message_id for s in finals)
    # The messageId stored is the one the station saw.
    assert [s.message_id for s in finals] == [
        m for m, a, _ in station.received if a == "DataTransfer"
    ]


@pytest.mark.parametrize("version", VERSIONS)
async def test_version_neutral_commands_are_built_for_the_station_that_connects(
    make_outbox: Any, csms_with: Any, version: str
) -> None:
    outbox: Outbox = await make_outbox()
    live = await csms_with(outbox)
    transfer = await outbox.submit("CP-1", DataTransfer("csms_kit-sim", data="hello"))
    clear = await outbox.submit("CP-1", ClearCache())
    assert transfer.action == "data_transfer"
    station = await live.simulate_station("CP-1", version, station_class=Recording)

    answered = await outbox.wait(transfer.id, timeout=5)
    assert answered.status == "answered"
    assert answered.result["accepted"] is True
    assert answered.result["data"] == "hello"
    assert (await outbox.wait(clear.id, timeout=5)).result["status"] == "Accepted"
    assert [action for _, action, _ in station.received] == ["DataTransfer", "ClearCache"]


async def test_a_command_the_station_version_cannot_express_fails_without_being_sent(
    make_outbox: Any, csms_with: Any
) -> None:
    outbox: Outbox = await make_outbox()
    live = await csms_with(outbox)
    per_evse = await outbox.submit("CP-1", Reset("soft", evse_id=1))  # 2.x only
    after = await outbox.submit("CP-1", data_transfer(1))
    station = await live.simulate_station("CP-1", "1.6", station_class=Recording)
    failed = await outbox.wait(per_evse.id, timeout=5)
    assert (failed.status, failed.error_code, failed.attempts) == ("failed", "InvalidCommand", 0)
    assert "evse_id" in (failed.error or "")
    assert (await outbox.wait(after.id, timeout=5)).status == "answered"
    assert station.data() == ["1"]


async def test_a_connected_station_gets_a_command_at_once(
    make_outbox: Any, csms_with: Any
) -> None:
    outbox: Outbox = await make_outbox()
    live = await csms_with(outbox)
    station = await live.simulate_station("CP-1", "2.0.1", station_class=Recording)
    submission = await outbox.submit("CP-1", data_transfer(7))
    final = await outbox.wait(submission.id, timeout=5)
    assert final.status == "answered"
    assert station.data() == ["7"]


async def test_a_newer_submission_with_the_same_key_supersedes_a_queued_one(
    make_outbox: Any, csms_with: Any
) -> None:
    finished: list[Any] = []
    outbox: Outbox = await make_outbox(on_finished=finished.append)
    live = await csms_with(outbox)
    first = await outbox.submit("CP-1", data_transfer(1), supersede_key="profile")
    other = await outbox.submit("CP-1", data_transfer(2), supersede_key="other")
    second = await outbox.submit("CP-1", data_transfer(3), supersede_key="profile")
    elsewhere = await outbox.submit("CP-2", data_transfer(4), supersede_key="profile")

    superseded = await outbox.get(first.id)
    assert superseded is not None and superseded.status == "superseded"
    assert second.id in (superseded.error or "")
    assert [s.id for s in finished] == [first.id]  # the hook heard it

    station = await live.simulate_station("CP-1", "1.6", station_class=Recording)
    await outbox.wait(second.id, timeout=5)
    assert station.data() == ["2", "3"]
    assert (await outbox.get(other.id)).status == "answered"  # type: ignore[union-attr]
    assert (await outbox.get(elsewhere.id)).status == "queued"  # type: ignore[union-attr]


async def test_an_expired_submission_is_never_sent(make_outbox: Any, csms_with: Any) -> None:
    outbox: Outbox = await make_outbox(poll_interval=60)  # expiry seen at delivery, not swept
    live = await csms_with(outbox)
    stale = await outbox.submit("CP-1", data_transfer(1), expires_in=0.2)
    fresh = await outbox.submit("CP-1", data_transfer(2))
    await asyncio.sleep(0.3)
    station = await live.simulate_station("CP-1", "2.1", station_class=Recording)
    assert (await outbox.wait(fresh.id, timeout=5)).status == "answered"
    assert (await outbox.get(stale.id)).status == "expired"  # type: ignore[union-attr]
    assert station.data() == ["2"]


async def test_expiry_is_applied_while_the_station_stays_away(make_outbox: Any) -> None:
    finished: list[Any] = []
    outbox: Outbox = await make_outbox(poll_interval=0.1, on_finished=finished.append)
    submission = await outbox.submit("CP-9", data_transfer(1), expires_in=0.15)
    final = await outbox.wait(submission.id, timeout=5)
    assert final.status == "expired"
    assert [s.id for s in finished] == [submission.id]


async def test_a_callerror_fails_the_submission_and_delivery_goes_on(
    make_outbox: Any, csms_with: Any
) -> None:
    outbox: Outbox = await make_outbox()
    live = await csms_with(outbox)
    failing = await outbox.submit("CP-1", data_transfer("fail"))  # type: ignore[arg-type]
    after = await outbox.submit("CP-1", data_transfer(2))
    station = await live.simulate_station("CP-1", "1.6", station_class=Refusing)
    failed = await outbox.wait(failing.id, timeout=5)
    assert (failed.status, failed.error_code, failed.error) == (
        "failed",
        "NotSupported",
        "no such thing here",
    )
    assert failed.attempts == 1  # not retried
    assert (await outbox.wait(after.id, timeout=5)).status == "answered"
    assert station.data() == ["fail", "2"]


async def test_a_timeout_is_retried_with_the_same_message_id_then_fails(
    make_outbox: Any, csms_with: Any
) -> None:
    # The resend waits until the station has finished with the first one.
    outbox: Outbox = await make_outbox(call_timeout=0.2, max_attempts=2, retry_delay=1.0)
    live = await csms_with(outbox)
    slow = await outbox.submit("CP-1", data_transfer("slow"))  # type: ignore[arg-type]
    station = await live.simulate_station("CP-1", "2.0.1", station_class=Refusing)
    failed = await outbox.wait(slow.id, timeout=10)
    assert (failed.status, failed.error_code, failed.attempts) == ("failed", "Timeout", 2)
    ids = [m for m, action, _ in station.received if action == "DataTransfer"]
    assert ids == [failed.message_id, failed.message_id]
    await asyncio.sleep(1.0)  # the station's last answer, which nobody awaits


async def test_cancel_stops_a_queued_submission(make_outbox: Any, csms_with: Any) -> None:
    outbox: Outbox = await make_outbox()
    live = await csms_with(outbox)
    cancelled = await outbox.submit("CP-1", data_transfer(1))
    kept = await outbox.submit("CP-1", data_transfer(2))
    done = await outbox.cancel(cancelled.id)
    assert done is not None and done.status == "cancelled"
    assert await outbox.cancel(cancelled.id) is None  # already final
    assert await outbox.cancel("no-such-id") is None
    station = await live.simulate_station("CP-1", "1.6", station_class=Recording)
    await outbox.wait(kept.id, timeout=5)
    assert station.data() == ["2"]


async def test_a_station_not_accepted_at_boot_gets_nothing(
    make_outbox: Any, csms_server_factory: Any
) -> None:
    from csms_kit import StationSession, on
    from csms_kit.clock import current_time

    class Pending(StationSession):
        boot_gate = False

        @on("BootNotification")
        def boot(self, request: Any) -> dict[str, Any]:
            return {"currentTime": current_time(), "interval": 5, "status": "Pending"}

    outbox: Outbox = await make_outbox()
    live = await csms_server_factory(Pending, outbox=outbox)
    submission = await outbox.submit("CP-1", data_transfer(1))
    station = await live.simulate_station(
        "CP-1", "1.6", station_class=Recording, wait=False, check_errors=False
    )
    session = await live.session("CP-1")
    await wait_until(lambda: session.registration_status == "Pending", 5, "boot answered")
    await asyncio.sleep(0.3)
    assert station.data() == []
    assert (await outbox.get(submission.id)).status == "queued"  # type: ignore[union-attr]


async def test_submissions_survive_a_new_outbox_on_the_same_file(
    make_outbox: Any, csms_with: Any
) -> None:
    first: Outbox = await make_outbox()
    queued = [await first.submit("CP-1", data_transfer(n)) for n in range(3)]
    await first.aclose()

    second: Outbox = await make_outbox()
    live = await csms_with(second)
    station = await live.simulate_station("CP-1", "2.1", station_class=Recording)
    for submission in queued:
        assert (await second.wait(submission.id, timeout=5)).status == "answered"
    assert station.data() == ["0", "1", "2"]


async def test_a_command_waiting_to_be_retried_holds_no_delivery_slot(
    make_outbox: Any, csms_with: Any
) -> None:
    # One station may be delivered to at a time; CP-1's command times out and waits
    # 30 s before its resend. CP-2 must not wait for that.
    outbox: Outbox = await make_outbox(call_timeout=0.2, retry_delay=30, concurrency=1)
    live = await csms_with(outbox)
    slow = await outbox.submit("CP-1", data_transfer("slow"))  # type: ignore[arg-type]
    quick = await outbox.submit("CP-2", data_transfer(2))
    first = await live.simulate_station("CP-1", "1.6", station_class=Refusing)
    await wait_until(lambda: len(first.received) == 1, 5, "CP-1 got its command")
    await live.simulate_station("CP-2", "1.6", station_class=Recording)
    assert (await outbox.wait(quick.id, timeout=10)).status == "answered"
    assert (await outbox.get(slow.id)).status == "sent"  # type: ignore[union-attr]
    await asyncio.sleep(1.0)  # the station's late answer, which nobody awaits


async def test_a_waiter_giving_up_leaves_the_others_waiting_for_the_same_submission(
    make_outbox: Any, csms_with: Any
) -> None:
    outbox: Outbox = await make_outbox(poll_interval=600)  # only a wake-up ends a wait
    live = await csms_with(outbox)
    submission = await outbox.submit("CP-1", data_transfer(1))
    patient = asyncio.create_task(outbox.wait(submission.id))
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        await outbox.wait(submission.id, timeout=0.1)
    await live.simulate_station("CP-1", "1.6", station_class=Recording)
    final = await asyncio.wait_for(patient, 10)
    assert final.status == "answered"
