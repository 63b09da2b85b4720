"""Which frame stamps can be trusted: zero stamps and jumps in time are told apart from normal ones.

A camera whose clock resyncs, a bag that loops, or a driver that leaves stamps at zero would
otherwise stall stamp-based pairing (the synchroniser waits for stamps near the last one it
saw) and the filters (a jump back looks like time running backwards).
"""
from __future__ import annotations

from dataclasses import dataclass

OK = "ok"
ZERO = "zero"  # stamp 0: pair by arrival instead of by stamp
JUMP_AHEAD = "jump_ahead"
JUMP_BACK = "jump_back"


@dataclass(frozen=True)
class StampCheck:
    kind: str  # OK, ZERO, JUMP_AHEAD or JUMP_BACK
    jump_s: float = 0.0  # how much further the stamp moved than the time between arrivals


class StampGuard:
    """Classifies each frame's stamp against the previous frame's.

    A jump is a stamp step that disagrees with the time between the two arrivals by the threshold
    or more: a camera paused for a minute is no jump, a clock that leaps a day while frames keep
    coming at 30 Hz is.
    """

    def __init__(self, jump_threshold_s: float):
        self.jump_threshold_ns = int(jump_threshold_s * 1e9)
        self._previous: tuple[int, int] | None = None  # (stamp, arrival) in nanoseconds

    def check(self, stamp_ns: int, arrival_ns: int) -> StampCheck:
        """stamp_ns: the header stamp; arrival_ns: a monotonic clock at receipt (both integer ns)."""
        if stamp_ns == 0:
            return StampCheck(ZERO)
        previous, self._previous = self._previous, (stamp_ns, arrival_ns)
        if previous is None:
            return StampCheck(OK)
        jump = (stamp_ns - previous[0]) - (arrival_ns - previous[1])
        if jump >= self.jump_threshold_ns:
            return StampCheck(JUMP_AHEAD, jump * 1e-9)
        if -jump >= self.jump_threshold_ns:
            return StampCheck(JUMP_BACK, jump * 1e-9)
        return StampCheck(OK, jump * 1e-9)


def sane_latency_ms(now_ns: int, stamp_ns: int, threshold_s: float) -> float | None:
    """Image stamp to now in ms, or None when the stamp is zero or further from now than the
    jump threshold (another clock, a replayed bag): such a number would only mislead."""
    if stamp_ns == 0:
        return None
    latency = (now_ns - stamp_ns) * 1e-6
    return latency if abs(latency) <= threshold_s * 1e3 else None
