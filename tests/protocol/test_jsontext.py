"""Strict JSON in and out: what OCPP can carry, and nothing else."""

from __future__ import annotations

import json

import pytest

from csms_kit.protocol import jsontext
from csms_kit.protocol.jsontext import InvalidJson

SECRET = "SECRET-VALUE-123"


@pytest.mark.parametrize(
    "text",
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "[NaN]",
        '{"a": Infinity}',
        '[2, "1", "Heartbeat", {"x": -Infinity}]',
    ],
)
def test_non_finite_constants_are_refused(text: str) -> None:
    """NaN, Infinity and -Infinity are not JSON numbers and are refused."""
    with pytest.raises(InvalidJson):
        jsontext.loads(text)
    with pytest.raises(InvalidJson):
        jsontext.decode(text)


@pytest.mark.parametrize("text", ["1e400", "-1e400", "1E400", "[1.5e999]", '{"a": 2e308}'])
def test_numbers_overflowing_to_infinity_are_refused(text: str) -> None:
    """A number that only fits as an infinite float is refused."""
    with pytest.raises(InvalidJson):
        jsontext.loads(text)


@pytest.mark.parametrize("text", ["1.7976931348623157e308", "-1e-400", "0.1", "-0"])
def test_finite_extreme_numbers_are_accepted(text: str) -> None:
    """Large but finite floats, underflow to zero and -0 are ordinary numbers."""
    assert jsontext.loads(text) == json.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 100_000 + "1" + "}" * 100_000,
        '[{"a":' * 50_000 + "1" + "}]" * 50_000,
    ],
    ids=["open-lists", "closed-lists", "objects", "mixed"],
)
def test_deep_nesting_is_refused_without_recursion_error(text: str) -> None:
    """Nesting 100,000 deep raises InvalidJson, never RecursionError."""
    for parse in (jsontext.loads, jsontext.decode):
        with pytest.raises(InvalidJson) as info:
            parse(text)
        assert not isinstance(info.value, RecursionError)


@pytest.mark.parametrize(
    "text", ["1" * 5000, "-" + "9" * 5000, "[" + "7" * 5000 + "]", '{"a": ' + "1" * 5000 + "}"]
)
def test_five_thousand_digit_integer_is_refused(text: str) -> None:
    """An integer of 5,000 digits is refused as InvalidJson."""
    with pytest.raises(InvalidJson):
        jsontext.loads(text)


def test_long_but_allowed_integer_is_accepted() -> None:
    """An integer of a few hundred digits is still a number."""
    assert jsontext.loads("9" * 300) == int("9" * 300)


@pytest.mark.parametrize(
    "text",
    [
        '"\\ud800"',
        '"\\uD800"',
        '"\\udfff"',
        '"a\\udc00b"',
        '["ok", {"k": "\\ud83d"}]',
        '{"\\ud800": 1}',
        '"\\ude00\\ud83d"',  # a pair in the wrong order is two lone surrogates
        '"\ud800"',  # the raw code point, not an escape
    ],
)
def test_lone_surrogates_are_refused_by_loads_but_passed_by_decode(text: str) -> None:
    """loads refuses a lone UTF-16 surrogate anywhere; decode leaves that to its caller."""
    with pytest.raises(InvalidJson):
        jsontext.loads(text)
    value = jsontext.decode(text)
    assert jsontext.has_lone_surrogate(value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"\\ud83d\\ude00"', "\U0001f600"),
        ('"\\uD83D\\uDE00"', "\U0001f600"),
        ('{"k": ["\\ud800\\udc00"]}', {"k": ["\U00010000"]}),
    ],
)
def test_valid_surrogate_pairs_are_accepted(text: str, expected: object) -> None:
    """An escaped surrogate pair is one code point and is accepted."""
    assert jsontext.loads(text) == expected


@pytest.mark.parametrize("value", ["é", "Grüße", "日本語", "\U0001f50c", "\u0000"])
def test_non_ascii_text_is_accepted(value: str) -> None:
    """Non-ASCII text, raw or escaped, parses to the same string."""
    assert jsontext.loads(json.dumps(value, ensure_ascii=False)) == value
    assert jsontext.loads(json.dumps(value, ensure_ascii=True)) == value


def test_escaped_backslash_before_ud_is_not_a_surrogate() -> None:
    """The text \\\\ud800 is a backslash followed by letters, not a surrogate escape."""
    assert jsontext.loads('"\\\\ud800"') == "\\ud800"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("plain ascii", False), ("caf\u00e9", True), ("x\\ud800", True), ("x\\uDC00", True)],
)
def test_might_hold_surrogates_precheck(text: str, expected: bool) -> None:
    """The cheap pre-check flags non-ASCII text and surrogate escapes only."""
    assert jsontext.might_hold_surrogates(text) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ok", False),
        ("\ud800", True),
        ({"a": ["b", "\udfff"]}, True),
        ({"\ud800": 1}, True),
        ([1, 2.5, None, True, "\U0001f600"], False),
    ],
)
def test_has_lone_surrogate(value: object, expected: bool) -> None:
    """has_lone_surrogate finds a lone surrogate in any string, key or value."""
    assert jsontext.has_lone_surrogate(value) is expected


def test_dumps_is_compact() -> None:
    """dumps writes no spaces after separators."""
    assert jsontext.dumps([2, "id", "Heartbeat", {"a": [1, 2], "b": None}]) == (
        '[2,"id","Heartbeat",{"a":[1,2],"b":null}]'
    )


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), float("-inf"), {"a": [float("nan")]}]
)
def test_dumps_refuses_non_finite_floats(value: object) -> None:
    """dumps never writes NaN or Infinity, which would not be JSON."""
    with pytest.raises(ValueError):
        jsontext.dumps(value)


@pytest.mark.parametrize("value", ["é", {"ключ": "значение"}, ["\U0001f600"]])
def test_dumps_round_trips_non_ascii(value: object) -> None:
    """Text written by dumps reads back to the same value."""
    assert jsontext.loads(jsontext.dumps(value)) == value


@pytest.mark.parametrize(
    "text",
    [
        f'"{SECRET}',
        f'["{SECRET}", NaN]',
        f'{{"{SECRET}": 1e400}}',
        f'[2, "{SECRET}", "\\ud800"]',
        f"{SECRET}",
        f'{{"{SECRET}" 1}}',
        f'["{SECRET}", ' + "1" * 5000 + "]",
        f'["{SECRET}", ' + "[" * 100_000,
        f'[1, 2] "{SECRET}"',
    ],
)
def test_invalid_json_message_never_quotes_the_input(text: str) -> None:
    """The InvalidJson message describes the fault without repeating the text."""
    with pytest.raises(InvalidJson) as info:
        jsontext.loads(text)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)
    assert isinstance(info.value, ValueError)
