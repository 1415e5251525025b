"""The asyncio leak check fails the tests it should, and only those."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TESTS = """
import asyncio
import threading


def test_closed_loop_with_a_pending_task_it_holds():
    loop = asyncio.new_event_loop()
    task = loop.create_task(asyncio.sleep(10))
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    test_closed_loop_with_a_pending_task_it_holds.task = task


def test_pending_task_nobody_holds():
    loop = asyncio.new_event_loop()
    loop.create_task(asyncio.sleep(10))
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()


def test_asyncio_run_cancels_what_is_left():
    async def main():
        asyncio.get_running_loop().create_task(asyncio.sleep(10))

    asyncio.run(main())


def test_a_loop_left_running_belongs_to_someone_else():
    loop = asyncio.new_event_loop()
    started = threading.Event()
    loop.call_soon(started.set)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    started.wait(5)
    asyncio.run_coroutine_threadsafe(asyncio.sleep(10), loop)
    test_a_loop_left_running_belongs_to_someone_else.loop = loop
"""


def test_leftover_tasks_fail_their_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[1]))
    pytester.makepyfile(test_leaks=TESTS)
    result = pytester.runpytest_subprocess("-p", "support.asyncio_leaks", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR*test_closed_loop_with_a_pending_task_it_holds*",
            "*ERROR*test_pending_task_nobody_holds*",
        ]
    )
    assert "Task was destroyed but it is pending" in result.stdout.str()
