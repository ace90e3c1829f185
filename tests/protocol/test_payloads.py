"""camelCase JSON payloads <-> the ocpp package's dataclasses."""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Callable
from typing import Any

import pytest
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16 import datatypes as types16
from ocpp.v16 import enums as enums16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201 import datatypes as types201
from ocpp.v201 import enums as enums201

from csms_kit.protocol.extra_types import NotifyPeriodicEventStream, StreamDataElementType
from csms_kit.protocol.payloads import PayloadCodec, dataclass_for, payload_codec
from csms_kit.protocol.schemas import (
    call_actions,
    compile_validator,
    known_actions,
    pristine_schema,
    send_actions,
)
from csms_kit.versions import OcppVersion

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21
UTC = datetime.timezone.utc

MESSAGES = [
    (version, action, message)
    for version in OcppVersion
    for action in sorted(known_actions(version))
    for message in ("request", "response")
    if message == "request" or action in call_actions(version)
]
MESSAGE_IDS = [f"{v.value}-{a}-{m}" for v, a, m in MESSAGES]

Example = Callable[[dict[str, Any], bool], Any]


def codec_for(version: OcppVersion, action: str, message: Any) -> PayloadCodec:
    codec = payload_codec(version, action, message)
    assert codec is not None
    return codec


def contains(big: Any, small: Any) -> bool:
    """``big`` holds everything ``small`` does (it may add defaults the dataclass fills in)."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(
            k in big and contains(big[k], v) for k, v in small.items()
        )
    if isinstance(small, list):
        return isinstance(big, list) and len(big) == len(small) and all(map(contains, big, small))
    return bool(big == small)


def closed_objects_are_dataclasses(schema: dict[str, Any], node: Any, value: Any) -> list[str]:
    """Where the schema closes an object, the decoded value must be a dataclass; enums members."""
    definitions = schema.get("definitions", {})
    problems: list[str] = []

    def walk(node: dict[str, Any], value: Any, path: str) -> None:
        while "$ref" in node:
            node = definitions[node["$ref"].rsplit("/", 1)[-1]]
        if node.get("type") == "object" or "properties" in node:
            if node.get("additionalProperties", True) is not False:
                if not isinstance(value, dict):
                    problems.append(f"{path}: open object decoded as {type(value).__name__}")
                return
            if not dataclasses.is_dataclass(value):
                problems.append(f"{path}: closed object decoded as {type(value).__name__}")
                return
            attributes = {name.replace("_", "").lower(): name for name in vars(value)}
            for key, sub in node.get("properties", {}).items():
                name = attributes.get(key.replace("_", "").lower())
                if name is None:
                    problems.append(f"{path}.{key}: lost")
                elif getattr(value, name) is not None:
                    walk(sub, getattr(value, name), f"{path}.{key}")
        elif node.get("type") == "array":
            for index, item in enumerate(value):
                walk(node["items"], item, f"{path}[{index}]")
        elif "enum" in node and not isinstance(value, enum.Enum):
            problems.append(f"{path}: enum decoded as {type(value).__name__}")

    walk(node, value, "")
    return problems


# -- every message of every version ------------------------------------------------------


@pytest.mark.parametrize(("version", "action", "message"), MESSAGES, ids=MESSAGE_IDS)
def test_every_message_has_a_codec(version: OcppVersion, action: str, message: Any) -> None:
    """payload_codec builds for every request and response of every version."""
    codec = codec_for(version, action, message)
    assert dataclasses.is_dataclass(codec.type)
    assert codec.type is dataclass_for(version, action, message)
    assert codec.type.__name__ == action
    assert payload_codec(version, action, message) is codec  # cached


@pytest.mark.parametrize(("version", "action", "message"), MESSAGES, ids=MESSAGE_IDS)
@pytest.mark.parametrize("full", [False, True], ids=["required", "full"])
def test_every_message_round_trips(
    version: OcppVersion, action: str, message: Any, full: bool, example_payload: Example
) -> None:
    """A schema-valid payload decodes to its dataclass and encodes back to a valid superset."""
    schema = pristine_schema(version, action, message)
    assert schema is not None
    payload = example_payload(schema, full)
    check = compile_validator(version, action, message)
    assert check is not None
    check(payload)
    codec = codec_for(version, action, message)
    decoded = codec.decode(payload)
    assert isinstance(decoded, codec.type)
    encoded = codec.encode(decoded)
    check(encoded)
    assert contains(encoded, payload), (payload, encoded)
    assert codec.decode(encoded) == decoded


@pytest.mark.parametrize(("version", "action", "message"), MESSAGES, ids=MESSAGE_IDS)
def test_every_closed_object_decodes_to_a_dataclass(
    version: OcppVersion, action: str, message: Any, example_payload: Example
) -> None:
    """Nested closed objects become dataclasses, enums members, open objects stay dicts."""
    schema = pristine_schema(version, action, message)
    assert schema is not None
    decoded = codec_for(version, action, message).decode(example_payload(schema, True))
    assert closed_objects_are_dataclasses(schema, schema, decoded) == []


@pytest.mark.parametrize(
    ("version", "action", "message"),
    [
        (V16, "Nope", "request"),
        (V201, "StartTransaction", "request"),
        (V21, "NotifyPeriodicEventStream", "response"),
        (V16, "TransactionEvent", "response"),
    ],
)
def test_no_codec_for_unknown_messages(version: OcppVersion, action: str, message: Any) -> None:
    """A message the version lacks has no codec."""
    assert payload_codec(version, action, message) is None


# -- 1.6 MeterValues ---------------------------------------------------------------------

METER_VALUES16 = {
    "connectorId": 2,
    "transactionId": 77,
    "meterValue": [
        {
            "timestamp": "2024-01-01T00:00:00Z",
            "sampledValue": [
                {
                    "value": "1234.5",
                    "context": "Sample.Periodic",
                    "measurand": "Energy.Active.Import.Register",
                    "unit": "kWh",
                    "phase": "L1",
                    "location": "Outlet",
                    "format": "Raw",
                },
                {"value": "7"},
            ],
        },
        {"timestamp": "2024-01-01T00:01:00Z", "sampledValue": [{"value": "8"}]},
    ],
}


def test_v16_meter_values_decode_to_nested_dataclasses() -> None:
    """1.6 meterValue (typed as bare List by ocpp) decodes to MeterValue/SampledValue objects."""
    request = codec_for(V16, "MeterValues", "request").decode(METER_VALUES16)
    assert isinstance(request, call16.MeterValues)
    assert request.connector_id == 2
    assert request.transaction_id == 77
    assert len(request.meter_value) == 2
    first = request.meter_value[0]
    assert isinstance(first, types16.MeterValue)
    assert first.timestamp == "2024-01-01T00:00:00Z"
    assert all(isinstance(s, types16.SampledValue) for s in first.sampled_value)
    sample = first.sampled_value[0]
    assert sample.value == "1234.5"
    assert sample.context is enums16.ReadingContext.sample_periodic
    assert sample.measurand is enums16.Measurand.energy_active_import_register
    assert sample.unit is enums16.UnitOfMeasure.kwh
    assert sample.phase is enums16.Phase.l1
    assert sample.location is enums16.Location.outlet
    assert sample.format is enums16.ValueFormat.raw
    assert first.sampled_value[1] == types16.SampledValue(value="7")


def test_v16_meter_values_round_trip() -> None:
    """Encoding the decoded 1.6 MeterValues gives the original payload back."""
    codec = codec_for(V16, "MeterValues", "request")
    assert codec.encode(codec.decode(METER_VALUES16)) == METER_VALUES16


def test_v16_meter_values_built_by_hand_encode() -> None:
    """A hand-built 1.6 MeterValues with dataclasses and enums encodes to camelCase JSON."""
    request = call16.MeterValues(
        connector_id=1,
        meter_value=[
            types16.MeterValue(
                timestamp="2024-01-01T00:00:00Z",
                sampled_value=[
                    types16.SampledValue(value="5", unit=enums16.UnitOfMeasure.wh),
                ],
            )
        ],
    )
    payload = codec_for(V16, "MeterValues", "request").encode(request)
    assert payload == {
        "connectorId": 1,
        "meterValue": [
            {"timestamp": "2024-01-01T00:00:00Z", "sampledValue": [{"value": "5", "unit": "Wh"}]}
        ],
    }


# -- 2.0.1 BootNotification and customData ----------------------------------------------

BOOT201 = {
    "reason": "PowerUp",
    "chargingStation": {
        "model": "Fast-1",
        "vendorName": "ACME",
        "serialNumber": "SN-1",
        "firmwareVersion": "1.2.3",
        "modem": {"iccid": "8988", "imsi": "2620"},
    },
    "customData": {"vendorId": "com.acme", "acmeMode": "eco", "acmeTable": {"a": [1, 2]}},
}


def test_v201_boot_notification_decodes_nested_type() -> None:
    """chargingStation becomes ChargingStationType, modem ModemType, reason an enum member."""
    request = codec_for(V201, "BootNotification", "request").decode(BOOT201)
    assert isinstance(request, call201.BootNotification)
    assert request.reason is enums201.BootReasonEnumType.power_up
    station = request.charging_station
    assert isinstance(station, types201.ChargingStationType)
    assert (station.model, station.vendor_name, station.serial_number) == (
        "Fast-1",
        "ACME",
        "SN-1",
    )
    assert station.firmware_version == "1.2.3"
    assert station.modem == types201.ModemType(iccid="8988", imsi="2620")


def test_v201_custom_data_stays_a_dict_with_vendor_keys() -> None:
    """customData is an open object: a dict keeping every vendor key."""
    request = codec_for(V201, "BootNotification", "request").decode(BOOT201)
    assert request.custom_data == BOOT201["customData"]
    assert isinstance(request.custom_data, dict)


def test_v201_boot_notification_round_trip() -> None:
    """Encoding the decoded 2.0.1 BootNotification gives the original payload back."""
    codec = codec_for(V201, "BootNotification", "request")
    assert codec.encode(codec.decode(BOOT201)) == BOOT201


def test_v201_nested_custom_data_is_kept_as_attribute() -> None:
    """customData on a nested type the ocpp package lacks a field for survives as custom_data."""
    payload = {
        "reason": "PowerUp",
        "chargingStation": {
            "model": "M",
            "vendorName": "V",
            "customData": {"vendorId": "x", "k": 1},
            "modem": {"customData": {"vendorId": "y", "deep": {"z": [1]}}},
        },
    }
    codec = codec_for(V201, "BootNotification", "request")
    request = codec.decode(payload)
    assert request.charging_station.custom_data == {"vendorId": "x", "k": 1}
    assert request.charging_station.modem.custom_data == {"vendorId": "y", "deep": {"z": [1]}}
    assert codec.encode(request) == payload


TRANSACTION_EVENT201 = {
    "eventType": "Started",
    "timestamp": "2024-01-01T00:00:00Z",
    "triggerReason": "Authorized",
    "seqNo": 0,
    "offline": False,
    "transactionInfo": {"transactionId": "tx-1", "chargingState": "Charging"},
    "idToken": {
        "idToken": "ABC123",
        "type": "ISO14443",
        "additionalInfo": [{"additionalIdToken": "x", "type": "y"}],
    },
    "evse": {"id": 1, "connectorId": 1},
    "meterValue": [
        {
            "timestamp": "2024-01-01T00:00:00Z",
            "sampledValue": [
                {
                    "value": 1.5,
                    "measurand": "Energy.Active.Import.Register",
                    "unitOfMeasure": {"unit": "kWh", "multiplier": 3},
                }
            ],
        }
    ],
}


def test_v201_transaction_event_decodes() -> None:
    """TransactionEvent decodes every nested object to its dataclass."""
    request = codec_for(V201, "TransactionEvent", "request").decode(TRANSACTION_EVENT201)
    assert isinstance(request, call201.TransactionEvent)
    assert request.event_type is enums201.TransactionEventEnumType.started
    assert request.trigger_reason is enums201.TriggerReasonEnumType.authorized
    assert request.seq_no == 0
    assert request.offline is False
    assert isinstance(request.transaction_info, types201.TransactionType)
    assert request.transaction_info.charging_state is enums201.ChargingStateEnumType.charging
    assert isinstance(request.id_token, types201.IdTokenType)
    assert request.id_token.type is enums201.IdTokenEnumType.iso14443
    assert isinstance(request.id_token.additional_info[0], types201.AdditionalInfoType)
    assert request.evse == types201.EVSEType(id=1, connector_id=1)
    sample = request.meter_value[0].sampled_value[0]
    assert isinstance(request.meter_value[0], types201.MeterValueType)
    assert isinstance(sample, types201.SampledValueType)
    assert sample.value == 1.5
    assert sample.unit_of_measure == types201.UnitOfMeasureType(unit="kWh", multiplier=3)


def test_v201_transaction_event_round_trip() -> None:
    """Encoding the decoded TransactionEvent gives the original payload back."""
    codec = codec_for(V201, "TransactionEvent", "request")
    assert codec.encode(codec.decode(TRANSACTION_EVENT201)) == TRANSACTION_EVENT201


# -- encoding rules ----------------------------------------------------------------------


def test_encode_drops_none_fields() -> None:
    """Fields set to None are omitted, never sent as null."""
    response = result16.StartTransaction(
        transaction_id=5, id_tag_info={"status": "Accepted", "expiryDate": None}
    )
    payload = codec_for(V16, "StartTransaction", "response").encode(response)
    assert payload == {"transactionId": 5, "idTagInfo": {"status": "Accepted"}}


def test_encode_drops_empty_optional_lists_and_dicts() -> None:
    """Empty optional lists and dicts are omitted (OCPP-J: never send empty optional fields)."""
    response = result16.GetConfiguration(configuration_key=[], unknown_key=[])
    assert codec_for(V16, "GetConfiguration", "response").encode(response) == {}
    request = call201.BootNotification(
        charging_station=types201.ChargingStationType(
            model="M", vendor_name="V", modem=types201.ModemType()
        ),
        reason="PowerUp",
        custom_data={},
    )
    payload = codec_for(V201, "BootNotification", "request").encode(request)
    assert payload == {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}


def test_encode_drops_empty_optional_values_given_as_dict() -> None:
    """The same rule holds for dict input."""
    payload = codec_for(V16, "GetConfiguration", "response").encode(
        {"configurationKey": [], "unknownKey": None}
    )
    assert payload == {}


def test_encode_keeps_required_empty_object() -> None:
    """A required object with no fields set is sent as {} (2.0.1 GetChargingProfiles)."""
    codec = codec_for(V201, "GetChargingProfiles", "request")
    request = call201.GetChargingProfiles(
        request_id=1, charging_profile=types201.ChargingProfileCriterionType()
    )
    assert codec.encode(request) == {"requestId": 1, "chargingProfile": {}}
    assert codec.encode({"requestId": 1, "chargingProfile": {}}) == {
        "requestId": 1,
        "chargingProfile": {},
    }


def test_encode_keeps_required_empty_list() -> None:
    """A required list that is empty is sent as [] (1.6 chargingSchedulePeriod)."""
    payload = {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": []},
        },
    }
    encoded = codec_for(V16, "SetChargingProfile", "request").encode(payload)
    assert encoded["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"] == []


def test_encode_keeps_falsy_scalars() -> None:
    """0, False and "" are values, not empty fields."""
    payload = codec_for(V201, "TransactionEvent", "request").encode(
        {**TRANSACTION_EVENT201, "seqNo": 0, "offline": False}
    )
    assert payload["seqNo"] == 0
    assert payload["offline"] is False


@pytest.mark.parametrize(
    "value",
    [
        {"currentTime": "2024-01-01T00:00:00Z", "interval": 300, "status": "Accepted"},
        {"current_time": "2024-01-01T00:00:00Z", "interval": 300, "status": "Accepted"},
        {"currentTime": "2024-01-01T00:00:00Z", "interval": 300, "status": None, "status_x": None}
        | {"status": "Accepted"},
        result16.BootNotification(
            current_time="2024-01-01T00:00:00Z",
            interval=300,
            status=enums16.RegistrationStatus.accepted,
        ),
    ],
    ids=["camelCase", "snake_case", "with-nones", "dataclass"],
)
def test_encode_accepts_dicts_keyed_either_way(value: Any) -> None:
    """Dicts keyed by JSON names or field names, and dataclasses, encode alike."""
    payload = codec_for(V16, "BootNotification", "response").encode(value)
    assert payload == {
        "currentTime": "2024-01-01T00:00:00Z",
        "interval": 300,
        "status": "Accepted",
    }


def test_encode_nested_snake_case_dicts() -> None:
    """Nested dicts keyed by field names are renamed too."""
    payload = codec_for(V201, "BootNotification", "request").encode(
        {
            "reason": "PowerUp",
            "charging_station": {"model": "M", "vendor_name": "V", "serial_number": "S"},
        }
    )
    assert payload == {
        "reason": "PowerUp",
        "chargingStation": {"model": "M", "vendorName": "V", "serialNumber": "S"},
    }


@pytest.mark.parametrize(
    "when",
    [
        datetime.datetime(2024, 2, 29, 23, 59, 58, tzinfo=UTC),
        datetime.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC),
        datetime.datetime(
            2024, 2, 29, 23, 59, 58, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
        ),
    ],
)
def test_datetimes_encode_to_iso_8601(when: datetime.datetime) -> None:
    """datetime values in date-time fields, top-level, nested and in lists, become ISO 8601."""
    heartbeat = codec_for(V16, "Heartbeat", "response").encode(
        result16.Heartbeat(current_time=when)  # type: ignore[arg-type]
    )
    assert datetime.datetime.fromisoformat(heartbeat["currentTime"]) == when
    authorize = codec_for(V16, "Authorize", "response").encode(
        {"id_tag_info": {"status": "Accepted", "expiry_date": when}}
    )
    assert datetime.datetime.fromisoformat(authorize["idTagInfo"]["expiryDate"]) == when
    meter = codec_for(V16, "MeterValues", "request").encode(
        {"connectorId": 1, "meterValue": [{"timestamp": when, "sampledValue": [{"value": "1"}]}]}
    )
    assert datetime.datetime.fromisoformat(meter["meterValue"][0]["timestamp"]) == when
    for payload, action, message in (
        (heartbeat, "Heartbeat", "response"),
        (authorize, "Authorize", "response"),
        (meter, "MeterValues", "request"),
    ):
        check = compile_validator(V16, action, message)  # type: ignore[arg-type]
        assert check is not None
        check(payload)


def test_encoded_enum_members_serialize_as_their_values() -> None:
    """Enum members left in an encoded payload are strings equal to their values."""
    payload = codec_for(V201, "BootNotification", "response").encode(
        result201.BootNotification(
            current_time="2024-01-01T00:00:00Z",
            interval=10,
            status=enums201.RegistrationStatusEnumType.accepted,
        )
    )
    assert payload["status"] == "Accepted"
    assert isinstance(payload["status"], str)


# -- 2.1 NotifyPeriodicEventStream ------------------------------------------------------

STREAM = {
    "id": 4,
    "pending": 0,
    "basetime": "2024-01-01T00:00:00Z",
    "data": [{"t": 0.5, "v": "230.1"}, {"t": 1.5, "v": "229.8", "customData": {"vendorId": "x"}}],
}


def test_notify_periodic_event_stream_uses_extra_dataclass() -> None:
    """2.1 NotifyPeriodicEventStream decodes to csms_kit's own dataclasses."""
    codec = codec_for(V21, "NotifyPeriodicEventStream", "request")
    assert codec.type is NotifyPeriodicEventStream
    assert "NotifyPeriodicEventStream" in send_actions(V21)
    message = codec.decode(STREAM)
    assert isinstance(message, NotifyPeriodicEventStream)
    assert (message.id, message.pending, message.basetime) == (4, 0, "2024-01-01T00:00:00Z")
    assert message.data == [
        StreamDataElementType(t=0.5, v="230.1"),
        StreamDataElementType(t=1.5, v="229.8", custom_data={"vendorId": "x"}),
    ]
    assert codec.encode(message) == STREAM


