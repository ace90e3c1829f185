"""Shared helpers for the sans-I/O protocol tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from csms_kit.protocol import Reply

DATE_TIME = "2024-05-06T07:08:09Z"


def _example(schema: dict[str, Any], full: bool) -> Any:
    """A payload valid for ``schema``: required fields only, or every field when ``full``."""
    definitions = schema.get("definitions", {})

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = definitions[node["$ref"].rsplit("/", 1)[-1]]
        return node

    def build(node: dict[str, Any]) -> Any:
        node = resolve(node)
        kind = node.get("type")
        if kind == "object" or "properties" in node:
            required = set(node.get("required", ()))
            return {
                key: build(sub)
                for key, sub in node.get("properties", {}).items()
                if full or key in required
            }
        if kind == "array":
            low = node.get("minItems", 0)
            count = max(low, 1) if full else low
            count = min(count, node.get("maxItems", count))
            return [build(node["items"]) for _ in range(count)]
        if "enum" in node:
            return node["enum"][0]
        if kind == "string":
            if node.get("format") == "date-time":
                return DATE_TIME
            if node.get("format") == "uri":
                return "https://example.com/x"
            return "s"
        if kind in ("integer", "number"):
            value: float = 1 if kind == "integer" else 1.5
            if "minimum" in node:
                value = max(value, node["minimum"])
            if "maximum" in node:
                value = min(value, node["maximum"])
            return int(value) if kind == "integer" else float(value)
        if kind == "boolean":
            return True
        return "free-form"  # untyped (DataTransfer data)

    return build(schema)


@pytest.fixture
def example_payload() -> Callable[[dict[str, Any], bool], Any]:
    """Build a schema-valid payload: ``example_payload(schema, full)``."""
    return _example


def check_callerror_text(
    text: str, message_id: str, code: str | None = None, *, message_type: int = 4
) -> list[Any]:
    """Assert ``text`` is a well-formed CALLERROR (or CALLRESULTERROR); return it parsed."""
    frame = json.loads(text)
    assert isinstance(frame, list)
    assert len(frame) == 5
    assert frame[0] == message_type
    assert frame[1] == message_id
    assert isinstance(frame[2], str)
    if code is not None:
        assert frame[2] == code
    assert isinstance(frame[3], str)
    assert len(frame[3]) <= 255
    assert frame[4] == {}
    return frame


@pytest.fixture
def check_reply() -> Callable[..., list[Any]]:
    """Assert an event is a Reply whose text is a sound CALLERROR that does not echo ``raw``."""

    def check(event: object, message_id: str, code: str, raw: str | None = None) -> list[Any]:
        assert isinstance(event, Reply), event
        assert event.message_id == message_id
        frame = check_callerror_text(event.text, message_id, code)
        if raw is not None:
            assert raw not in event.text
            assert raw not in frame[3]
        return frame

    return check
