"""Conversion between JSON payloads (camelCase) and the ``ocpp`` package's dataclasses.

A :class:`PayloadCodec` is built once per message from its schema and its dataclass,
walking both side by side: every object the schema closes
(``additionalProperties: false``) becomes its dataclass, nested ones included, enum
strings become enum members, and each JSON key is matched to its field once, by
spelling without case or underscores. So no regular expression runs per message and
the spec's irregular casings (``SoC``, ``V2X``, ``URL``) need no special cases.

Where the ``ocpp`` package leaves a 1.6 field untyped (``meter_value: List``), the
dataclass is found among the version's datatypes by its set of fields. Open objects
(``customData``, free-form ``data``) stay dicts so vendor keys survive.

Encoding takes a dataclass, or a dict keyed by JSON names or field names, drops
``None``, drops empty lists and dicts in optional fields (OCPP-J: never send empty
optional fields), and writes ``datetime`` values of date-time fields in ISO 8601.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
import importlib
import re
import types
import typing
from collections.abc import Callable
from typing import Any

from csms_kit.protocol import extra_types
from csms_kit.protocol.schemas import Message, Schema, pristine_schema
from csms_kit.versions import OcppVersion

__all__ = ["PayloadCodec", "dataclass_for", "payload_codec"]

Convert = Callable[[Any], Any]


class PayloadCodec:
    """Decode a validated JSON payload into its dataclass, and encode one back."""

    __slots__ = ("decode", "encode", "type")

    def __init__(self, type_: type[Any], decode: Convert, encode: Convert) -> None:
        self.type = type_
        #: JSON dict -> dataclass instance. May raise ``TypeError``/``ValueError`` on
        #: payloads that skipped validation.
        self.decode = decode
        #: dataclass instance (or dict) -> JSON dict.
        self.encode = encode


def _is_object(node: Schema) -> bool:
    return node.get("type") == "object" or "properties" in node


def _normal(name: str) -> str:
    return name.replace("_", "").lower()


def _snake(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).lower()


def _strip_optional(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        # The ocpp package sometimes writes Union[Dict, SomeDataclass]: prefer the class.
        classes = [a for a in args if dataclasses.is_dataclass(a)]
        if classes:
            return classes[0]
        return args[0] if len(args) == 1 else Any
    return hint


def _list_item(hint: Any) -> tuple[bool, Any]:
    if hint is list or typing.get_origin(hint) is list:
        args = typing.get_args(hint)
        return True, args[0] if args else None
    return False, None


_FIELDS: dict[type[Any], dict[str, tuple[str, Any, bool]]] = {}


def _fields(cls: type[Any]) -> dict[str, tuple[str, Any, bool]]:
    """normalized name -> (field name, type hint, has a default), cached per class."""
    cached = _FIELDS.get(cls)
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        has_default = (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        out[_normal(f.name)] = (f.name, hints[f.name], has_default)
    _FIELDS[cls] = out
    return out


class _Builder:
    """Builds the converters for one schema, given the version's datatypes."""

    def __init__(self, schema: Schema, datatypes: list[type[Any]]) -> None:
        self.definitions: dict[str, Schema] = schema.get("definitions", {})
        self.datatypes = datatypes

    def resolve(self, node: Schema) -> Schema:
        while "$ref" in node:
            node = self.definitions[node["$ref"].rsplit("/", 1)[-1]]
        return node

    def guess_class(self, node: Schema) -> type[Any] | None:
        # The ocpp package's 2.0.1 datatypes lack the customData every schema type has.
        wanted = {_normal(p) for p in node.get("properties", {})} - {"customdata"}
        for cls in self.datatypes:
            if set(_fields(cls)) - {"customdata"} == wanted:
                return cls
        return None

    # -- decoding --------------------------------------------------------------------

    def decoder(self, node: Schema, hint: Any) -> Convert | None:
        """A converter for values of ``node``, or ``None`` where values stay as they are."""
        node = self.resolve(node)
        hint = _strip_optional(hint)
        if _is_object(node):
            if node.get("additionalProperties", True) is not False:
                return None  # open object: keep every key
            cls = hint if dataclasses.is_dataclass(hint) else self.guess_class(node)
            if cls is None:
                return None
            return self.object_decoder(node, cls)  # type: ignore[arg-type]
        if node.get("type") == "array" and isinstance(node.get("items"), dict):
            _, item_hint = _list_item(hint)
            item = self.decoder(node["items"], item_hint)
            if item is None:
                return None
            return lambda values: [item(v) for v in values]
        if "enum" in node and isinstance(hint, type) and issubclass(hint, enum.Enum):
            members = {m.value: m for m in hint}

            def to_member(value: Any) -> Any:
                try:
                    return members.get(value, value)
                except TypeError:  # unhashable: only without validation
                    return value

            return to_member
        return None

    def object_decoder(self, node: Schema, cls: type[Any]) -> Convert:
        fields = _fields(cls)
        # JSON key -> (attribute, converter, is a dataclass field)
        table: dict[str, tuple[str, Convert | None, bool]] = {}
        for key, sub in node.get("properties", {}).items():
            entry = fields.get(_normal(key))
            if entry is None:
                # The ocpp package omits some schema properties (customData on 2.0.1
                # nested types): keep them as plain attributes rather than lose them.
                table[key] = (_snake(key), self.decoder(sub, None), False)
            else:
                table[key] = (entry[0], self.decoder(sub, entry[1]), True)
        required = [name for name, _, has_default in fields.values() if not has_default]

        def decode(obj: dict[str, Any]) -> Any:
            kwargs = {}
            extras = None
            for key, value in obj.items():
                entry = table.get(key)
                if entry is None:
                    continue
                name, convert, is_field = entry
                if convert is not None:
                    value = convert(value)
                if is_field:
                    kwargs[name] = value
                else:
                    extras = extras or {}
                    extras[name] = value
            try:
                instance = cls(**kwargs)
            except TypeError:
                # A required field is missing: only possible when a quirk or the
                # validation mode let it through. The handler sees None.
                for name in required:
                    kwargs.setdefault(name, None)
                instance = cls(**kwargs)
            if extras:
                for name, value in extras.items():
                    setattr(instance, name, value)
            return instance

        return decode

    # -- encoding --------------------------------------------------------------------

    def encoder(self, node: Schema, hint: Any) -> Convert | None:
        """A converter to JSON values for ``node``, or ``None`` where values pass as they are."""
        node = self.resolve(node)
        hint = _strip_optional(hint)
        if _is_object(node):
            cls = hint if dataclasses.is_dataclass(hint) else self.guess_class(node)
            return self.object_encoder(node, cls)  # type: ignore[arg-type]
        if node.get("type") == "array" and isinstance(node.get("items"), dict):
            _, item_hint = _list_item(hint)
            item = self.encoder(node["items"], item_hint)
            if item is None:
                return None
            return lambda values: [item(v) for v in values]
        if node.get("format") == "date-time":
            return _encode_datetime
        return None

    def object_encoder(self, node: Schema, cls: type[Any] | None) -> Convert:
        required = set(node.get("required", ()))
        fields = _fields(cls) if cls is not None else {}
        # (attribute, JSON key, converter, omit when empty)
        plan: list[tuple[str, str, Convert | None, bool]] = []
        # any spelling -> (JSON key, converter, omit when empty), for dict input
        by_name: dict[str, tuple[str, Convert | None, bool]] = {}
        for key, sub in node.get("properties", {}).items():
            entry = fields.get(_normal(key))
            attribute, hint = (entry[0], entry[1]) if entry else (_snake(key), None)
            convert = self.encoder(sub, hint)
            optional = key not in required
            plan.append((attribute, key, convert, optional))
            by_name[attribute] = by_name[key] = (key, convert, optional)

        def encode(obj: Any) -> dict[str, Any]:
            out: dict[str, Any] = {}
            if isinstance(obj, dict):
                for name, value in obj.items():
                    if value is None:
                        continue
                    key, convert, optional = by_name.get(name, (name, None, False))
                    if convert is not None:
                        value = convert(value)
                    if optional and not value and isinstance(value, (list, dict)):
                        continue
                    out[key] = value
                return out
            for attribute, key, convert, optional in plan:
                value = getattr(obj, attribute, None)
                if value is None:
                    continue
                if convert is not None:
                    value = convert(value)
                if optional and not value and isinstance(value, (list, dict)):
                    continue
                out[key] = value
            return out

        return encode


