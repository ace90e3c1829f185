"""Handler registration: the ``@on``/``@after`` decorators and :class:`Router`.

Handlers are found per session class when the class is created, never through a
module-global list::

    class MySession(StationSession):
        @on("Heartbeat")
        async def heartbeat(self, request: call.Heartbeat) -> call_result.Heartbeat:
            ...

A route belongs to the method's *name*: a subclass that overrides ``heartbeat``
without decorating it again still handles Heartbeat. Two handlers for one action in
one class (its methods and its routers together) are an error; a subclass's handler
for an action replaces its base's. Action names are checked against every OCPP
version when the class is created, so a typo fails at import time.

For big apps, handlers can be free functions on a :class:`Router`, combined into a
session class with ``routers = [billing, status]``. A router's functions take the
session as their first argument, exactly like methods.

Handlers written for the ``ocpp`` package (``ocpp.routing.on``/``after``, keyword
arguments in snake_case, nested values as dicts) are collected too and called the
way that package calls them, so a ``ChargePoint`` subclass's handlers can move over
unchanged.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from csms_kit.exceptions import UsageError
from csms_kit.protocol.schemas import check_action_name

__all__ = ["Handler", "RouteTable", "Router", "after", "on"]

F = TypeVar("F", bound=Callable[..., Any])

_ON = "__csms_kit_on__"
_AFTER = "__csms_kit_after__"


def _action_name(action: str | enum.Enum) -> str:
    if isinstance(action, enum.Enum):
        action = action.value
    if not isinstance(action, str) or not action:
        raise UsageError(f"an action is a non-empty string, not {action!r}")
    return action


def _mark(func: Any, attribute: str, action: str) -> None:
    if not callable(func):
        raise UsageError(f"@on/@after decorate functions, not {type(func).__name__}")
    setattr(func, attribute, (*getattr(func, attribute, ()), action))


def on(action: str | enum.Enum) -> Callable[[F], F]:
    """Mark a session method as the handler of the station's ``action`` CALLs.

    The method receives the request as the ``ocpp`` package's dataclass for the
    session's version and returns the response dataclass (or a dict of its JSON
    payload); for a 2.1 SEND it returns nothing. It may be sync or async. Raise
    :class:`~csms_kit.exceptions.RpcError` to answer with a CALLERROR.
    """
    name = _action_name(action)

    def decorate(func: F) -> F:
        _mark(func, _ON, name)
        return func

    return decorate


def after(action: str | enum.Enum) -> Callable[[F], F]:
    """Mark a session method to run after each ``action`` CALL has been answered.

    It receives the request, and the response too if it takes a third argument.
    It runs in its own task, so it may call the station; its failures are logged.
    """
    name = _action_name(action)

    def decorate(func: F) -> F:
        _mark(func, _AFTER, name)
        return func

    return decorate


@dataclass(frozen=True, slots=True)
class Handler:
    """How to call one handler function.

    ``ocpp_style`` handlers take the payload as snake_case keyword arguments, as the
    ``ocpp`` package's ``ChargePoint`` calls them.
    """

    func: Callable[..., Any]
    is_async: bool
    ocpp_style: bool = False
    takes_response: bool = False
    takes_unique_id: bool = False
    skip_validation: bool = False
    #: Whether the handler may run on the session's reader: sync, and not ocpp-style.
    inline: bool = field(init=False)

    def __post_init__(self) -> None:
        # A field, not a property: the session reads it for every message.
        object.__setattr__(self, "inline", not self.is_async and not self.ocpp_style)

    @classmethod
    def for_function(cls, func: Callable[..., Any], *, ocpp_style: bool = False) -> Handler:
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError):  # builtins and some C callables
            return cls(func, inspect.iscoroutinefunction(func), ocpp_style)
        positional = [
            p
            for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        varargs = any(p.kind is p.VAR_POSITIONAL for p in signature.parameters.values())
        return cls(
            func,
            inspect.iscoroutinefunction(inspect.unwrap(func)),
            ocpp_style,
            takes_response=varargs or len(positional) >= 3,
            takes_unique_id="call_unique_id" in signature.parameters,
            skip_validation=bool(getattr(func, "_skip_schema_validation", False)),
        )


@dataclass(frozen=True)
class RouteTable:
    """The handlers of one session class: one ``on`` per action, any number of ``after``."""

    on: dict[str, Handler]
    after: dict[str, tuple[Handler, ...]]

    @property
    def unvalidated(self) -> frozenset[str]:
        """Actions whose ``ocpp``-style handler asked to skip schema validation."""
        return frozenset(a for a, h in self.on.items() if h.skip_validation)


class Router:
    """A set of handlers written as free functions, to combine into session classes.

    ::

        billing = Router()

        @billing.on("StartTransaction")
        async def start(session, request): ...

        class MySession(StationSession):
            routers = [billing]

    Handlers must be registered before the router is used by a session class;
    registering later raises :class:`~csms_kit.exceptions.UsageError`.
    """

    def __init__(self) -> None:
        self._on: dict[str, Callable[..., Any]] = {}
        self._after: dict[str, list[Callable[..., Any]]] = {}
        self._used_by: str | None = None

    def _check_open(self) -> None:
        if self._used_by is not None:
            raise UsageError(
                f"this router is already used by {self._used_by}; "
                "register handlers before using it in a session class"
            )

    def on(self, action: str | enum.Enum) -> Callable[[F], F]:
        """Register ``func(session, request)`` as the handler of ``action``."""
        name = _action_name(action)

        def decorate(func: F) -> F:
            self._check_open()
            if name in self._on:
                raise UsageError(f"this router already has a handler for {name}")
            self._on[name] = func
            return func

        return decorate

    def after(self, action: str | enum.Enum) -> Callable[[F], F]:
        """Register ``func(session, request[, response])`` to run after ``action``."""
        name = _action_name(action)

        def decorate(func: F) -> F:
            self._check_open()
            self._after.setdefault(name, []).append(func)
            return func

        return decorate


def collect_routes(cls: type) -> RouteTable:
    """Build the route table of session class ``cls`` from its methods and routers.

    Classes are read from base to subclass; at each level the class's own methods
    and the routers it lists in ``routers`` form one layer, in which two handlers for
    one action are an error. A later layer's handler replaces an earlier one's.
    """
    # action -> method name (resolved on cls at the end) or router function
    on: dict[str, str | Callable[..., Any]] = {}
    after_hooks: dict[str, list[str | Callable[..., Any]]] = {}
    for klass in reversed(cls.__mro__):
        layer: dict[str, str | Callable[..., Any]] = {}
        for name, attr in vars(klass).items():
            for action in _actions(attr, _ON, "_on_action"):
                _claim(layer, klass, action, name)
            for action in _actions(attr, _AFTER, "_after_action"):
                hooks = after_hooks.setdefault(action, [])
                if name not in hooks:
                    hooks.append(name)
        for router in vars(klass).get("routers", ()):
            for action, func in router._on.items():
                _claim(layer, klass, action, func)
            for action, funcs in router._after.items():
                after_hooks.setdefault(action, []).extend(funcs)
            router._used_by = router._used_by or klass.__qualname__
        on.update(layer)

    for action in (*on, *after_hooks):
        check_action_name(action, f"{cls.__qualname__} handler")

    def handler(target: str | Callable[..., Any]) -> Handler:
        if not isinstance(target, str):
            return Handler.for_function(target)
        func = getattr(cls, target)
        ocpp_style = hasattr(func, "_on_action") or hasattr(func, "_after_action")
        return Handler.for_function(func, ocpp_style=ocpp_style)

    return RouteTable(
        {action: handler(target) for action, target in on.items()},
        {action: tuple(map(handler, targets)) for action, targets in after_hooks.items()},
    )


def _claim(layer: dict[str, Any], klass: type, action: str, target: Any) -> None:
    if action in layer and layer[action] != target:
        raise UsageError(f"{klass.__qualname__} has two handlers for {action}")
    layer[action] = target


def _actions(attr: Any, marker: str, ocpp_marker: str) -> Iterable[str]:
    if not callable(attr):
        return ()
    ours: tuple[str, ...] = getattr(attr, marker, ())
    theirs = getattr(attr, ocpp_marker, None)  # set by ocpp.routing.on / after
    if isinstance(theirs, (str, enum.Enum)):
        return (*ours, _action_name(theirs))
    return ours
