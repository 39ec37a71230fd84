"""The loop supervisor of kit/tasks.py: crashed loops restart, returned ones stay done."""

import asyncio

import pytest

from kit import tasks
from kit.tasks import Supervisor, backoff


class RecordingLog:
    def __init__(self) -> None:
        self.errors: list[tuple[str, dict[str, object]]] = []

    def error(self, event: str, **kw: object) -> None:
        self.errors.append((event, kw))


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # The restart itself is under test, not the wait before it.
    monkeypatch.setattr(tasks, "backoff", lambda failures: 0.0)


def test_backoff_doubles_from_one_second_up_to_thirty() -> None:
    assert [backoff(n) for n in (1, 2, 3, 5, 6, 20)] == [1.0, 2.0, 4.0, 16.0, 30.0, 30.0]


async def test_a_crashed_loop_is_logged_and_restarted() -> None:
    log = RecordingLog()
    supervisor = Supervisor(log, crash_event="svc_task_crashed", prefix="svc")
    runs: list[str] = []
    done = asyncio.Event()

    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        runs.append(task.get_name())
        if len(runs) < 3:
            raise RuntimeError("boom")
        done.set()

    supervisor.spawn(run, name="sender")
    await done.wait()
    await supervisor.stop(timeout=1.0)

    assert runs == ["svc-sender"] * 3
    assert log.errors == [
        ("svc_task_crashed", {"task": "sender", "failures": 1, "exc_info": True}),
        ("svc_task_crashed", {"task": "sender", "failures": 2, "exc_info": True}),
    ]


async def test_an_unnamed_loop_logs_no_task_field() -> None:
    log = RecordingLog()
    supervisor = Supervisor(log, crash_event="console_task_crashed")
    done = asyncio.Event()
    calls = 0

    async def run() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        done.set()

    supervisor.spawn(run)
    await done.wait()
    await supervisor.stop(timeout=1.0)

    assert log.errors == [("console_task_crashed", {"failures": 1, "exc_info": True})]


async def test_a_loop_that_returns_is_not_restarted() -> None:
    log = RecordingLog()
    supervisor = Supervisor(log, crash_event="svc_task_crashed", prefix="svc")
    returned = asyncio.Event()
    calls = 0

    async def run() -> None:
        nonlocal calls
        calls += 1
        returned.set()

    supervisor.spawn(run, name="relay")
    await returned.wait()
    await asyncio.sleep(0)  # a restart would run now
    await supervisor.stop(timeout=1.0)

    assert calls == 1
    assert log.errors == []


async def test_after_halt_a_crashed_loop_is_not_restarted() -> None:
    log = RecordingLog()
    supervisor = Supervisor(log, crash_event="svc_task_crashed")
    crash = asyncio.Event()
    calls = 0

    async def run() -> None:
        nonlocal calls
        calls += 1
        await crash.wait()
        raise RuntimeError("boom")

    supervisor.spawn(run, name="consumer")
    await asyncio.sleep(0)  # the loop is running
    supervisor.halt()
    crash.set()
    await supervisor.stop(timeout=1.0)

    assert calls == 1
    assert [kw["failures"] for _, kw in log.errors] == [1]


async def test_stop_cancels_a_loop_that_overruns_and_the_supervisor_runs_again() -> None:
    supervisor = Supervisor(RecordingLog(), crash_event="svc_task_crashed")
    cancelled = asyncio.Event()

    async def stuck() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    supervisor.spawn(stuck, name="sender")
    await asyncio.sleep(0)  # the loop is running
    await supervisor.stop(timeout=0.01)
    assert cancelled.is_set()

    ran = asyncio.Event()

    async def run() -> None:
        ran.set()

    supervisor.spawn(run, name="sender")
    await ran.wait()
    await supervisor.stop(timeout=1.0)
