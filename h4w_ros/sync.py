"""Approximate-time synchronisation of several topics (e.g. image + camera_info + boxes).

Uses ``message_filters`` when importable (apt ROS installs). Otherwise (ROS from PyPI wheels,
where message_filters is not published) the local classes below stand in with the same API::

    from h4w_ros.sync import ApproximateTimeSynchronizer, Subscriber

    image_sub = Subscriber(node, Image, "image", qos_profile=qos)
    info_sub = Subscriber(node, CameraInfo, "camera_info", qos_profile=qos)
    sync = ApproximateTimeSynchronizer([image_sub, info_sub], queue_size=10, slop=0.05)
    sync.registerCallback(callback)            # callback(image_msg, info_msg)

Matching (local implementation): one queue per input keyed by ``header.stamp`` (the newest
``queue_size`` kept). When a message arrives, the candidates of every other queue within
``slop`` seconds of it are tried, closest first; the first combination whose stamps all lie
within ``slop`` of each other (inclusive) is emitted, in input order. After an emission each
queue drops the emitted message and everything older, and later arrivals older than what an
input already emitted are dropped, so callbacks never go back in time. message_filters
matches the same way but keeps unmatched older messages until they age out of the queue.
"""
from __future__ import annotations

import itertools
import threading
from typing import Any, Callable, Sequence

__all__ = [
    "ApproximateTimeSynchronizer",
    "LocalApproximateTimeSynchronizer",
    "LocalSimpleFilter",
    "LocalSubscriber",
    "SimpleFilter",
    "Subscriber",
    "USING_MESSAGE_FILTERS",
    "queued",
    "reset_synchronizer",
    "stamp_nanoseconds",
]


def stamp_nanoseconds(msg: Any) -> int:
    """``msg.header.stamp`` as integer nanoseconds."""
    stamp = msg.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class LocalSimpleFilter:
    """A message source: callbacks registered with :meth:`registerCallback` get each message."""

    def __init__(self) -> None:
        self._callbacks: dict[int, tuple[Callable, tuple]] = {}
        self._next_connection = 0

    def registerCallback(self, callback: Callable, *args: Any) -> int:  # noqa: N802 (ROS API)
        """Call ``callback(*messages, *args)`` for every output; returns a connection id."""
        connection = self._next_connection
        self._next_connection += 1
        self._callbacks[connection] = (callback, args)
        return connection

    def signalMessage(self, *messages: Any) -> None:  # noqa: N802 (ROS API)
        for callback, args in list(self._callbacks.values()):
            callback(*(messages + args))


class LocalSubscriber(LocalSimpleFilter):
    """An rclpy subscription as a filter input: ``Subscriber(node, msg_type, topic, qos_profile=...)``."""

    def __init__(self, node, msg_type, topic: str, qos_profile=10, **kwargs: Any) -> None:
        super().__init__()
        self.node = node
        self.topic = topic
        self.msg_type = msg_type
        self.sub = node.create_subscription(msg_type, topic, self.callback, qos_profile, **kwargs)

    def callback(self, msg: Any) -> None:
        self.signalMessage(msg)

    def getTopic(self) -> str:  # noqa: N802 (ROS API)
        return self.topic

    def destroy(self) -> None:
        """Destroy the underlying subscription."""
        if self.sub is not None:
            self.node.destroy_subscription(self.sub)
            self.sub = None


class LocalApproximateTimeSynchronizer(LocalSimpleFilter):
    """Emit sets of messages (one per input) whose header stamps lie within ``slop`` seconds."""

    def __init__(self, fs: Sequence[Any], queue_size: int, slop: float,
                 allow_headerless: bool = False) -> None:
        super().__init__()
        if len(fs) < 2:
            raise ValueError(f"need at least 2 inputs to synchronise, got {len(fs)}")
        if int(queue_size) < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if not slop >= 0.0:
            raise ValueError(f"slop must be >= 0 seconds, got {slop}")
        self.queue_size = int(queue_size)
        self.slop = float(slop)
        self._slop_ns = int(round(self.slop * 1e9))
        self.allow_headerless = allow_headerless
        self.queues: list[dict[int, Any]] = [{} for _ in fs]
        self._last_emitted: list[int | None] = [None] * len(fs)
        self.lock = threading.Lock()
        self.input_connections = [f.registerCallback(self.add, index) for index, f in enumerate(fs)]

    def _stamp(self, msg: Any) -> int | None:
        if hasattr(msg, "header") and hasattr(msg.header, "stamp"):
            return stamp_nanoseconds(msg)
        if not self.allow_headerless:
            return None
        from rclpy.clock import ROSClock

        return ROSClock().now().nanoseconds

    def add(self, msg: Any, index: int) -> None:
        """Queue ``msg`` for input ``index`` and emit a matching set if there is one."""
        stamp = self._stamp(msg)
        if stamp is None:
            return
        with self.lock:
            matched = self._add_locked(msg, index, stamp)
        if matched is not None:
            self.signalMessage(*matched)

    def _add_locked(self, msg: Any, index: int, stamp: int) -> list[Any] | None:
        last = self._last_emitted[index]
        if last is not None and stamp <= last:
            return None  # older than what this input already emitted
        queue = self.queues[index]
        queue[stamp] = msg
        while len(queue) > self.queue_size:
            del queue[min(queue)]
        if stamp not in queue:
            return None  # older than a full queue: evicted at once

        candidates: list[list[int]] = []
        for other_index, other in enumerate(self.queues):
            if other_index == index:
                candidates.append([stamp])
                continue
            near = sorted((s for s in other if abs(s - stamp) <= self._slop_ns),
                          key=lambda s: abs(s - stamp))
            if not near:
                return None
            candidates.append(near)

        for combination in itertools.product(*candidates):
            if max(combination) - min(combination) <= self._slop_ns:
                matched = [q[s] for q, s in zip(self.queues, combination)]
                for q_index, (q, s) in enumerate(zip(self.queues, combination)):
                    for old in [t for t in q if t <= s]:
                        del q[old]
                    self._last_emitted[q_index] = s
                return matched
        return None


try:  # the real message_filters where ROS provides it
    from message_filters import ApproximateTimeSynchronizer, SimpleFilter, Subscriber
    USING_MESSAGE_FILTERS = True
except ImportError:
    ApproximateTimeSynchronizer = LocalApproximateTimeSynchronizer
    SimpleFilter = LocalSimpleFilter
    Subscriber = LocalSubscriber
    USING_MESSAGE_FILTERS = False


def reset_synchronizer(sync: Any) -> None:
    """Forget every queued message (after a jump in time), for message_filters' synchroniser and
    the local one alike: both keep one ``queues`` dict per input under ``lock``."""
    with sync.lock:
        for queue in sync.queues:
            queue.clear()
        if hasattr(sync, "_last_emitted"):
            sync._last_emitted = [None] * len(sync.queues)


def queued(sync: Any, index: int = 0) -> int:
    """Messages of input ``index`` waiting in the synchroniser for their partners."""
    with sync.lock:
        return len(sync.queues[index])


def discard_unpaired(sync: Any, before_ns: int | None) -> None:
    """Drop queued messages stamped before ``before_ns`` (the newest set already emitted).

    A camera's frames arrive in stamp order, so these can no longer make a set; message_filters
    keeps them until its queue overflows, so once a stream stops they would wait, counted as in
    flight, for ever. Call it outside the synchroniser's callbacks (they run under its lock).
    """
    if before_ns is None:
        return
    with sync.lock:
        for queue in sync.queues:
            for stamp in [t for t in queue if t < before_ns]:
                del queue[stamp]
