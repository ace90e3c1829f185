"""The OCPP JSON schemas shipped in the ``ocpp`` package, compiled once.

Schemas are read from ``ocpp/<version>/schemas``, relaxed by any
:class:`~csms_kit.protocol.validation.Quirk`, compiled with ``jsonschema-rs`` (a
compiled validator: about 10x faster than ``fastjsonschema`` and 300x faster than
``jsonschema`` on a MeterValues payload, see ``bench/README.md``) and cached.
Validation runs inline; it takes a few microseconds, far less than a thread hop.

A schema violation is reported as the OCPP-J error the spec assigns to it; the
description names the property path and the rule, never the offending value.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import json
from collections.abc import Callable
from typing import Any, Literal

import jsonschema_rs

from csms_kit.error_codes import ErrorCode
from csms_kit.exceptions import UsageError
from csms_kit.protocol.validation import Quirk
from csms_kit.versions import OcppVersion

__all__ = [
    "Message",
    "SchemaViolation",
    "any_version_actions",
    "call_actions",
    "check_action_name",
    "compile_validator",
    "known_actions",
    "load_schema",
    "pristine_schema",
    "send_actions",
]

Message = Literal["request", "response"]
Schema = dict[str, Any]


class SchemaViolation(ValueError):
    """A payload broke its schema: ``code`` is the OCPP-J error to report."""

    def __init__(self, code: ErrorCode, description: str, path: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.path = path


@functools.cache
def _schema_files(version: OcppVersion) -> dict[str, str]:
    folder = importlib.resources.files("ocpp") / version.package / "schemas"
    return {
        entry.name[:-5]: entry.name for entry in folder.iterdir() if entry.name.endswith(".json")
    }


def _file_stem(version: OcppVersion, action: str, message: Message) -> str | None:
    files = _schema_files(version)
    if message == "response":
        stem = action + "Response"
        return stem if stem in files else None
    if version is OcppVersion.V16:
        return action if action in files and not action.endswith("Response") else None
    if action + "Request" in files:
        return action + "Request"
    # A bare file name is a 2.1 SEND message (no Request/Response pair).
    if action in files and not action.endswith(("Request", "Response")):
        return action
    return None


@functools.cache
def known_actions(version: OcppVersion) -> frozenset[str]:
    """Every action ``version`` defines (requests and 2.1 SEND messages)."""
    actions = set()
    for stem in _schema_files(version):
        if stem.endswith("Response"):
            continue
        if version is not OcppVersion.V16 and stem.endswith("Request"):
            stem = stem[: -len("Request")]
        actions.add(stem)
    return frozenset(actions)


@functools.cache
def any_version_actions() -> frozenset[str]:
    """Every action some OCPP version defines: a name outside it is a typo."""
    return frozenset().union(*(known_actions(v) for v in OcppVersion))


def check_action_name(action: str, where: str) -> None:
    """Raise :class:`~csms_kit.exceptions.UsageError` if no OCPP version has ``action``."""
    if action not in any_version_actions():
        raise UsageError(f"{where}: {action!r} is not an action of any OCPP version")


@functools.cache
def call_actions(version: OcppVersion) -> frozenset[str]:
    """The actions of ``version`` that are CALLs (they have a response)."""
    return frozenset(a for a in known_actions(version) if _file_stem(version, a, "response"))


@functools.cache
def send_actions(version: OcppVersion) -> frozenset[str]:
    """The OCPP 2.1 SEND messages of ``version`` (actions without a response)."""
    return known_actions(version) - call_actions(version)


@functools.cache
def pristine_schema(version: OcppVersion, action: str, message: Message) -> Schema | None:
    stem = _file_stem(version, action, message)
    if stem is None:
        return None
    path = importlib.resources.files("ocpp") / version.package / "schemas" / f"{stem}.json"
    # The 2.x schema files start with a byte order mark.
    schema: Schema = json.loads(path.read_text(encoding="utf-8-sig"))
    return schema


def load_schema(
    version: OcppVersion, action: str, message: Message, quirks: tuple[Quirk, ...] = ()
) -> Schema | None:
    """The schema of one message of one action, with ``quirks`` applied; ``None`` if unknown.

    The returned dict is shared when no quirks apply: do not modify it.
    """
    schema = pristine_schema(version, action, message)
    if schema is None or not quirks:
        return schema
    relaxed = copy.deepcopy(schema)
    for quirk in quirks:
        _relax(relaxed, quirk)
    return relaxed


def _relax(schema: Schema, quirk: Quirk) -> None:
    definitions = schema.get("definitions", {})

    def inline(node: Schema) -> Schema:
        # Copy a referenced definition into place so that relaxing one field does
        # not relax every other field that shares the definition.
        while "$ref" in node:
            target = definitions[node["$ref"].rsplit("/", 1)[-1]]
            node.clear()
            node.update(copy.deepcopy(target))
        return node

    def items_of(node: Schema) -> Schema:
        node = inline(node)
        while node.get("type") == "array" and isinstance(node.get("items"), dict):
            node = inline(node["items"])
        return node

    parent: Schema | None = None
    node = items_of(schema)
    name = ""
    for segment in filter(None, quirk.path.split(".")):
        properties = node.get("properties", {})
        if segment not in properties:
            raise UsageError(
                f"quirk for {quirk.action} {quirk.message}: no field {segment!r} "
                f"on the way to {quirk.path!r}"
            )
        parent, name = node, segment
        node = items_of(properties[segment])
    for keyword in quirk.drop:
        if keyword == "required":
            if parent is None or name not in parent.get("required", ()):
                raise UsageError(f"quirk for {quirk.action}: {quirk.path!r} is not required")
            parent["required"] = [r for r in parent["required"] if r != name]
        elif keyword in node:
            del node[keyword]
        else:
            raise UsageError(
                f"quirk for {quirk.action} {quirk.message}: {quirk.path or 'the payload'!r} "
                f"has no {keyword!r} constraint"
            )


_CODE_BY_KEYWORD = {
    "type": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "required": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "minItems": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "maxItems": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "additionalProperties": ErrorCode.FORMAT_VIOLATION,
    "additionalItems": ErrorCode.FORMAT_VIOLATION,
    "format": ErrorCode.FORMAT_VIOLATION,
    "enum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "const": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "maxLength": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "minLength": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "minimum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "maximum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "exclusiveMinimum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "exclusiveMaximum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "multipleOf": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "pattern": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
}


def _explain(keyword: str, facts: dict[str, Any]) -> str:
    if keyword == "required":
        return f"required property {facts.get('property', '?')!s:.64} is missing"
    if keyword == "type":
        return "must be of type " + " or ".join(map(str, facts.get("types", ["?"])))
    if keyword == "additionalProperties":
        return "has a property the schema does not define"
    if keyword == "enum":
        return "is not one of the allowed values"
    if keyword in ("maxLength", "minLength", "maxItems", "minItems", "minimum", "maximum"):
        return f"violates {keyword} {facts.get('limit')}"
    return f"violates {keyword}"


def _violation(error: jsonschema_rs.ValidationError) -> SchemaViolation:
    keyword = error.kind.name
    path = "/".join(str(part) for part in error.instance_path)
    code = _CODE_BY_KEYWORD.get(keyword, ErrorCode.FORMAT_VIOLATION)
    # instance_path holds only keys the schema defines and array indices, never
    # the station's values, so it is safe to send back.
    explanation = _explain(keyword, error.kind.as_dict())
    description = f"{path}: {explanation}" if path else explanation
    return SchemaViolation(code, description[:255], path)


Validator = Callable[[Any], None]


@functools.cache
def compile_validator(
    version: OcppVersion, action: str, message: Message, quirks: tuple[Quirk, ...] = ()
) -> Validator | None:
    """A function that raises :class:`SchemaViolation` for an invalid payload.

    ``None`` if ``version`` has no such message. Compiled once per argument set.
    """
    schema = load_schema(version, action, message, quirks)
    if schema is None:
        return None
    validate = jsonschema_rs.validator_for(schema, validate_formats=True).validate
    error_type = jsonschema_rs.ValidationError

    def check(payload: Any) -> None:
        try:
            validate(payload)
        except error_type as error:
            raise _violation(error) from None
        except (ValueError, TypeError, OverflowError):
            # Values the validator cannot represent (objects that are not JSON, from
            # application code) are a type problem, not a crash.
            raise SchemaViolation(
                ErrorCode.TYPE_CONSTRAINT_VIOLATION, "payload holds a value JSON cannot carry", ""
            ) from None

    return check
