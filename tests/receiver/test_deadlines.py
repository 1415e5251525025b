"""Request deadlines: one timer for every request of a loop, cancelling only the late ones."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from govfn.receiver.deadlines import Deadlines
from govfn.server.loop_server import new_event_loop


@pytest.fixture(params=["asyncio", "worker loop"])
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    made = asyncio.new_event_loop() if request.param == "asyncio" else new_event_loop()
    yield made
    made.close()


async def _under(deadlines: Deadlines, work: asyncio.Future[None]) -> str:
    deadline = deadlines.start()
    try:
        await work
        return "answered"
    except asyncio.CancelledError:
        return "expired" if deadline.expired else "cancelled otherwise"
    finally:
        deadlines.finish(deadline)


def test_a_request_past_its_deadline_is_cancelled_and_one_answered_in_time_is_not(
    loop: asyncio.AbstractEventLoop,
) -> None:
    async def scenario() -> tuple[str, str, int]:
        deadlines = Deadlines(asyncio.get_running_loop(), 0.05)
        never: asyncio.Future[None] = loop.create_future()
        soon: asyncio.Future[None] = loop.create_future()
        late = asyncio.ensure_future(_under(deadlines, never))
        quick = asyncio.ensure_future(_under(deadlines, soon))
        await asyncio.sleep(0)
        soon.set_result(None)
        outcomes = await asyncio.wait_for(asyncio.gather(late, quick), 10)
        return outcomes[0], outcomes[1], len(deadlines)

    assert loop.run_until_complete(scenario()) == ("expired", "answered", 0)


def test_another_cancellation_is_not_taken_for_an_expiry(loop: asyncio.AbstractEventLoop) -> None:
    async def scenario() -> tuple[str, int]:
        deadlines = Deadlines(asyncio.get_running_loop(), 60.0)
        task = asyncio.ensure_future(_under(deadlines, loop.create_future()))
        await asyncio.sleep(0)
        task.cancel()
        return await task, len(deadlines)

    assert loop.run_until_complete(scenario()) == ("cancelled otherwise", 0)


def test_requests_answered_behind_a_slow_one_are_forgotten_with_it(
    loop: asyncio.AbstractEventLoop,
) -> None:
    async def scenario() -> list[int]:
        deadlines = Deadlines(asyncio.get_running_loop(), 60.0)
        slow: asyncio.Future[None] = loop.create_future()
        head = asyncio.ensure_future(_under(deadlines, slow))
        await asyncio.sleep(0)
        sizes = []
        for _ in range(3):
            done: asyncio.Future[None] = loop.create_future()
            done.set_result(None)
            await _under(deadlines, done)
            sizes.append(len(deadlines))
        slow.set_result(None)
        await head
        sizes.append(len(deadlines))
        return sizes

    # answered requests wait behind the unanswered first one, then go with it
    assert loop.run_until_complete(scenario()) == [2, 3, 4, 0]


def test_the_timer_rearms_for_requests_that_start_after_the_first_expired(
    loop: asyncio.AbstractEventLoop,
) -> None:
    async def scenario() -> list[str]:
        deadlines = Deadlines(asyncio.get_running_loop(), 0.02)
        first = asyncio.ensure_future(_under(deadlines, loop.create_future()))
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(_under(deadlines, loop.create_future()))
        return list(await asyncio.wait_for(asyncio.gather(first, second), 10))

    assert loop.run_until_complete(scenario()) == ["expired", "expired"]
