"""The ordered worker thread behind the download's writer and hasher."""

from __future__ import annotations

import asyncio
import functools

import pytest

from modelsync.fetch.worker import OrderedWorker


def test_calls_run_in_order_and_drain_waits_for_them() -> None:
    async def go() -> list[str]:
        worker = OrderedWorker("test")
        seen: list[str] = []
        for i in range(200):
            worker.submit(functools.partial(seen.append, f"work{i}"))
            worker.submit(None, functools.partial(seen.append, f"then{i}"))
        await worker.drain()
        worker.close()
        return seen

    seen = asyncio.run(go())
    assert seen == [f"{kind}{i}" for i in range(200) for kind in ("work", "then")]


def test_a_failure_skips_later_work_but_not_then_and_drain_raises_it() -> None:
    async def go() -> tuple[list[str], BaseException | None]:
        worker = OrderedWorker("test")
        seen: list[str] = []

        def fail() -> None:
            raise OSError(28, "No space left on device")

        worker.submit(lambda: seen.append("a"), lambda: seen.append("gave back a"))
        worker.submit(fail, lambda: seen.append("gave back b"))
        worker.submit(lambda: seen.append("c"), lambda: seen.append("gave back c"))
        error: BaseException | None = None
        try:
            await worker.drain()
        except OSError as exc:
            error = exc
        worker.close()
        return seen, error

    seen, error = asyncio.run(go())
    assert seen == ["a", "gave back a", "gave back b", "gave back c"]
    assert isinstance(error, OSError)
    assert error.errno == 28


def test_close_returns_once_queued_work_is_done() -> None:
    worker = OrderedWorker("test")
    seen: list[int] = []
    for i in range(50):
        worker.submit(functools.partial(seen.append, i))
    worker.close()
    assert seen == list(range(50))
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(worker.drain())  # the thread is gone: nothing would ever answer
    worker.close()  # closing twice is harmless
