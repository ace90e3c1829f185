"""Strict JSON text in and out.

Stations send what they like; this module turns text into Python values only when
the text is JSON that OCPP can carry, and says why otherwise. ``NaN``, ``Infinity``
and numbers that overflow to infinity (``1e400``) are refused; so are strings holding
lone UTF-16 surrogates (``"\\ud800"``), which no UTF-8 encoder can write back out.
Nesting deeper than the interpreter's recursion limit and integers longer than
Python's digit limit are refused by the standard library and reported the same way.
"""

from __future__ import annotations

import json
import json.scanner
import math
from typing import Any

__all__ = ["InvalidJson", "decode", "dumps", "has_lone_surrogate", "loads"]


class InvalidJson(ValueError):
    """The text is not JSON that OCPP can carry. The message never quotes the text."""


def _refuse_constant(name: str) -> Any:
    raise InvalidJson(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise InvalidJson("number out of range")
    return value


_decoder = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
# The C scanner alone skips JSONDecoder.decode's two whitespace regexes: frames
# rarely have whitespace around them, and those that do take the full path.
_scan = json.scanner.make_scanner(_decoder)  # type: ignore[arg-type]
_check_utf8 = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


def _not_serializable(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
if _c_make_encoder is not None:
    # json.JSONEncoder.encode builds this C encoder anew on every call; build it once.
    _encode_chunks = _c_make_encoder(
        None,
        _not_serializable,
        json.encoder.encode_basestring_ascii,
        None,
        ":",
        ",",
        False,
        False,
        False,
    )

    def dumps(value: Any) -> str:
        """Serialize compactly; NaN and infinities raise ``ValueError``, cycles recurse."""
        return "".join(_encode_chunks(value, 0))

else:  # pragma: no cover - interpreters without the C accelerator
    _encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False)

    def dumps(value: Any) -> str:
        """Serialize compactly; NaN and infinities raise ``ValueError``."""
        return _encoder.encode(value)


def loads(text: str) -> Any:
    """Parse ``text``; raise :class:`InvalidJson` for anything OCPP cannot carry."""
    value = decode(text)
    if might_hold_surrogates(text) and has_lone_surrogate(value):
        raise InvalidJson("string holds a lone UTF-16 surrogate")
    return value


def decode(text: str) -> Any:
    """Like :func:`loads`, but lets lone surrogates through for the caller to judge."""
    try:
        try:
            value, end = _scan(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):
            value = _decoder.decode(text)  # whitespace, or an error to describe
    except InvalidJson:
        raise
    except RecursionError:
        raise InvalidJson("JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, or an integer over the digit limit
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "integer too long"
        raise InvalidJson(f"not valid JSON: {reason}") from None
    return value


def might_hold_surrogates(text: str) -> bool:
    """Cheap pre-check before :func:`has_lone_surrogate`.

    In ASCII text a surrogate can only come from a ``\\uD800``-``\\uDFFF`` escape (the
    decoder joins valid escape pairs into one code point, so only lone ones survive).
    """
    return not text.isascii() or "\\ud" in text or "\\uD" in text


def has_lone_surrogate(value: Any) -> bool:
    """Whether any string in ``value`` holds a lone surrogate (cannot be UTF-8 encoded)."""
    try:
        _check_utf8(value).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except (ValueError, TypeError, RecursionError):
        return False
    return False