def _encode_datetime(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return value


@functools.cache
def _datatypes(version: OcppVersion) -> list[type[Any]]:
    module = importlib.import_module(f"ocpp.{version.package}.datatypes")
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and dataclasses.is_dataclass(obj)
    ]


@functools.cache
def dataclass_for(version: OcppVersion, action: str, message: Message) -> type[Any] | None:
    """The ``ocpp`` package's dataclass for one message, or ``None`` if it has none."""
    module_name = "call" if message == "request" else "call_result"
    module = importlib.import_module(f"ocpp.{version.package}.{module_name}")
    cls = getattr(module, action, None)
    if cls is None and message == "request":
        cls = extra_types.REQUESTS.get((version, action))
    return cls if isinstance(cls, type) and dataclasses.is_dataclass(cls) else None


@functools.cache
def payload_codec(version: OcppVersion, action: str, message: Message) -> PayloadCodec | None:
    """The codec for one message of one action, or ``None`` if the version has no such message."""
    schema = pristine_schema(version, action, message)
    cls = dataclass_for(version, action, message)
    if schema is None or cls is None:
        return None
    builder = _Builder(schema, _datatypes(version))
    return PayloadCodec(
        cls, builder.object_decoder(schema, cls), builder.object_encoder(schema, cls)
    )
