"""Calling handlers: sync or async, our style or the ``ocpp`` package's, and their failures.

A connection finds a :class:`~csms_kit.routing.Handler` in its route table and calls
it through :func:`invoke_sync` (on the reader: the handler must not return an
awaitable) or :func:`invoke` (in a task). :func:`as_rpc_error` turns whatever a
handler raised into the CALLERROR to answer with.
"""

from __future__ import annotations

import inspect
import logging
import types
from typing import Any

from ocpp.charge_point import camel_to_snake_case

from csms_kit.error_codes import ErrorCode
from csms_kit.exceptions import RpcError, UsageError
from csms_kit.routing import Handler

__all__ = ["INTERNAL_ERROR_TEXT", "as_rpc_error", "invoke", "invoke_after", "invoke_sync"]

logger = logging.getLogger("csms_kit.handlers")

#: The description of the CALLERROR for a handler that failed: never the exception's text.
INTERNAL_ERROR_TEXT = "An internal error occurred while handling the request"


def invoke_sync(handler: Handler, target: Any, request: Any) -> Any:
    """Call a sync handler; refuse (UsageError) an awaitable it returns."""
    result = handler.func(target, request)
    # The type's __await__ first: isawaitable's ABC check is slow for dataclasses.
    if getattr(type(result), "__await__", None) is not None or (
        type(result) is types.GeneratorType and inspect.isawaitable(result)
    ):
        # A sync handler may run on the reader: it must not make it wait.
        close = getattr(result, "close", None)
        if close is not None:
            close()  # no "never awaited" warning for a coroutine we refuse
        raise UsageError(
            f"the sync handler {handler.func.__qualname__} returned an awaitable; "
            "make it an async def"
        )
    return result


async def invoke(
    handler: Handler, target: Any, request: Any, payload: dict[str, Any], message_id: str
) -> Any:
    """Call any handler with the request (or, ``ocpp``-style, the payload's fields)."""
    if handler.inline:
        return invoke_sync(handler, target, request)
    if handler.ocpp_style:
        result = handler.func(target, **ocpp_kwargs(handler, payload, message_id))
    else:
        result = handler.func(target, request)
    if inspect.isawaitable(result):
        result = await result
    return result


async def invoke_after(
    hook: Handler,
    target: Any,
    request: Any,
    response: Any,
    payload: dict[str, Any],
    message_id: str,
) -> None:
    """Call an ``@after`` hook with the request (and the response, if it takes one)."""
    if hook.ocpp_style:
        result = hook.func(target, **ocpp_kwargs(hook, payload, message_id))
    elif hook.takes_response:
        result = hook.func(target, request, response)
    else:
        result = hook.func(target, request)
    if inspect.isawaitable(result):
        await result


def ocpp_kwargs(handler: Handler, payload: dict[str, Any], message_id: str) -> dict[str, Any]:
    """Arguments the way the ``ocpp`` package's ChargePoint passes them."""
    kwargs: dict[str, Any] = camel_to_snake_case(payload)
    if handler.takes_unique_id:
        kwargs["call_unique_id"] = message_id
    return kwargs


def as_rpc_error(exc: Exception) -> tuple[RpcError, bool]:
    """The CALLERROR for ``exc``, and whether ``exc`` was a failure (not a chosen error).

    An :class:`~csms_kit.exceptions.RpcError`, or the ``ocpp`` package's
    ``OCPPError`` from a handler written for it, is the answer chosen; anything else
    is a failure, answered ``InternalError`` with a fixed description.
    """
    if isinstance(exc, RpcError):
        return exc, False
    code = getattr(exc, "code", None)
    if type(exc).__module__ == "ocpp.exceptions" and isinstance(code, str):
        mapped = ErrorCode.from_wire(code)
        if mapped is not None:
            details = getattr(exc, "details", None)
            description = str(getattr(exc, "description", "") or "")
            return RpcError(mapped, description, details if isinstance(details, dict) else None), (
                False
            )
    return RpcError(ErrorCode.INTERNAL_ERROR, INTERNAL_ERROR_TEXT), True
