"""OpenTelemetry tracing for a CSMS: :class:`OpenTelemetryTracing`, an instrument.

::

    from csms_kit.tracing import OpenTelemetryTracing

    async with serve(MySession, "0.0.0.0", 9000, instruments=[OpenTelemetryTracing()]):
        ...

Needs the ``otel`` extra (``pip install 'csms-kit[otel]'``, the OpenTelemetry API);
spans go wherever the application's tracer provider sends them (the SDK and an
exporter are the application's choice, as with any library instrumented with the API).

One span per CALL, named ``OCPP <action>``:

* a station's CALL: kind ``SERVER``; it is the current span while the handler runs,
  so spans the handler starts (a database query, an HTTP request, a call back to the
  station) are its children;
* our CALL to a station: kind ``CLIENT``, a child of whatever span was current where
  ``call()`` was made (the handler's span, when a handler calls its station).

Attributes: ``ocpp.station_id``, ``ocpp.action``, ``ocpp.message_id``,
``ocpp.version``, ``ocpp.outcome`` (``result``, ``error``, ``timeout`` or
``disconnected``), and ``rpc.system`` = ``"ocpp"``, ``rpc.method`` = the action. A
CALLERROR, a timeout or a disconnection sets the span's status to ERROR (its
description is the outcome); a handler that raises something other than an
``RpcError`` is also recorded on the span as an exception event.

``@after`` hooks run once the CALL is answered, after its span has ended: their spans
are not its children. Use one tracing instrument per server.
"""

from __future__ import annotations

from contextvars import ContextVar, Token

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer, TracerProvider

from csms_kit.instruments import Direction, Instrument, Outcome, StationVersions

__all__ = ["OpenTelemetryTracing"]


class _OpenCall:
    """A CALL whose span is open, on a stack per task (one task runs both its points)."""

    __slots__ = ("action", "direction", "message_id", "outer", "span", "token")

    def __init__(
        self,
        span: trace.Span,
        token: Token[Context],
        direction: str,
        action: str,
        message_id: str,
        outer: _OpenCall | None,
    ) -> None:
        self.span = span
        self.token = token
        self.direction = direction
        self.action = action
        self.message_id = message_id
        self.outer = outer


class OpenTelemetryTracing(Instrument):
    """An instrument that traces each CALL as an OpenTelemetry span (see the module).

    ``tracer_provider``: where the spans go (default: the global one, as set by
    ``opentelemetry.trace.set_tracer_provider``, looked up when spans start).
    ``tracer``: a tracer of your own instead.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        *,
        tracer: Tracer | None = None,
    ) -> None:
        if tracer is None:
            from csms_kit import __version__  # noqa: PLC0415 - a cycle at import time

            tracer = trace.get_tracer("csms_kit", __version__, tracer_provider=tracer_provider)
        self.tracer = tracer
        self._versions = StationVersions()
        # Per instance, not per module: two instruments must not pop each other's calls.
        self._open: ContextVar[_OpenCall | None] = ContextVar(
            f"csms_kit.tracing.{id(self):x}", default=None
        )

    def connection_opened(self, station_id: str, version: str) -> None:
        self._versions.opened(station_id, version)

    def connection_closed(self, station_id: str, code: int | None, reason: str) -> None:
        self._versions.closed(station_id)

    def call_started(
        self, station_id: str, direction: Direction, action: str, message_id: str
    ) -> None:
        attributes = {
            "rpc.system": "ocpp",
            "rpc.method": action,
            "ocpp.station_id": station_id,
            "ocpp.action": action,
            "ocpp.message_id": message_id,
        }
        version = self._versions.get(station_id)
        if version is not None:
            attributes["ocpp.version"] = version
        span = self.tracer.start_span(
            f"OCPP {action}",
            kind=SpanKind.SERVER if direction == "in" else SpanKind.CLIENT,
            attributes=attributes,
        )
        # The connection calls call_finished from this same task: the span is current
        # until then (for "in", while the handler runs), and detached there.
        token = otel_context.attach(trace.set_span_in_context(span))
        self._open.set(_OpenCall(span, token, direction, action, message_id, self._open.get()))

    def call_finished(
        self,
        station_id: str,
        direction: Direction,
        action: str,
        message_id: str,
        outcome: Outcome,
        duration: float,
    ) -> None:
        call = self._open.get()
        while call is not None and (call.message_id != message_id or call.direction != direction):
            call = call.outer  # not expected: the points of one task nest
        if call is None:
            return
        self._open.set(call.outer)
        otel_context.detach(call.token)
        span = call.span
        span.set_attribute("ocpp.outcome", outcome)
        if outcome != "result":
            span.set_status(Status(StatusCode.ERROR, outcome))
        span.end()

    def handler_failed(self, station_id: str, action: str, error: BaseException) -> None:
        call = self._open.get()
        # From the handler's task while its span is open; an @after hook has none.
        if call is not None and call.direction == "in" and call.action == action:
            call.span.record_exception(error)
