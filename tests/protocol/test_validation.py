"""ValidationPolicy and Quirk: the settings, checked when they are made."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from csms_kit.protocol.validation import Quirk, Validation, ValidationPolicy


def test_default_policy_enforces_everything() -> None:
    """Without arguments every action is enforced and nothing is relaxed."""
    policy = ValidationPolicy()
    assert policy.default is Validation.ENFORCE
    assert policy.mode_for("BootNotification") is Validation.ENFORCE
    assert policy.quirks == ()
    assert policy.quirks_for("BootNotification", "request") == ()


@pytest.mark.parametrize(
    ("value", "member"),
    [
        ("enforce", Validation.ENFORCE),
        ("log", Validation.LOG),
        ("off", Validation.OFF),
        (Validation.LOG, Validation.LOG),
    ],
)
def test_string_modes_become_members(value: Any, member: Validation) -> None:
    """default and per_action values given as strings are stored as Validation members."""
    policy = ValidationPolicy(default=value, per_action={"Heartbeat": value})
    assert policy.default is member
    assert policy.per_action["Heartbeat"] is member
    assert policy.mode_for("Heartbeat") is member
    assert policy.mode_for("Authorize") is member


@pytest.mark.parametrize("value", ["ENFORCE", "strict", "", None, 1])
def test_unknown_mode_is_refused(value: Any) -> None:
    """A mode that is not a Validation value raises ValueError, for default and per action."""
    with pytest.raises(ValueError):
        ValidationPolicy(default=value)
    with pytest.raises(ValueError):
        ValidationPolicy(per_action={"Heartbeat": value})


def test_per_action_overrides_default() -> None:
    """per_action names the mode of its actions; the rest follow default."""
    policy = ValidationPolicy(
        default=Validation.LOG, per_action={"MeterValues": "off", "Authorize": "enforce"}
    )
    assert policy.mode_for("MeterValues") is Validation.OFF
    assert policy.mode_for("Authorize") is Validation.ENFORCE
    assert policy.mode_for("Heartbeat") is Validation.LOG
    assert policy.mode_for("meterValues") is Validation.LOG  # names are case-sensitive


def test_per_action_is_copied() -> None:
    """Changing the mapping passed in later does not change the policy."""
    modes = {"Heartbeat": "off"}
    policy = ValidationPolicy(per_action=modes)
    modes["Heartbeat"] = "enforce"
    modes["Authorize"] = "off"
    assert policy.mode_for("Heartbeat") is Validation.OFF
    assert policy.mode_for("Authorize") is Validation.ENFORCE


def test_validation_is_a_str_enum() -> None:
    """Validation members compare equal to their string values."""
    assert Validation.LOG == "log"
    assert [m.value for m in Validation] == ["enforce", "log", "off"]


def test_quirks_for_filters_by_action_and_message_in_order() -> None:
    """quirks_for returns the quirks of one message of one action, in the given order."""
    a = Quirk("MeterValues", "meterValue.sampledValue.unit", ("enum",))
    b = Quirk("BootNotification", "chargePointVendor", ("maxLength",))
    c = Quirk("MeterValues", "meterValue.timestamp", ("format",))
    d = Quirk("MeterValues", "", ("additionalProperties",), message="response")
    policy = ValidationPolicy(quirks=[a, b, c, d])
    assert policy.quirks == (a, b, c, d)
    assert policy.quirks_for("MeterValues", "request") == (a, c)
    assert policy.quirks_for("MeterValues", "response") == (d,)
    assert policy.quirks_for("BootNotification", "request") == (b,)
    assert policy.quirks_for("BootNotification", "response") == ()
    assert policy.quirks_for("Heartbeat", "request") == ()


def test_quirks_from_a_generator_are_kept() -> None:
    """Any iterable of quirks is stored as a tuple."""
    quirks = (Quirk("Heartbeat", "", ("additionalProperties",)) for _ in range(2))
    policy = ValidationPolicy(quirks=quirks)  # type: ignore[arg-type]
    assert isinstance(policy.quirks, tuple)
    assert len(policy.quirks) == 2


def test_policy_is_frozen() -> None:
    """A policy cannot be changed after it is made."""
    policy = ValidationPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.default = Validation.OFF  # type: ignore[misc]


# -- Quirk -------------------------------------------------------------------------------


def test_quirk_single_keyword_string_becomes_tuple() -> None:
    """drop given as one string is stored as a one-element tuple."""
    quirk = Quirk("BootNotification", "chargePointVendor", "maxLength")  # type: ignore[arg-type]
    assert quirk.drop == ("maxLength",)
    assert quirk.message == "request"


def test_quirk_needs_a_keyword() -> None:
    """An empty drop is refused."""
    with pytest.raises(ValueError):
        Quirk("BootNotification", "chargePointVendor", ())


@pytest.mark.parametrize("message", ["req", "Request", "call", ""])
def test_quirk_message_must_be_request_or_response(message: str) -> None:
    """message is 'request' or 'response', nothing else."""
    with pytest.raises(ValueError):
        Quirk("BootNotification", "chargePointVendor", ("maxLength",), message=message)  # type: ignore[arg-type]


@pytest.mark.parametrize("message", ["request", "response"])
def test_quirk_accepts_request_and_response(message: Any) -> None:
    """Both message kinds are accepted."""
    assert Quirk("Authorize", "idTag", ("maxLength",), message=message).message == message


def test_quirks_are_hashable_values() -> None:
    """Quirks compare by value and hash (they are part of a validator cache key)."""
    one = Quirk("Authorize", "idTag", ("maxLength",))
    two = Quirk("Authorize", "idTag", "maxLength")  # type: ignore[arg-type]
    assert one == two
    assert hash(one) == hash(two)
    assert len({one, two}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.path = "other"  # type: ignore[misc]


def test_quirk_drop_given_as_a_list_is_usable_or_refused_at_once() -> None:
    """A list of keywords is made a tuple, or refused when the Quirk is made, never later."""
    try:
        quirk = Quirk("Authorize", "idTag", ["maxLength", "required"])  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return  # refused up front: acceptable
    assert quirk.drop == ("maxLength", "required")
    hash(quirk)  # used as a cache key by compile_validator
