"""Each command against simulated stations of every version, over real loopback WebSockets."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from csms_kit import (
    CallError,
    CallTimeout,
    ErrorCode,
    InMemoryRegistry,
    OcppVersion,
    RpcError,
    StationNotConnected,
    StationRecord,
    UsageError,
    commands,
    on,
)
from csms_kit.commands import (
    ChargingProfile,
    ChargingSchedule,
    ChargingSchedulePeriod,
    Command,
    CommandResult,
    DeviceVariable,
)
from csms_kit.pytest_plugin import LiveCsms, StationFactory
from csms_kit.simulator import SimulatedStation
from tests.commands.conftest import V2X, VERSIONS, Wire
from tests.helpers import wait_until

every_version = pytest.mark.parametrize("ocpp_version", VERSIONS)

NOW = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.timezone.utc)


class Quick(SimulatedStation):
    """Reboots in a tenth of a second."""

    reboot_time = 0.1


def _is_16(version: str) -> bool:
    return version == "1.6"


@every_version
async def test_reset(
    csms_server: LiveCsms, make_station: StationFactory, ocpp_version: str, wire: Wire
) -> None:
    """Hard: accepted, the station reboots and boots again; the version's Reset type went out."""
    station = await make_station("CP-1", station_class=Quick)
    result = await commands.reset(csms_server.registry, "CP-1", kind="hard")
    assert (result.accepted, result.status) == (True, "Accepted")
    assert wire.calls_sent()[-1] == (
        "Reset",
        {"type": "Hard" if _is_16(ocpp_version) else "Immediate"},
    )
    await wait_until(lambda: station.boots == 2 and station.online, 5, "rebooted")


@every_version
async def test_a_soft_reset_during_a_transaction(
    csms_server: LiveCsms, make_station: StationFactory, ocpp_version: str
) -> None:
    """1.6 Soft ends the transaction and reboots; 2.x OnIdle is Scheduled (still accepted)."""
    station = await make_station("CP-1", station_class=Quick)
    transaction = await station.start_transaction(1)
    result = await commands.reset(csms_server.registry, "CP-1")
    assert result.accepted
    if _is_16(ocpp_version):
        assert result.status == "Accepted"
        await wait_until(lambda: transaction.ended and station.boots == 2 and station.online, 5)
        assert transaction.stop_reason == "SoftReset"
    else:
        assert result.status == "Scheduled" and not transaction.ended
        await station.stop_transaction(transaction)
        await wait_until(lambda: station.boots == 2 and station.online, 5, "rebooted when idle")


@every_version
async def test_remote_start_and_stop(
    csms_server: LiveCsms, make_station: StationFactory, ocpp_version: str
) -> None:
    """A remote start charges on the EVSE asked for; a remote stop by the transaction's id
    (as the station's version writes it) ends it; a second start there is refused."""
    station = await make_station("CP-1", connectors=2)
    registry = csms_server.registry
    started = await commands.remote_start(registry, "CP-1", id_token="REMOTE-1", evse_id=2)
    assert (started.accepted, started.status, started.transaction_id) == (True, "Accepted", None)
    await wait_until(lambda: bool(station.transactions and station.transactions[0].id), 5)
    [transaction] = station.transactions
    assert transaction.connector.id == 2 and transaction.id_token == "REMOTE-1"
    if _is_16(ocpp_version):
        assert started.remote_start_id is None
    else:
        assert started.remote_start_id == transaction.remote_start_id
        assert transaction.id_token_type == "Central"
    again = await commands.remote_start(registry, "CP-1", id_token="REMOTE-2", evse_id=2)
    assert (again.accepted, again.status) == (False, "Rejected")
    stopped = await commands.remote_stop(registry, "CP-1", transaction_id=str(transaction.id))
    assert stopped.accepted
    await wait_until(lambda: transaction.ended, 5, "stopped")
    assert transaction.stop_reason == "Remote"
    unknown = await commands.remote_stop(registry, "CP-1", transaction_id=999)
    assert (unknown.accepted, unknown.status) == (False, "Rejected")


