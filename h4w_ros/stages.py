"""Concurrent stages joined by one-item slots: the frame rate is set by the slowest stage, not by
the sum of them.

Each stage is one thread taking the newest item from its slot; an item that arrives while
another still waits replaces it (newest wins, counted per stage), so nothing queues up, and
with one thread per stage the items leave every stage in the order they entered it.
"""
from __future__ import annotations

import ctypes
import statistics
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

_PR_SET_NAME = 15  # linux/prctl.h


def name_os_thread() -> None:
    """Give the calling thread its Python name (at most 15 bytes of it) in the OS too, so
    ``top -H``, htop and ``ps -L`` show which stage uses the CPU. Linux only; elsewhere nothing happens."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_NAME, threading.current_thread().name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass


class WorkTimes:
    """Wall and CPU milliseconds of a worker's last 100 items. CPU is the worker thread's own: wall
    far above it means the item waited (for a core, Python's GIL, another thread pool such as ONNX
    Runtime's, or the GPU), not that the thread's own work is expensive."""

    def __init__(self, keep: int = 100):
        self.wall_ms: deque = deque(maxlen=keep)
        self.cpu_ms: deque = deque(maxlen=keep)
        self._started = (0.0, 0.0)

    def start(self) -> None:
        self._started = (time.perf_counter(), time.thread_time())

    def stop(self) -> None:
        wall, cpu = self._started
        self.wall_ms.append((time.perf_counter() - wall) * 1000.0)
        self.cpu_ms.append((time.thread_time() - cpu) * 1000.0)

    def median_ms(self) -> float | None:
        return statistics.median(self.wall_ms) if self.wall_ms else None

    def median_cpu_ms(self) -> float | None:
        return statistics.median(self.cpu_ms) if self.cpu_ms else None


class Stage:
    """One worker thread fed from a newest-wins slot.

    ``work(item)`` returns the item for ``downstream`` or a fate string (the item ends: 'processed'
    or a loss cause). ``on_end(fate)`` is told how every item ended, once; ``on_error``
    gets exceptions of ``work`` (the item then ends as 'failed').
    """

    def __init__(self, name: str, work: Callable[[Any], Any], on_end: Callable[[str], None],
                 on_error: Callable[[str, Exception], None], downstream: Stage | None = None):
        self.name = name
        self.work = work
        self.on_end = on_end
        self.on_error = on_error
        self.downstream = downstream
        self.dropped = 0  # items replaced in this stage's slot
        self.times = WorkTimes()
        self._slot: Any = None
        self._full = False
        self._cond = threading.Condition()
        self._running = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._loop, name=f"h4w_{self.name}", daemon=True)
        self._thread.start()

    def put(self, item: Any) -> None:
        """Hand an item in; an item still waiting is dropped (its end reported as newest_wins_dropped).
        A stopped stage takes nothing: the item ends as not_ready."""
        with self._cond:
            if not self._running:
                ended = "not_ready"
            else:
                ended = "newest_wins_dropped" if self._full else ""
                self._slot, self._full = item, True
                self.dropped += bool(ended)
                self._cond.notify()
        if ended:
            self.on_end(ended)

    def stop(self, timeout: float) -> bool:
        """Stop taking items; True when the thread has ended within ``timeout`` seconds."""
        with self._cond:
            self._running = False
            waiting, self._full, self._slot = self._full, False, None
            self._cond.notify_all()
        if waiting:
            self.on_end("not_ready")
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    @property
    def running(self) -> bool:
        return self._running

    def _loop(self) -> None:
        name_os_thread()
        while True:
            with self._cond:
                while not self._full and self._running:
                    self._cond.wait(timeout=0.5)
                if not self._running:
                    return
                item, self._slot, self._full = self._slot, None, False
            self.times.start()
            try:
                out = self.work(item)
            except Exception as exc:  # a stage must survive any single bad item
                if not self._running:
                    return  # shutting down: an item in flight is abandoned quietly
                self.on_error(self.name, exc)
                out = "failed"
            self.times.stop()
            if isinstance(out, str):
                self.on_end(out)
            elif self.downstream is not None:
                self.downstream.put(out)


def limiting_stage(stages: list[Stage]) -> str:
    """The stage with the largest median time (the one that sets the frame rate)."""
    timed = [(ms, s.name) for s in stages if (ms := s.times.median_ms()) is not None]
    return max(timed)[1] if timed else ""
