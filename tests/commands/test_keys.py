"""The table of 1.6 configuration keys and their 2.x variables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ocpp.v16 import enums as enums16
from ocpp.v201 import enums as enums201

from csms_kit import UsageError
from csms_kit.commands import STANDARD_KEYS, DeviceVariable, key_for_variable, variable_for_key

DOCS = Path(__file__).parents[2] / "docs" / "commands.md"


def test_every_key_the_ocpp_package_knows_is_in_the_table() -> None:
    """The ocpp package's 1.6 ConfigurationKey enum is covered (and spelled alike)."""
    assert {str(k) for k in enums16.ConfigurationKey} <= set(STANDARD_KEYS)


@pytest.mark.parametrize(
    ("key", "variable"),
    [(k, v) for k, v in STANDARD_KEYS.items() if v is not None],
    ids=[k for k, v in STANDARD_KEYS.items() if v is not None],
)
def test_each_variable_is_a_standard_2x_one(key: str, variable: DeviceVariable) -> None:
    """Component, variable and instance names are those the 2.0.1 device model defines."""
    assert variable.component in {str(c) for c in enums201.ControllerComponentName}
    names = getattr(enums201, f"{variable.component}VariableName")
    assert variable.variable in {str(n) for n in names}
    if variable.variable_instance is not None:
        instances = getattr(enums201, f"{variable.component}InstanceName")
        assert variable.variable_instance in {str(i) for i in instances}
    assert variable.component_instance is None and variable.evse_id is None


def test_the_table_goes_both_ways() -> None:
    """No two keys share a variable: each mapped variable gives its key back."""
    for key, variable in STANDARD_KEYS.items():
        if variable is not None:
            assert key_for_variable(variable) == key
            assert variable_for_key(key) == variable


def test_a_variable_with_an_instance_or_evse_is_another_variable() -> None:
    """Only the exact variable maps: the same name on an EVSE has no 1.6 key."""
    with pytest.raises(UsageError, match=r"no standard OCPP 1\.6"):
        key_for_variable(DeviceVariable("OCPPCommCtrlr", "HeartbeatInterval", evse_id=1))
    with pytest.raises(UsageError, match=r"no standard OCPP 1\.6"):
        key_for_variable(DeviceVariable("OCPPCommCtrlr", "MessageAttempts"))


def test_device_variables_print_as_in_the_docs() -> None:
    """str() names the component, its instance and EVSE, the variable and its instance."""
    assert str(STANDARD_KEYS["TransactionMessageAttempts"]) == (
        "OCPPCommCtrlr.MessageAttempts[TransactionEvent]"
    )
    full = DeviceVariable("EVSE", "Power", "main", "Max", evse_id=1, connector_id=2)
    assert str(full) == "EVSE[main]@evse 1/2.Power[Max]"
    assert str(DeviceVariable("EVSE", "Power", evse_id=1)) == "EVSE@evse 1.Power"


def _documented_table() -> dict[str, str]:
    """The key table of docs/commands.md: 1.6 key -> 2.x variable text ("—": none)."""
    table = {}
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| `(\w+)` \| (?:`([^`]+)`|—) \|", line)
        if match:
            table[match.group(1)] = match.group(2) or "—"
    return table


def test_the_docs_show_the_table_as_it_is() -> None:
    """docs/commands.md lists every key with its variable, exactly as the code maps it."""
    expected = {k: "—" if v is None else str(v) for k, v in STANDARD_KEYS.items()}
    assert _documented_table() == expected