@every_version
async def test_set_and_get_configuration(
    csms_server: LiveCsms, make_station: StationFactory, ocpp_version: str
) -> None:
    """1.6 keys work on every version; a 2.x variable works on 1.6 when it has a key;
    read-only settings are refused; unknown ones say so."""
    station = await make_station("CP-1")
    registry = csms_server.registry
    changed = await commands.set_configuration(
        registry, "CP-1", key="HeartbeatInterval", value=120
    )
    assert (changed.accepted, changed.status) == (True, "Accepted")
    assert station.settings.heartbeat_interval == 120
    by_variable = DeviceVariable("SampledDataCtrlr", "TxUpdatedInterval")
    changed = await commands.set_configuration(registry, "CP-1", key=by_variable, value="15")
    assert changed.accepted and station.settings.meter_interval == 15
    refused = await commands.set_configuration(
        registry, "CP-1", key="StopTransactionOnEVSideDisconnect", value=False
    )
    assert (refused.accepted, refused.status) == (False, "Rejected")

    unknown: str | DeviceVariable = (
        "VendorKey" if _is_16(ocpp_version) else DeviceVariable("VendorCtrlr", "X")
    )
    result = await commands.get_configuration(
        registry,
        "CP-1",
        keys=["HeartbeatInterval", by_variable, "AuthorizeRemoteTxRequests", unknown],
    )
    assert [(v.key, v.value, v.known) for v in result.values[:3]] == [
        ("HeartbeatInterval", "120", True),
        (by_variable, "15", True),
        ("AuthorizeRemoteTxRequests", "false", True),
    ]
    assert result.values[3].status == (
        "UnknownVariable" if _is_16(ocpp_version) else "UnknownComponent"
    )
    assert not result.accepted and result.get("HeartbeatInterval") == "120"
    assert result.values[0].readonly is (False if _is_16(ocpp_version) else None)


@every_version
async def test_get_all_configuration(
    csms_server: LiveCsms, make_station: StationFactory, ocpp_version: str, wire: Wire
) -> None:
    """1.6: every key of the station; 2.x cannot in one call: UsageError, nothing sent."""
    await make_station("CP-1", connectors=2)
    sent = len(wire.calls_sent())
    if _is_16(ocpp_version):
        result = await commands.get_configuration(csms_server.registry, "CP-1")
        assert result.accepted and result.get("NumberOfConnectors") == "2"
        assert len(result.values) > 10
    else:
        with pytest.raises(UsageError, match="cannot list every variable"):
            await commands.get_configuration(csms_server.registry, "CP-1")
        assert len(wire.calls_sent()) == sent


@every_version
async def test_change_availability(
    csms_server: LiveCsms, make_station: StationFactory, ocpp_version: str
) -> None:
    """One EVSE inoperative, then the whole station operative again."""
    station = await make_station("CP-1", connectors=2)
    registry = csms_server.registry
    result = await commands.change_availability(registry, "CP-1", operative=False, evse_id=2)
    assert (result.accepted, result.status) == (True, "Accepted")
    assert [c.operative for c in station.connectors] == [True, False]
    result = await commands.change_availability(registry, "CP-1", operative=True)
    assert result.accepted and all(c.operative for c in station.connectors)
    result = await commands.change_availability(registry, "CP-1", operative=False, evse_id=7)
    assert (result.accepted, result.status) == (False, "Rejected")


@every_version
async def test_trigger_message(
    csms_server: LiveCsms, make_station: StationFactory, ocpp_version: str, wire: Wire
) -> None:
    """The station sends what was asked for: a status report of one EVSE; the log
    status (1.6: DiagnosticsStatusNotification); a TransactionEvent with no transaction
    (2.x) is refused, and 1.6 cannot ask for one."""
    await make_station("CP-1", connectors=2)
    registry = csms_server.registry
    before = len(wire.calls_received("StatusNotification"))
    result = await commands.trigger_message(
        registry, "CP-1", message="StatusNotification", evse_id=2
    )
    assert (result.accepted, result.status) == (True, "Accepted")
    await wait_until(lambda: len(wire.calls_received("StatusNotification")) > before, 5)
    report = wire.calls_received("StatusNotification")[-1]
    assert report["connectorId" if _is_16(ocpp_version) else "evseId"] == 2

    result = await commands.trigger_message(registry, "CP-1", message="LogStatusNotification")
    assert result.accepted
    sent_back = (
        "DiagnosticsStatusNotification" if _is_16(ocpp_version) else "LogStatusNotification"
    )
    await wait_until(lambda: bool(wire.calls_received(sent_back)), 5, sent_back)

    if _is_16(ocpp_version):
        with pytest.raises(UsageError, match=r"1\.6 cannot ask for TransactionEvent"):
            await commands.trigger_message(registry, "CP-1", message="TransactionEvent")
    else:
        result = await commands.trigger_message(registry, "CP-1", message="TransactionEvent")
        assert (result.accepted, result.status) == (False, "Rejected")


