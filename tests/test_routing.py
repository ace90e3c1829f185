"""Handler collection: per class, inherited, overridden, from routers, from the ocpp package."""

from __future__ import annotations

from typing import Any

import pytest

from csms_kit import Router, StationSession, UsageError, after, on
from csms_kit.routing import collect_routes


def test_routes_are_per_class_not_global() -> None:
    """Two session classes see only their own handlers."""

    class A(StationSession):
        @on("Heartbeat")
        def heartbeat(self, request: Any) -> Any: ...

    class B(StationSession):
        @on("Authorize")
        def authorize(self, request: Any) -> Any: ...

    assert set(A.routes.on) == {"Heartbeat"}
    assert set(B.routes.on) == {"Authorize"}
    assert StationSession.routes.on == {}


def test_subclass_inherits_and_overrides_by_name() -> None:
    """A subclass inherits routes; overriding the method keeps the route, now to the override."""

    class Base(StationSession):
        @on("Heartbeat")
        def heartbeat(self, request: Any) -> str:
            return "base"

        @on("Authorize")
        def authorize(self, request: Any) -> str:
            return "base"

    class Child(Base):
        def heartbeat(self, request: Any) -> str:  # no decorator: still the Heartbeat route
            return "child"

        @on("Authorize")
        def authorize_differently(self, request: Any) -> str:
            return "child"

    assert Child.routes.on["Heartbeat"].func(None, None) == "child"
    assert Child.routes.on["Authorize"].func(None, None) == "child"
    assert Base.routes.on["Heartbeat"].func(None, None) == "base"


def test_two_handlers_for_one_action_in_one_class_is_an_error() -> None:
    """Declaring two handlers for one action in one class raises UsageError."""
    with pytest.raises(UsageError, match="two handlers for Heartbeat"):

        class Twice(StationSession):
            @on("Heartbeat")
            def one(self, request: Any) -> Any: ...

            @on("Heartbeat")
            def two(self, request: Any) -> Any: ...


def test_sync_and_async_are_detected_and_after_arity() -> None:
    """Handler metadata records async-ness and whether an @after hook takes the response."""

    class S(StationSession):
        @on("Heartbeat")
        async def heartbeat(self, request: Any) -> Any: ...

        @after("Heartbeat")
        def short(self, request: Any) -> None: ...

        @after("Heartbeat")
        async def long(self, request: Any, response: Any) -> None: ...

    assert S.routes.on["Heartbeat"].is_async
    hooks = S.routes.after["Heartbeat"]
    assert [(h.func.__name__, h.is_async, h.takes_response) for h in hooks] == [
        ("short", False, False),
        ("long", True, True),
    ]


def test_enum_actions_are_accepted() -> None:
    """The ocpp package's Action enum members work as action names."""
    from ocpp.v201.enums import Action

    class S(StationSession):
        @on(Action.heartbeat)
        def heartbeat(self, request: Any) -> Any: ...

    assert set(S.routes.on) == {"Heartbeat"}


@pytest.mark.parametrize("bad", ["", 5, None])
def test_bad_action_names_are_refused(bad: Any) -> None:
    """@on refuses empty or non-string actions."""
    with pytest.raises(UsageError):
        on(bad)


def test_router_functions_combine_into_a_session_class() -> None:
    """Router handlers join a class through `routers`; conflicts are errors."""
    billing = Router()
    status = Router()

    @billing.on("StartTransaction")
    def start(session: Any, request: Any) -> str:
        return "start"

    @billing.after("StartTransaction")
    async def log_start(session: Any, request: Any, response: Any) -> None: ...

    @status.on("StatusNotification")
    def status_notification(session: Any, request: Any) -> str:
        return "status"

    class S(StationSession):
        routers = [billing, status]

        @on("Heartbeat")
        def heartbeat(self, request: Any) -> Any: ...

    assert set(S.routes.on) == {"StartTransaction", "StatusNotification", "Heartbeat"}
    assert S.routes.on["StartTransaction"].func(None, None) == "start"
    assert S.routes.after["StartTransaction"][0].takes_response

    other = Router()

    @other.on("Heartbeat")
    def heartbeat(session: Any, request: Any) -> str:
        return "router"

    class Override(S):  # a subclass's router replaces the base's method
        routers = [other]

    assert Override.routes.on["Heartbeat"].func(None, None) == "router"
    assert Override.routes.on["StartTransaction"].func(None, None) == "start"

    clashing = Router()

    @clashing.on("Heartbeat")
    def heartbeat_again(session: Any, request: Any) -> Any: ...

    with pytest.raises(UsageError, match="two handlers"):

        class Clash(StationSession):  # a method and a router of one class
            routers = [clashing]

            @on("Heartbeat")
            def heartbeat(self, request: Any) -> Any: ...


def test_subclass_method_replaces_base_router_handler() -> None:
    """A subclass method overrides the handler a base class got from its router."""
    router = Router()

    @router.on("Heartbeat")
    def heartbeat(session: Any, request: Any) -> str:
        return "router"

    class Base(StationSession):
        routers = [router]

    class Child(Base):
        @on("Heartbeat")
        def heartbeat(self, request: Any) -> str:
            return "method"

    assert Child.routes.on["Heartbeat"].func(None, None) == "method"
    assert Base.routes.on["Heartbeat"].func(None, None) == "router"


def test_misspelt_actions_fail_at_class_creation() -> None:
    """An action no OCPP version defines is refused when the class is built."""
    with pytest.raises(UsageError, match="Heartbeet"):

        class Typo(StationSession):
            @on("Heartbeet")
            def heartbeat(self, request: Any) -> Any: ...


def test_router_refuses_registration_after_use() -> None:
    """Registering on a router after a class used it raises instead of doing nothing."""
    router = Router()

    @router.on("Heartbeat")
    def heartbeat(session: Any, request: Any) -> Any: ...

    class S(StationSession):
        routers = [router]

    with pytest.raises(UsageError, match="already used by"):

        @router.on("Authorize")
        def authorize(session: Any, request: Any) -> Any: ...

    duplicate = Router()
    duplicate.on("Heartbeat")(heartbeat)
    with pytest.raises(UsageError, match="already has a handler"):
        duplicate.on("Heartbeat")(heartbeat)


def test_ocpp_package_decorators_are_collected() -> None:
    """Methods decorated with ocpp.routing.on/after become ocpp-style routes."""
    from ocpp.routing import after as ocpp_after
    from ocpp.routing import on as ocpp_on

    class Legacy(StationSession):
        @ocpp_on("Heartbeat", skip_schema_validation=True)
        async def heartbeat(self, **kwargs: Any) -> Any: ...

        @ocpp_after("Heartbeat")
        def later(self, **kwargs: Any) -> None: ...

    route = Legacy.routes.on["Heartbeat"]
    assert route.ocpp_style and route.is_async and route.skip_validation
    assert Legacy.routes.after["Heartbeat"][0].ocpp_style
    assert Legacy.routes.unvalidated == {"Heartbeat"}


def test_collect_routes_ignores_non_callables() -> None:
    """Plain attributes never become routes."""

    class S(StationSession):
        _on_action = "Heartbeat"  # looks like an ocpp marker, but is not a function
        value = 3

    assert collect_routes(S).on == {}
    assert S.routes.on == {}