def test_notify_periodic_event_stream_encodes_from_dataclass() -> None:
    """A hand-built NotifyPeriodicEventStream encodes to a schema-valid payload."""
    message = NotifyPeriodicEventStream(
        id=1, pending=2, basetime="2024-01-01T00:00:00Z", data=[StreamDataElementType(t=0, v="1")]
    )
    payload = codec_for(V21, "NotifyPeriodicEventStream", "request").encode(message)
    assert payload == {
        "id": 1,
        "pending": 2,
        "basetime": "2024-01-01T00:00:00Z",
        "data": [{"t": 0, "v": "1"}],
    }
    check = compile_validator(V21, "NotifyPeriodicEventStream", "request")
    assert check is not None
    check(payload)


# -- decoding shapes that skipped validation --------------------------------------------


def test_decode_keeps_unknown_enum_values_as_strings() -> None:
    """A value outside an enum (let through by a quirk) arrives as a plain str."""
    payload = {
        **METER_VALUES16,
        "meterValue": [
            {"timestamp": "2024-01-01T00:00:00Z", "sampledValue": [{"value": "1", "unit": "kwh"}]}
        ],
    }
    request = codec_for(V16, "MeterValues", "request").decode(payload)
    unit = request.meter_value[0].sampled_value[0].unit
    assert unit == "kwh"
    assert not isinstance(unit, enum.Enum)


def test_decode_fills_missing_required_fields_with_none() -> None:
    """A missing required field (let through by a quirk) arrives as None."""
    request = codec_for(V16, "BootNotification", "request").decode({"chargePointVendor": "v"})
    assert isinstance(request, call16.BootNotification)
    assert request.charge_point_model is None


def test_decode_drops_unknown_keys() -> None:
    """Keys the schema does not define are dropped."""
    request = codec_for(V16, "Heartbeat", "request").decode({"vendorThing": 1})
    assert request == call16.Heartbeat()