@every_version
async def test_unlock_connector(
    csms_server: LiveCsms, make_station: StationFactory, ocpp_version: str
) -> None:
    """Unlocked; an unknown connector is not (1.6 NotSupported, 2.x UnknownConnector)."""
    await make_station("CP-1")
    result = await commands.unlock_connector(csms_server.registry, "CP-1", evse_id=1)
    assert (result.accepted, result.status) == (True, "Unlocked")
    result = await commands.unlock_connector(csms_server.registry, "CP-1", evse_id=5)
    assert result.status == ("NotSupported" if _is_16(ocpp_version) else "UnknownConnector")
    assert not result.accepted


@every_version
async def test_charging_profiles(
    csms_server: LiveCsms, make_station: StationFactory, ocpp_version: str
) -> None:
    """A station-wide maximum and a TxProfile for a transaction are installed (in the
    version's words); clearing by purpose removes the one, by id the other."""
    station = await make_station("CP-1")
    registry = csms_server.registry
    schedule = ChargingSchedule(
        "A", [ChargingSchedulePeriod(0, 32.0), ChargingSchedulePeriod(3600, 16.0)]
    )
    maximum = ChargingProfile(1, 0, "ChargingStationMaxProfile", schedule, valid_from=NOW)
    result = await commands.set_charging_profile(registry, "CP-1", evse_id=0, profile=maximum)
    assert (result.accepted, result.status) == (True, "Accepted")
    installed = station.charging_profiles[1]
    assert installed.evse_id == 0
    assert installed.purpose == (
        "ChargePointMaxProfile" if _is_16(ocpp_version) else "ChargingStationMaxProfile"
    )

    transaction = await station.start_transaction(1)
    await wait_until(lambda: transaction.id is not None, 5, "transaction id")
    tx_profile = ChargingProfile(2, 1, "TxProfile", schedule, transaction_id=transaction.id)
    result = await commands.set_charging_profile(registry, "CP-1", evse_id=1, profile=tx_profile)
    assert result.accepted and station.charging_profiles[2].purpose == "TxProfile"
    elsewhere = await commands.set_charging_profile(registry, "CP-1", evse_id=3, profile=maximum)
    assert (elsewhere.accepted, elsewhere.status) == (False, "Rejected")

    result = await commands.clear_charging_profile(
        registry, "CP-1", purpose="ChargingStationMaxProfile"
    )
    assert result.accepted and set(station.charging_profiles) == {2}
    result = await commands.clear_charging_profile(registry, "CP-1", profile_id=2)
    assert result.accepted and not station.charging_profiles
    result = await commands.clear_charging_profile(registry, "CP-1")
    assert (result.accepted, result.status) == (False, "Unknown")
    await station.stop_transaction(transaction)


