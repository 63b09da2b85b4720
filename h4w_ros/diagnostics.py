"""What the node tells /diagnostics and its log: frame counts by fate, and warnings per cause.

Every frame received ends in exactly one bucket (processed, or one of the loss causes) or is
still on its way (queued in the synchroniser, pending or in the network), so
``received == processed + sum(losses) + in_flight`` at any moment (tested at high rate).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

# loss causes, in the order /diagnostics lists them
LOSSES = (
    "sync_dropped",  # never paired with camera_info (and detections, depth) by stamp
    "newest_wins_dropped",  # replaced by a newer frame while waiting for the network
    "bad_input",  # image (or depth) that could not be converted
    "not_ready",  # arrived while no model was loaded
    "failed",  # processing raised (logged)
)


class TransportLoss:
    """Images the camera stamped that never reached the node, judged from the stamps that did.

    The camera's period is the typical short interval between received stamps (the median of
    those within 1.5x the 10th percentile, robust to jitter), so a stream arriving at half its
    stamp rate lost half its images in transport (e.g. large best-effort images over Fast DDS).
    Only what DDS never delivered counts: the node's own drops happen after receipt.
    """

    MIN_STAMPS = 30

    def __init__(self, window: int = 150):
        self.stamps: deque = deque(maxlen=window)

    def add(self, stamp_ns: int) -> None:
        if self.stamps and stamp_ns <= self.stamps[-1]:
            self.stamps.clear()  # out of order or a jump back: start afresh
        self.stamps.append(stamp_ns)

    def clear(self) -> None:
        self.stamps.clear()

    def camera_period_s(self) -> float | None:
        if len(self.stamps) < self.MIN_STAMPS:
            return None
        gaps = np.diff(np.asarray(self.stamps, dtype=np.int64))
        short = np.percentile(gaps, 10)
        typical = gaps[gaps <= 1.5 * short]
        return float(np.median(typical)) * 1e-9 if short > 0 and len(typical) else None

    def lost_fraction(self) -> float | None:
        """Share of the images stamped over the window that did not arrive (None: too few stamps)."""
        period = self.camera_period_s()
        if period is None:
            return None
        expected = (self.stamps[-1] - self.stamps[0]) * 1e-9 / period + 1.0
        return max(0.0, 1.0 - len(self.stamps) / expected)


@dataclass
class FrameCounters:
    """Counters behind /diagnostics (guarded by ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    received: int = 0
    fed_to_sync: int = 0
    paired: int = 0
    processed: int = 0
    in_flight: int = 0  # pending for the worker, or inside it
    losses: dict = field(default_factory=lambda: dict.fromkeys(LOSSES, 0))
    stamp_jumps: int = 0
    zero_stamps: int = 0
    persons_output: int = 0
    non_finite_persons: int = 0
    invalid_boxes: int = 0
    images_seen: deque = field(default_factory=lambda: deque(maxlen=400))
    published: deque = field(default_factory=lambda: deque(maxlen=400))
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=100))  # image stamp -> outputs published
    processing_ms: deque = field(default_factory=lambda: deque(maxlen=100))  # prepare started -> outputs published
    image_ages_ms: deque = field(default_factory=lambda: deque(maxlen=100))  # image stamp -> received here
    last_image_time: float = 0.0
    last_pair_time: float = 0.0
    last_person_time: float = 0.0  # monotonic time a person was last output
    last_non_finite_time: float = 0.0
    last_empty_reason: str = ""  # why the newest processed frame had nobody
    transport: TransportLoss = field(default_factory=TransportLoss)

    def lose(self, cause: str, count: int = 1) -> None:
        with self.lock:
            self.losses[cause] += count

    def finish(self, outcome: str) -> None:
        """A frame leaves the worker: processed, or lost for ``outcome`` (one of LOSSES)."""
        with self.lock:
            self.in_flight -= 1
            if outcome == "processed":
                self.processed += 1
            else:
                self.losses[outcome] += 1


def rate_hz(stamps: deque, window_s: float = 5.0) -> float:
    now = time.monotonic()
    return sum(1 for t in stamps if now - t <= window_s) / window_s


class CauseLog:
    """Warnings throttled per cause, not per text: the first one is logged at once, later ones at
    most once per ``period_s`` with the number suppressed since, so a flood becomes a summary."""

    def __init__(self, logger, period_s: float = 10.0):
        self.logger = logger
        self.period_s = period_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def report(self, cause: str, message: str, level: str = "warning") -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(cause)
            if last is not None and now - last < self.period_s:
                self._suppressed[cause] = self._suppressed.get(cause, 0) + 1
                return
            suppressed = self._suppressed.pop(cause, 0)
            self._last[cause] = now
        if suppressed:
            message += f" ({suppressed} more of this kind in the last {now - last:.0f} s)"
        self._emit(level, message)

    def once(self, cause: str, message: str, level: str = "warning") -> None:
        """Log a cause the first time only (e.g. a configuration notice)."""
        with self._lock:
            if cause in self._last:
                return
            self._last[cause] = time.monotonic()
        self._emit(level, message)

    def _emit(self, level: str, message: str) -> None:
        # one call site per severity: rclpy's logger refuses two severities from one line
        if level == "error":
            self.logger.error(message)
        elif level == "info":
            self.logger.info(message)
        else:
            self.logger.warning(message)
