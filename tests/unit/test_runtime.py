"""The shared runtime: a lane runs every object with a fixed number of threads, never one object twice at
once, and closing an object always happens (after its run in progress, never before)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from datacloud.reconcile.runtime import Lane, Roster
from tests.support.cluster import wait_until


def test_more_objects_than_workers_all_run() -> None:
    ran: Counter[int] = Counter()
    lane: Lane[int] = Lane("t", 3, lambda k: ran.update([k]) or None)
    for key in range(200):
        lane.wake(key)
    wait_until(lambda: len(ran) == 200, 10, 0.01, what="all 200 keys run")
    before = threading.active_count()
    for key in range(200, 400):
        lane.wake(key)
    wait_until(lambda: len(ran) == 400, 10, 0.01, what="400 keys run")
    assert threading.active_count() == before  # no thread per object
    lane.stop()
    assert all(n == 1 for n in ran.values())  # None: no timer, so each ran once


def test_a_wake_while_running_runs_again_after() -> None:
    started, release = threading.Event(), threading.Event()
    runs: list[int] = []

    def work(key: int) -> None:
        runs.append(key)
        if len(runs) == 1:
            started.set()
            release.wait(5)

    lane: Lane[int] = Lane("t", 2, work)
    lane.wake(1)
    started.wait(5)
    lane.wake(1)
    time.sleep(0.05)
    assert runs == [1]  # not twice at once, though a worker is free
    release.set()
    wait_until(lambda: runs == [1, 1], 5, 0.01, what="the second run")
    lane.stop()


def test_close_waits_for_the_run_in_progress_then_runs_once() -> None:
    started, release = threading.Event(), threading.Event()
    log: list[str] = []

    def work(key: int) -> float:
        log.append("run")
        started.set()
        release.wait(5)
        return 0.0  # due again at once, but closing wins

    lane: Lane[int] = Lane("t", 2, work)
    lane.wake(1)
    started.wait(5)
    lane.close(1, lambda: log.append("closed"))
    lane.wake(1)  # ignored: the key is closing
    release.set()
    wait_until(lambda: "closed" in log, 5, 0.01, what="the close")
    time.sleep(0.05)
    assert log == ["run", "closed"]
    lane.stop()


def test_closing_is_not_held_up_by_busy_workers() -> None:
    release = threading.Event()
    closed = threading.Event()
    lane: Lane[int] = Lane("t", 2, lambda k: release.wait(5) and None)
    for key in range(10):
        lane.wake(key)  # two run (blocked), eight wait
    wait_until(lambda: lane.stats().running == 2, 5, 0.01)
    lane.close(9, closed.set)
    release.set()
    # the close of key 9 goes before the waiting runs of keys 2..8
    assert closed.wait(5)
    lane.stop()


def test_a_run_that_raises_is_retried_not_lost() -> None:
    calls: list[int] = []

    def work(key: int) -> float | None:
        calls.append(key)
        if len(calls) == 1:
            raise RuntimeError("bug")
        return None

    lane: Lane[int] = Lane("t", 1, work)
    import datacloud.reconcile.runtime as runtime

    old, runtime.FAILED_RUN_RETRY_S = runtime.FAILED_RUN_RETRY_S, 0.01
    try:
        lane.wake(1)
        wait_until(lambda: len(calls) == 2, 5, 0.01, what="the retry")
    finally:
        runtime.FAILED_RUN_RETRY_S = old
        lane.stop()


ops = st.lists(
    st.tuples(st.sampled_from(["attach", "wake", "detach", "wake_all"]), st.integers(0, 5)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(ops)
def test_random_schedules_keep_the_roster_sound(schedule: list[tuple[str, int]]) -> None:
    """Whatever the order of attach, wake and detach: no object runs twice at once, every state made is
    dropped exactly once after the object's last detach, and no run happens on a dropped state."""
    lock = threading.Lock()
    running: set[int] = set()
    problems: list[str] = []
    made: Counter[int] = Counter()
    dropped: Counter[int] = Counter()
    alive: dict[int, bool] = {}

    class State:
        def __init__(self, key: int) -> None:
            self.key, self.dropped = key, False

    def run(state: State, body: dict[str, Any]) -> float | None:
        with lock:
            if state.key in running:
                problems.append(f"{state.key} ran twice at once")
            if state.dropped:
                problems.append(f"{state.key} ran after its drop")
            running.add(state.key)
        time.sleep(0.001)
        with lock:
            running.discard(state.key)
        return 0.005

    def drop(state: State, deleted: bool) -> None:
        state.dropped = True
        with lock:
            dropped[state.key] += 1

    def make(key: int) -> State:
        with lock:
            made[key] += 1
        return State(key)

    roster: Roster[int, State] = Roster("p", 3, run, drop)
    for op, key in schedule:
        if op == "attach":
            alive[key] = True
            roster.attach(key, lambda k=key: {"metadata": {"name": str(k)}}, lambda k=key: make(k))
        elif op == "detach":
            alive[key] = False
            roster.detach(key, deleted=True)
        elif op == "wake":
            roster.wake(key)
        else:
            roster.wake_all()
        time.sleep(0.001)
    for key in list(alive):
        roster.detach(key, deleted=True)
    wait_until(lambda: roster.lane.stats().objects == 0, 10, 0.01, what="every object closed")
    roster.lane.stop()
    assert problems == []
    assert dropped == made


def test_a_wake_with_a_delay_while_running_is_kept() -> None:
    """A follower becoming busy asks for its replica's run within a few seconds, maybe while that replica
    runs; the run must still come (the due time used to be dropped with the run's end)."""
    started, release = threading.Event(), threading.Event()
    runs: list[int] = []

    def work(key: int) -> None:
        runs.append(key)
        if len(runs) == 1:
            started.set()
            release.wait(5)

    lane: Lane[int] = Lane("t", 2, work)
    lane.wake(1)
    assert started.wait(5)
    lane.wake(1, delay=0.05)
    release.set()
    wait_until(lambda: len(runs) == 2, 5, 0.01, what="the delayed wake runs the key again")
    lane.stop()
