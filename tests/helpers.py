"""Test helpers: ``wait_until``. (The scripted station is public: :mod:`csms_kit.testing`.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str = "") -> None:
    """Poll ``predicate`` every 10 ms until it holds; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(
                f"still not true after {timeout:g} s: {what}"
                if what
                else "condition not reached in time"
            )
        await asyncio.sleep(0.01)
