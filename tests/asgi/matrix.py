"""Run an integration module's tests against the ASGI endpoint under every server kind.

The tests are the integration modules' own functions, with their parametrization; only
their ``start()`` is swapped for one serving :func:`csms_kit.asgi.ocpp_endpoint` under a
real ASGI server (``tests/asgi/harness.py``). A test that cannot apply under ASGI is
kept, as a skip that says why; one that cannot apply under one server is skipped
there with the reason.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import pytest

from tests.asgi.harness import KINDS, asgi_start


def reuse(
    module: ModuleType,
    namespace: dict[str, Any],
    not_applicable: Mapping[str, str],
    per_server: Mapping[tuple[str, ...], str],
) -> None:
    """Put ``module``'s tests in ``namespace``, plus the fixture that swaps ``start``."""
    unknown = (set(not_applicable) | {key[1] for key in per_server}) - set(vars(module))
    assert not unknown, f"no such tests in {module.__name__}: {sorted(unknown)}"
    for name, function in vars(module).items():
        if not (name.startswith("test_") and inspect.isfunction(function)):
            continue
        if name in not_applicable:
            namespace[name] = _skipped(function, not_applicable[name])
        else:
            namespace[name] = function
    default = inspect.signature(module.start).parameters["sessions"].default

    @pytest.fixture(autouse=True, params=KINDS)
    def asgi_server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
        kind: str = request.param
        name = request.function.__name__
        params = getattr(request.node, "callspec", None)
        values = [] if params is None else list(params.params.values())
        # (kind, test) for every case of a test; (kind, test, value) for the cases of one value.
        for key in [(kind, name)] + [(kind, name, v) for v in values if isinstance(v, str)]:
            if key in per_server:
                pytest.skip(per_server[key])

        def start(sessions: Any = default, **options: Any) -> Any:
            if sessions is inspect.Parameter.empty:
                raise TypeError("start() needs the session factory")
            return asgi_start(kind, sessions, **options)

        monkeypatch.setattr(module, "start", start)
        return kind

    namespace["asgi_server"] = asgi_server


def _skipped(function: Callable[..., Any], reason: str) -> Callable[..., Any]:
    """A stand-in for ``function`` that is skipped with ``reason`` (never runs it)."""

    @functools.wraps(function)
    def skipped() -> None:
        pytest.skip(f"not applicable under ASGI: {reason}")

    skipped.__signature__ = inspect.Signature()  # type: ignore[attr-defined]
    del skipped.__wrapped__
    skipped.pytestmark = []  # type: ignore[attr-defined]  # no parametrization to expand
    return skipped
