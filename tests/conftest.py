"""Shared test setup: every async test runs with asyncio debug on and must not leak tasks."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Iterator

import pytest

# tests/plugin runs sample test files through pytester. Declared here: pytest refuses
# pytest_plugins in a conftest below the top level (tests/plugin/conftest.py).
pytest_plugins = ["pytester"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        function = getattr(item, "function", None)
        if function is not None and inspect.iscoroutinefunction(function):
            item.fixturenames.insert(0, "asyncio_hygiene")  # type: ignore[attr-defined]


@pytest.fixture
async def asyncio_hygiene() -> AsyncIterator[None]:
    """Turn on asyncio debug mode; after the test, fail if any task is left running."""
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    yield
    me = asyncio.current_task()
    for _ in range(5):  # let tasks that were just cancelled or closed finish
        await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    assert not leaked, f"tasks leaked by the test: {leaked}"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo the logging set-up ``csms_kit.cli.main`` does, which would leak into later
    tests. Use it with ``pytestmark = pytest.mark.usefixtures("restore_logging")``."""
    root = logging.getLogger()
    quiet = logging.getLogger("csms_kit.websockets")
    handlers, level, quiet_level = root.handlers[:], root.level, quiet.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    quiet.setLevel(quiet_level)
