"""h4w_ros.stages: concurrent stages joined by newest-wins slots; every item ends exactly once."""
from __future__ import annotations

import sys
import threading
import time
from collections import Counter

import pytest

from h4w_ros.stages import Stage, WorkTimes, limiting_stage

WAIT_S = 30.0  # a bound for a stuck thread only: every wait below ends on a condition


class Ends:
    """Thread-safe tally of how items ended, with a wait for a total."""

    def __init__(self):
        self.counts: Counter = Counter()
        self.errors: list[str] = []
        self._cond = threading.Condition()

    def __call__(self, fate: str) -> None:
        with self._cond:
            self.counts[fate] += 1
            self._cond.notify_all()

    def error(self, stage: str, exc: Exception) -> None:
        self.errors.append(f"{stage}: {exc}")

    def wait_total(self, n: int) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: sum(self.counts.values()) >= n, WAIT_S)


def test_items_pass_in_order_and_a_waiting_one_is_replaced_by_the_newest():
    ends, seen, gate = Ends(), [], threading.Event()

    def slow(item):
        gate.wait(WAIT_S)  # holds the first item, so the next ones meet a full slot
        return item

    def last(item):
        seen.append(item)
        return "processed"

    second = Stage("second", last, ends, ends.error)
    first = Stage("first", slow, ends, ends.error, downstream=second)
    for stage in (first, second):
        stage.start()
    first.put(0)
    assert _wait(lambda: first._full is False)  # item 0 taken, the worker waits on the gate
    for item in (1, 2, 3):
        first.put(item)  # 1 and 2 are replaced while they wait
    gate.set()
    assert ends.wait_total(4)
    assert first.dropped == 2  # 1 and 2 replaced in the first slot
    # 0 reaches the second stage unless 3 replaces it there first: either way in order, the newest last
    assert seen in ([0, 3], [3]) and first.dropped + second.dropped == ends.counts["newest_wins_dropped"]
    assert ends.counts["processed"] == len(seen) and sum(ends.counts.values()) == 4
    assert limiting_stage([first, second]) in ("first", "second")
    for stage in (first, second):
        assert stage.stop(WAIT_S)


def test_a_failing_item_ends_as_failed_and_the_stage_goes_on():
    ends = Ends()

    def work(item):
        if item == "bad":
            raise ValueError("broken item")
        return "processed"

    stage = Stage("only", work, ends, ends.error)
    stage.start()
    stage.put("bad")
    assert ends.wait_total(1)
    stage.put("good")
    assert ends.wait_total(2)
    assert ends.counts == {"failed": 1, "processed": 1} and ends.errors == ["only: broken item"]
    assert stage.stop(WAIT_S)


def test_a_stopped_stage_ends_what_waits_and_what_comes_later_as_not_ready():
    ends, gate = Ends(), threading.Event()
    stage = Stage("only", lambda item: gate.wait(WAIT_S) and "processed", ends, ends.error)
    stage.start()
    stage.put(1)
    assert _wait(lambda: stage._full is False)
    stage.put(2)  # waits in the slot
    stopped = threading.Thread(target=stage.stop, args=(WAIT_S,))
    stopped.start()
    assert _wait(lambda: not stage.running)
    stage.put(3)  # after stop: not taken
    gate.set()
    stopped.join(WAIT_S)
    assert ends.wait_total(3)
    assert ends.counts["not_ready"] == 2  # the waiting item and the late one; item 1 ends as the worker left it


def _wait(condition) -> bool:
    done = threading.Event()
    for _ in range(int(WAIT_S * 1000)):
        if condition():
            return True
        done.wait(0.001)
    return False


def test_work_times_tell_waiting_from_computing():
    """A worker that waits shows wall time without CPU time; one that computes shows both."""
    waiting, computing = WorkTimes(), WorkTimes()
    waiting.start()
    time.sleep(0.02)
    waiting.stop()
    computing.start()
    begun = time.thread_time()
    while time.thread_time() - begun < 0.005:  # at least 5 ms of this thread's CPU
        pass
    computing.stop()
    assert waiting.median_ms() >= 20.0 and waiting.median_cpu_ms() < waiting.median_ms() / 2
    assert computing.median_cpu_ms() >= 5.0 and computing.median_ms() >= computing.median_cpu_ms() - 0.1
    assert WorkTimes().median_ms() is None and WorkTimes().median_cpu_ms() is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread names via prctl and /proc: Linux")
def test_stage_threads_carry_their_names_in_the_os():
    """top -H and ps -L show which stage uses the CPU."""
    started = threading.Event()
    ids = []

    def work(item):
        ids.append(threading.get_native_id())
        started.set()
        return "processed"

    stage = Stage("posing", work, on_end=lambda fate: None, on_error=lambda name, exc: None)
    stage.start()
    try:
        stage.put(1)
        assert started.wait(30)
        with open(f"/proc/self/task/{ids[0]}/comm") as comm:
            assert comm.read().strip() == "h4w_posing"
    finally:
        stage.stop(5)
