"""A simulated charging station: :class:`SimulatedStation` and :func:`simulate_station`.

::

    async with simulate_station("ws://localhost:9000", "CP-1", "2.0.1") as station:
        await station.charge(samples=3, interval=1.0)

The station behaves as :class:`~csms_kit.simulator.behaviour.StationBehaviour` says
(boot, status, heartbeats, charging, reconnecting) and answers the CSMS's commands
here, with behaviour behind each answer: a remote start starts a transaction, a Reset
reboots, TriggerMessage sends what was asked for, ChangeConfiguration and
SetVariables change what the station does, SetChargingProfile keeps the profile. (A
firmware update or a log upload is only answered: nothing is downloaded or uploaded.)
Override any answer in a subclass::

    class Stubborn(SimulatedStation):
        @on("Reset")
        def on_reset(self, request):
            return {"status": "Rejected"}

Each command has an ``@on`` handler that decides the answer (and claims what it
needs, so two commands cannot take the same connector) and, where something follows,
an ``@after`` hook that does it once the answer is sent; a subclass that answers
otherwise keeps the hook, which acts only on the answer it sees.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from csms_kit.clock import current_time
from csms_kit.routing import after, on
from csms_kit.simulator.behaviour import StationBehaviour
from csms_kit.simulator.state import Connector, InstalledProfile
from csms_kit.versions import OcppVersion

__all__ = ["SimulatedStation", "simulate_station"]

_ACCEPTED = {"status": "Accepted"}
_REJECTED = {"status": "Rejected"}


def _status(answer: Any) -> Any:
    """The ``status`` of an answer given as a dict or as a dataclass."""
    return answer.get("status") if isinstance(answer, dict) else getattr(answer, "status", None)


class SimulatedStation(StationBehaviour):
    """A charging station of OCPP 1.6, 2.0.1 or 2.1 that connects to the CSMS at ``url``.

    ``connectors`` (2.x: EVSEs of one connector each); ``options`` say how to connect
    (Basic auth, TLS, offered versions: :class:`~csms_kit.simulator.ConnectOptions`);
    ``serial_number`` and ``id_token`` (the driver's card) have defaults derived from
    ``station_id``. ``heartbeat_interval`` overrides the interval the CSMS gives;
    ``boot_on_reconnect`` boots on every connection, not only after a reboot.
    ``monitor`` hears what happens (:class:`~csms_kit.simulator.StationMonitor`);
    ``validation``, ``call_timeout``, ``handler_grace``, ``hooks`` and
    ``instruments`` are those of every :class:`~csms_kit.role.Role`, for each of its
    connections. Class attributes: ``vendor``, ``model``, ``firmware_version``,
    ``backoff``, ``reboot_time``, ``boot_retry``, ``queue_limit``.

    Run it with ``async with station:`` (or :meth:`start` and :meth:`stop`).
    """

    # -- Reset ---------------------------------------------------------------------------

    @on("Reset")
    def on_reset(self, request: Any) -> dict[str, Any]:
        """Accepted; 2.x OnIdle during a transaction: Scheduled. One EVSE: Rejected."""
        if getattr(request, "evse_id", None) is not None:
            return _REJECTED  # resetting a single EVSE is not simulated
        if request.type == "OnIdle" and self.transactions:
            self._reset_when_idle = True
            return {"status": "Scheduled"}
        return _ACCEPTED

    @after("Reset")
    async def after_reset(self, request: Any, answer: Any) -> None:
        """Reboot: stop the transactions, come back after ``reboot_time`` and boot."""
        if _status(answer) == "Accepted":
            await self.reboot(stop_reason="SoftReset" if request.type == "Soft" else "HardReset")

    # -- remote start and stop -----------------------------------------------------------

    @on("RemoteStartTransaction")
    def on_remote_start_transaction(self, request: Any) -> dict[str, Any]:
        """1.6: Accepted if the connector asked for (or any) is free, claiming it."""
        connector = self.free_connector(request.connector_id)
        if connector is None:
            return _REJECTED
        self._claim(connector, request.id_tag, "ISO14443")
        return _ACCEPTED

    @on("RequestStartTransaction")
    def on_request_start_transaction(self, request: Any) -> dict[str, Any]:
        """2.x: Accepted if the EVSE asked for (or any) is free, claiming it."""
        connector = self.free_connector(request.evse_id)
        if connector is None:
            return _REJECTED
        token = request.id_token
        transaction = self._claim(connector, token.id_token, str(token.type))
        transaction.remote_start_id = request.remote_start_id
        return _ACCEPTED

    @after("RemoteStartTransaction")
    @after("RequestStartTransaction")
    def after_remote_start(self, request: Any, answer: Any) -> None:
        """Charge on the claimed connector until the CSMS (or the driver) stops it."""
        if _status(answer) != "Accepted":
            return
        for transaction in self.transactions:
            if not transaction.announced:
                self.spawn(self._remote_session(transaction), "remote session")

    @on("RemoteStopTransaction")
    @on("RequestStopTransaction")
    def on_remote_stop_transaction(self, request: Any) -> dict[str, Any]:
        """Accepted if the transaction is in progress here."""
        found = self._transaction_by_id(request.transaction_id)
        return _REJECTED if found is None else _ACCEPTED

    @after("RemoteStopTransaction")
    @after("RequestStopTransaction")
    async def after_remote_stop(self, request: Any, answer: Any) -> None:
        """Stop the transaction (reason Remote)."""
        transaction = self._transaction_by_id(request.transaction_id)
        if _status(answer) == "Accepted" and transaction is not None:
            await self.stop_transaction(transaction, "Remote")

    # -- settings ------------------------------------------------------------------------

    @on("ChangeConfiguration")
    def on_change_configuration(self, request: Any) -> dict[str, Any]:
        """1.6: change the key (see :class:`~csms_kit.simulator.settings.Configuration`)."""
        status = self.configuration.change(request.key, request.value)
        self._heartbeat_changed()
        return {"status": status}

    @on("GetConfiguration")
    def on_get_configuration(self, request: Any) -> dict[str, Any]:
        """1.6: the keys asked for (all if none), and those the station does not have."""
        known, unknown = self.configuration.report(request.key)
        return {"configurationKey": known, "unknownKey": unknown}

    @on("SetVariables")
    def on_set_variables(self, request: Any) -> dict[str, Any]:
        """2.x: set each variable (see :class:`~csms_kit.simulator.settings.DeviceModel`)."""
        results = self.device_model.set_variables(request.set_variable_data)
        self._heartbeat_changed()
        return {"setVariableResult": results}

    @on("GetVariables")
    def on_get_variables(self, request: Any) -> dict[str, Any]:
        """2.x: each variable's value, or why there is none."""
        return {"getVariableResult": self.device_model.get_variables(request.get_variable_data)}

    @on("GetBaseReport")
    def on_get_base_report(self, request: Any) -> dict[str, Any]:
        """2.x: Accepted (EmptyResultSet if nothing fits); the report follows."""
        if not self.device_model.report(str(request.report_base)):
            return {"status": "EmptyResultSet"}
        return _ACCEPTED

    @after("GetBaseReport")
    async def after_get_base_report(self, request: Any, answer: Any) -> None:
        """Send the report in one NotifyReport."""
        if _status(answer) != "Accepted":
            return
        report = {
            "requestId": request.request_id,
            "generatedAt": current_time(),
            "seqNo": 0,
            "tbc": False,
            "reportData": self.device_model.report(str(request.report_base)),
        }
        await self.call(report, action="NotifyReport")

    # -- TriggerMessage --------------------------------------------------------------------

    def _trigger_targets(self, request: Any) -> list[Connector] | None:
        if self.version is OcppVersion.V16:
            return self._targets(request.connector_id)
        return self._targets(None if request.evse is None else request.evse.id)

    @on("TriggerMessage")
    def on_trigger_message(self, request: Any) -> dict[str, Any]:
        """Accepted for what the station can send (NotImplemented otherwise); Rejected
        for an unknown connector, or a TransactionEvent with no transaction."""
        wanted = str(request.requested_message)
        if wanted not in self._messages.triggerable:
            return {"status": "NotImplemented"}
        targets = self._trigger_targets(request)
        if targets is None:
            return _REJECTED
        if wanted == "TransactionEvent" and not any(c.transaction for c in targets):
            return _REJECTED
        return _ACCEPTED

    @after("TriggerMessage")
    async def after_trigger_message(self, request: Any, answer: Any) -> None:
        """Send the message asked for."""
        if _status(answer) == "Accepted":
            await self.send_triggered(
                str(request.requested_message), self._trigger_targets(request) or []
            )

    async def send_triggered(self, wanted: str, connectors: list[Connector]) -> None:
        """Send ``wanted`` (a TriggerMessage's requestedMessage) for ``connectors``."""
        if wanted == "BootNotification":
            await self._boot("Triggered")
        elif wanted == "Heartbeat":
            await self.heartbeat()
        elif wanted == "StatusNotification":
            if self.version is OcppVersion.V16 and len(connectors) == len(self.connectors):
                await self._report(0, self._main_status)
            for connector in connectors:
                await self._report(connector.id, connector.status)
        elif wanted == "MeterValues":
            for connector in connectors:
                request = self._messages.meter_values(connector, connector.meter.read())
                await self.call(request, action="MeterValues")
        elif wanted == "TransactionEvent":
            for connector in connectors:
                if connector.transaction is not None:
                    await self.send_meter_values(connector.transaction, trigger="Trigger")
        else:
            await self.call(self._messages.idle_notifications[wanted], action=wanted)

    # -- connectors ----------------------------------------------------------------------

    def _availability_targets(self, request: Any) -> tuple[bool, list[Connector] | None]:
        if self.version is OcppVersion.V16:
            return request.type == "Operative", self._targets(request.connector_id)
        evse = request.evse
        return request.operational_status == "Operative", self._targets(
            None if evse is None else evse.id
        )

    @on("ChangeAvailability")
    def on_change_availability(self, request: Any) -> dict[str, Any]:
        """Accepted, or Scheduled where a transaction must end first; Rejected for an
        unknown connector."""
        operative, targets = self._availability_targets(request)
        if targets is None:
            return _REJECTED
        scheduled = False
        for connector in targets:
            connector.operative = operative
            if connector.transaction is not None:
                scheduled = scheduled or not operative
            else:
                connector.status = "Available" if operative else "Unavailable"
        if self.version is OcppVersion.V16 and len(targets) == len(self.connectors):
            self._main_status = "Available" if operative else "Unavailable"
        return {"status": "Scheduled" if scheduled else "Accepted"}

    @after("ChangeAvailability")
    async def after_change_availability(self, request: Any, answer: Any) -> None:
        """Report the connectors whose status changed."""
        _, targets = self._availability_targets(request)
        for connector in targets or ():
            await self._report_status(connector)

    @on("UnlockConnector")
    def on_unlock_connector(self, request: Any) -> dict[str, Any]:
        """Unlocked. 1.6: a transaction on it is stopped first; unknown connector:
        NotSupported. 2.x: OngoingAuthorizedTransaction, UnknownConnector."""
        if self.version is OcppVersion.V16:
            found = self._connector(request.connector_id)
            return {"status": "NotSupported" if found is None else "Unlocked"}
        found = self._connector(request.evse_id) if request.connector_id == 1 else None
        if found is None:
            return {"status": "UnknownConnector"}
        if found.transaction is not None:
            return {"status": "OngoingAuthorizedTransaction"}
        return {"status": "Unlocked"}

    @after("UnlockConnector")
    async def after_unlock_connector(self, request: Any, answer: Any) -> None:
        """1.6: stop the transaction on the unlocked connector (reason UnlockCommand)."""
        if self.version is not OcppVersion.V16 or _status(answer) != "Unlocked":
            return
        connector = self._connector(request.connector_id)
        if connector is not None and connector.transaction is not None:
            await self.stop_transaction(connector.transaction, "UnlockCommand")

    # -- smart charging ------------------------------------------------------------------

    @on("SetChargingProfile")
    def on_set_charging_profile(self, request: Any) -> dict[str, Any]:
        """Accepted and kept (in place of one with the same id). Rejected for an unknown
        connector, and for a TxProfile where no transaction is (or not the one named)."""
        if self.version is OcppVersion.V16:
            where, profile = request.connector_id, request.cs_charging_profiles
            profile_id = profile.charging_profile_id
        else:
            where, profile = request.evse_id, request.charging_profile
            profile_id = profile.id
        purpose = str(profile.charging_profile_purpose)
        connector = self._connector(where)
        if where != 0 and connector is None:
            return _REJECTED
        if purpose == "TxProfile":
            transaction = None if connector is None else connector.transaction
            named = profile.transaction_id
            if transaction is None or (named is not None and str(named) != str(transaction.id)):
                return _REJECTED
        self.charging_profiles[profile_id] = InstalledProfile(
            profile_id, where, purpose, profile.stack_level
        )
        return _ACCEPTED

    @on("ClearChargingProfile")
    def on_clear_charging_profile(self, request: Any) -> dict[str, Any]:
        """Remove the profile with the id given, or those matching every criterion given;
        Unknown when none does."""
        if self.version is OcppVersion.V16:
            profile_id, criteria = request.id, request
            where = request.connector_id
        else:
            profile_id, criteria = request.charging_profile_id, request.charging_profile_criteria
            where = None if criteria is None else criteria.evse_id
        purpose = None if criteria is None else criteria.charging_profile_purpose
        stack_level = None if criteria is None else criteria.stack_level
        doomed = [
            p.id
            for p in self.charging_profiles.values()
            if (profile_id is None or p.id == profile_id)
            and (profile_id is not None or where is None or p.evse_id == where)
            and (profile_id is not None or purpose is None or p.purpose == str(purpose))
            and (profile_id is not None or stack_level is None or p.stack_level == stack_level)
        ]
        for doomed_id in doomed:
            del self.charging_profiles[doomed_id]
        return {"status": "Accepted" if doomed else "Unknown"}

    # -- firmware and logs -----------------------------------------------------------------

    @on("UpdateFirmware")
    def on_update_firmware(self, request: Any) -> dict[str, Any]:
        """Accepted (1.6: the empty answer). The simulated station downloads nothing."""
        return {} if self.version is OcppVersion.V16 else _ACCEPTED

    @on("SignedUpdateFirmware")
    def on_signed_update_firmware(self, request: Any) -> dict[str, Any]:
        """1.6 security whitepaper: Accepted. The simulated station downloads nothing."""
        return _ACCEPTED

    @on("GetDiagnostics")
    def on_get_diagnostics(self, request: Any) -> dict[str, Any]:
        """1.6: the name of the file it would upload. The simulated station uploads nothing."""
        return {"fileName": f"{self.station_id}-diagnostics.log"}

    @on("GetLog")
    def on_get_log(self, request: Any) -> dict[str, Any]:
        """Accepted, with the name of the file it would upload. It uploads nothing."""
        log_type = str(request.log_type)
        return {"status": "Accepted", "filename": f"{self.station_id}-{log_type}.log"}

    # -- the rest ------------------------------------------------------------------------

    @on("ClearCache")
    def on_clear_cache(self, request: Any) -> dict[str, Any]:
        """Accepted (the station keeps no authorization cache)."""
        return _ACCEPTED

    @on("DataTransfer")
    def on_data_transfer(self, request: Any) -> dict[str, Any]:
        """Accepted, echoing the data, for the station's own ``vendor``; else UnknownVendorId."""
        if request.vendor_id != self.vendor:
            return {"status": "UnknownVendorId"}
        return {"status": "Accepted", "data": request.data}

    @on("GetLocalListVersion")
    def on_get_local_list_version(self, request: Any) -> dict[str, Any]:
        """The version of the last local list received (0: none)."""
        key = "listVersion" if self.version is OcppVersion.V16 else "versionNumber"
        return {key: self.local_list_version}

    @on("SendLocalList")
    def on_send_local_list(self, request: Any) -> dict[str, Any]:
        """Accepted; only the list's version is kept."""
        version = request.list_version if self.version is OcppVersion.V16 else None
        self.local_list_version = version if version is not None else request.version_number
        return _ACCEPTED

    @on("GetTransactionStatus")
    def on_get_transaction_status(self, request: Any) -> dict[str, Any]:
        """2.x: whether messages wait to be sent (of that transaction, if one is named)."""
        wanted = request.transaction_id
        if wanted is None:
            return {"messagesInQueue": bool(self._queue)}
        waiting = any(
            m.transaction is not None and m.transaction.id == wanted for m in self._queue
        )
        ongoing = self._transaction_by_id(wanted) is not None
        return {"messagesInQueue": waiting, "ongoingIndicator": ongoing}


@contextlib.asynccontextmanager
async def simulate_station(
    url: str,
    station_id: str,
    version: OcppVersion | str = OcppVersion.V16,
    *,
    timeout: float | None = 30.0,
    **options: Any,
) -> AsyncIterator[SimulatedStation]:
    """Run a :class:`SimulatedStation` at ``url``; yield it once it is online.

    ``options`` go to :class:`SimulatedStation`. Raises as
    :meth:`~SimulatedStation.start` does; on exit the station is stopped.
    """
    station = SimulatedStation(url, station_id, version, **options)
    await station.start(timeout=timeout)
    try:
        yield station
    finally:
        await station.stop()
