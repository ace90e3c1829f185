"""cancel_and_wait ends tasks that swallow a cancellation, as some libraries do."""

from __future__ import annotations

import asyncio

import pytest

from csms_kit.stopping import cancel_and_wait

#: Hang guard: ``cancel_and_wait`` must be done long before this.
BOUND = 5.0


class Stubborn:
    """A task sleeping for ever that ignores its first ``swallow`` cancellations."""

    def __init__(self, swallow: int) -> None:
        self.swallow = swallow
        self.cancels = 0
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.cancels += 1
                if self.cancels > self.swallow:
                    raise


async def test_a_task_that_swallows_cancellations_is_cancelled_until_it_ends() -> None:
    stubborn = Stubborn(swallow=2)
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(stubborn.task, every=0.01), BOUND)
    assert stubborn.task.cancelled()
    assert stubborn.cancels == 3


async def test_tasks_already_done_none_and_failed_ones_are_fine() -> None:
    async def fail() -> None:
        raise ValueError("boom")

    done = asyncio.ensure_future(asyncio.sleep(0, "result"))
    failed = asyncio.ensure_future(fail())
    await asyncio.wait({done, failed})
    sleeping = asyncio.ensure_future(asyncio.sleep(3600))
    await asyncio.wait_for(cancel_and_wait(None, done, failed, sleeping), BOUND)
    assert done.result() == "result"
    assert isinstance(failed.exception(), ValueError)
    assert sleeping.cancelled()


async def test_cancelling_the_caller_is_not_swallowed() -> None:
    stubborn = Stubborn(swallow=10**9)
    await asyncio.sleep(0)
    stopping = asyncio.ensure_future(cancel_and_wait(stubborn.task, every=0.01))
    await asyncio.sleep(0.05)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert stubborn.cancels > 1  # it was being cancelled again and again
    stubborn.swallow = 0  # let it go
    await asyncio.wait_for(cancel_and_wait(stubborn.task), BOUND)
    assert stubborn.task.cancelled()