@every_version
async def test_firmware_and_logs(
    csms_server: LiveCsms, make_station: StationFactory, ocpp_version: str, wire: Wire
) -> None:
    """UpdateFirmware and GetLog (1.6: GetDiagnostics; its security log: GetLog)."""
    await make_station("CP-1")
    registry = csms_server.registry
    result = await commands.update_firmware(
        registry, "CP-1", location="https://example.com/fw.bin", retrieve_at=NOW
    )
    assert result.accepted
    if _is_16(ocpp_version):
        assert (result.status, result.request_id) == (None, None)
    else:
        assert result.status == "Accepted"
        assert result.request_id == wire.calls_sent()[-1][1]["requestId"]
    signed = await commands.update_firmware(
        registry,
        "CP-1",
        location="https://example.com/fw.bin",
        retrieve_at=NOW,
        install_at=NOW + datetime.timedelta(hours=2),
        signing_certificate="-----BEGIN CERTIFICATE-----",
        signature="c2lnbmF0dXJl",
    )
    assert (signed.accepted, signed.status) == (True, "Accepted")
    action = "SignedUpdateFirmware" if _is_16(ocpp_version) else "UpdateFirmware"
    assert wire.calls_sent()[-1][0] == action

    log = await commands.get_log(registry, "CP-1", location="https://example.com/upload")
    file_name = "CP-1-diagnostics.log" if _is_16(ocpp_version) else "CP-1-DiagnosticsLog.log"
    assert (log.accepted, log.file_name) == (True, file_name)
    assert wire.calls_sent()[-1][0] == ("GetDiagnostics" if _is_16(ocpp_version) else "GetLog")
    security = await commands.get_log(
        registry, "CP-1", location="https://example.com/upload", log_type="SecurityLog"
    )
    assert (security.accepted, security.file_name) == (True, "CP-1-SecurityLog.log")
    assert wire.calls_sent()[-1][0] == "GetLog"


@every_version
async def test_clear_cache_and_data_transfer(
    csms_server: LiveCsms, make_station: StationFactory, ocpp_version: str
) -> None:
    """ClearCache is accepted; DataTransfer echoes JSON data (1.6: as JSON text)."""
    station = await make_station("CP-1")
    registry = csms_server.registry
    assert (await commands.clear_cache(registry, "CP-1")).accepted
    result = await commands.data_transfer(
        registry, "CP-1", vendor_id=station.vendor, message_id="echo", data={"n": [1, 2]}
    )
    assert result.accepted
    assert result.data == ('{"n":[1,2]}' if _is_16(ocpp_version) else {"n": [1, 2]})
    result = await commands.data_transfer(registry, "CP-1", vendor_id="SomeoneElse")
    assert (result.accepted, result.status, result.data) == (False, "UnknownVendorId", None)


# -- targets and errors ---------------------------------------------------------------------


@every_version
async def test_a_session_is_a_target_too(
    csms_server: LiveCsms, make_station: StationFactory, ocpp_version: str
) -> None:
    """Given the session, no station id is needed; its own id is allowed, another is not."""
    station = await make_station("CP-1")
    session = await csms_server.session("CP-1")
    result = await commands.set_configuration(session, key="HeartbeatInterval", value=90)
    assert result.accepted and station.settings.heartbeat_interval == 90
    assert (await commands.clear_cache(session, "CP-1")).accepted
    with pytest.raises(UsageError, match="station id 'CP-2' given with the session of 'CP-1'"):
        await commands.clear_cache(session, "CP-2")


async def test_target_mistakes_fail_at_once(csms_server: LiveCsms) -> None:
    """A registry without a station id, an unknown target, a station not connected."""
    with pytest.raises(UsageError, match="a registry needs the station id"):
        await commands.clear_cache(csms_server.registry)
    with pytest.raises(UsageError, match="not str"):
        await commands.clear_cache("CP-1")  # type: ignore[arg-type]
    with pytest.raises(StationNotConnected, match="'CP-9' is not connected"):
        await commands.reset(csms_server.registry, "CP-9")


class Grumpy(SimulatedStation):
    """Answers Reset with a CALLERROR, the first ClearCache only once released."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.release = asyncio.Event()

    @on("Reset")
    def on_reset(self, request: Any) -> dict[str, Any]:
        raise RpcError(ErrorCode.NOT_SUPPORTED, "no resets here")

    @on("ClearCache")
    async def on_clear_cache(self, request: Any) -> dict[str, Any]:
        await self.release.wait()
        return {"status": "Accepted"}


@every_version
async def test_call_errors_are_raised(
    csms_server: LiveCsms, make_station: StationFactory, ocpp_version: str
) -> None:
    """A CALLERROR raises CallError, no answer in time CallTimeout: never a result."""
    station = await make_station("CP-1", station_class=Grumpy)
    assert isinstance(station, Grumpy)
    with pytest.raises(CallError, match="no resets here") as caught:
        await commands.reset(csms_server.registry, "CP-1", kind="hard")
    assert caught.value.code is ErrorCode.NOT_SUPPORTED and caught.value.action == "Reset"
    with pytest.raises(CallTimeout) as timed_out:
        await commands.clear_cache(csms_server.registry, "CP-1", timeout=0.2)
    assert timed_out.value.action == "ClearCache"
    station.release.set()  # answers late; the next call is answered after it
    assert (await commands.clear_cache(csms_server.registry, "CP-1")).accepted


class Elsewhere(InMemoryRegistry):
    """A registry whose stations all live in "another process": calls are forwarded to
    the sessions of ``holder`` (the real server's registry), as a cluster would."""

    def __init__(self, holder: InMemoryRegistry) -> None:
        super().__init__(node_id="here")
        self.holder = holder
        self.forwarded: list[tuple[OcppVersion, str]] = []

    def local_session(self, station_id: str) -> Any:
        return None

    async def record(self, station_id: str) -> StationRecord | None:
        record = await self.holder.record(station_id)
        if record is None:
            return None
        return StationRecord(record.station_id, record.version, record.connected_at, "there")

    async def forward_call(
        self, record: StationRecord, action: str, payload: dict[str, Any], timeout: float | None
    ) -> dict[str, Any]:
        self.forwarded.append((record.version, action))
        session = self.holder.local_session(record.station_id)
        assert session is not None
        return await session.call_payload(action, payload, timeout=timeout)


@every_version
async def test_a_station_held_by_another_process(
    csms_server: LiveCsms, make_station: StationFactory, ocpp_version: str
) -> None:
    """The version comes from the station's record; the call is forwarded as JSON."""
    station = await make_station("CP-1")
    registry = csms_server.registry
    assert isinstance(registry, InMemoryRegistry)
    remote = Elsewhere(registry)
    result = await commands.set_configuration(remote, "CP-1", key="HeartbeatInterval", value=45)
    assert result.accepted and station.settings.heartbeat_interval == 45
    action = "ChangeConfiguration" if _is_16(ocpp_version) else "SetVariables"
    assert remote.forwarded == [(OcppVersion(ocpp_version), action)]
    with pytest.raises(StationNotConnected):
        await commands.clear_cache(remote, "CP-2")


@pytest.mark.parametrize("ocpp_version", V2X)
async def test_2x_only_arguments(
    csms_server: LiveCsms, make_station: StationFactory, ocpp_version: str, wire: Wire
) -> None:
    """Arguments only 2.x has reach a 2.x station: a reset of one EVSE (the simulator
    refuses it), a connector within an EVSE."""
    await make_station("CP-1")
    registry = csms_server.registry
    result = await commands.reset(registry, "CP-1", kind="hard", evse_id=1)
    assert (result.accepted, result.status) == (False, "Rejected")
    assert wire.calls_sent()[-1] == ("Reset", {"type": "Immediate", "evseId": 1})
    result = await commands.change_availability(
        registry, "CP-1", operative=False, evse_id=1, connector_id=1
    )
    assert result.accepted


@dataclass(frozen=True)
class Ping(Command[CommandResult]):
    """A command of the application's own, as docs/commands.md shows."""

    name: ClassVar[str] = "tests_vendor_ping"
    vendor_id: str
    text: str

    def request(self, version: OcppVersion) -> tuple[str, dict[str, Any]]:
        return "DataTransfer", {"vendorId": self.vendor_id, "data": self.text}

    def result(self, version: OcppVersion, payload: Mapping[str, Any]) -> CommandResult:
        status = payload.get("status")
        return CommandResult(accepted=status == "Accepted", status=status, response=dict(payload))


@every_version
async def test_a_command_of_the_application_s_own(
    csms_server: LiveCsms, make_station: StationFactory, ocpp_version: str
) -> None:
    """A Command subclass is stored, read back and sent like the built-in ones."""
    station = await make_station("CP-1")
    stored = Ping(station.vendor, "hello").to_dict()
    command = Command.from_dict(stored)
    assert command == Ping(station.vendor, "hello")
    result = await command.send(csms_server.registry, "CP-1")
    assert (result.accepted, result.response.get("data")) == (True, "hello")
