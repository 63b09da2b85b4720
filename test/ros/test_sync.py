"""h4w_ros.sync: approximate-time matching (no DDS), and a synchronised pair over real DDS.

The shared behaviour tests run twice: on the project's fallback (``Local*`` classes, forced,
whatever is installed) and on the real message_filters where it is importable (apt ROS; in CI the
upstream wheels of ../shared/ros/wheels), else those cases skip with the reason. What only the
fallback documents (inclusive slop, dropping older messages after a match, argument checks) is
tested on the fallback only.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from ros_support import require_rclpy, require_upstream

require_rclpy()

from geometry_msgs.msg import PointStamped  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from h4w_ros import sync  # noqa: E402
from h4w_ros.sync import (  # noqa: E402
    LocalApproximateTimeSynchronizer,
    LocalSimpleFilter,
    LocalSubscriber,
    stamp_nanoseconds,
)

pytestmark = pytest.mark.ros


class Impl(NamedTuple):
    name: str
    SimpleFilter: Any
    Subscriber: Any
    ApproximateTimeSynchronizer: Any


LOCAL = Impl("local", LocalSimpleFilter, LocalSubscriber, LocalApproximateTimeSynchronizer)


@pytest.fixture(params=["local", "message_filters"])
def impl(request) -> Impl:
    """The fallback classes, or message_filters' own."""
    if request.param == "local":
        return LOCAL
    mf = require_upstream("message_filters")
    return Impl("message_filters", mf.SimpleFilter, mf.Subscriber, mf.ApproximateTimeSynchronizer)


def stamped(t: float, tag: str = "") -> PointStamped:
    msg = PointStamped()
    ns = int(round(t * 1e9))
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(ns, 1_000_000_000)
    msg.header.frame_id = tag
    return msg


def seconds(msg) -> float:
    return round(stamp_nanoseconds(msg) / 1e9, 6)


class Rig:
    """N filter inputs feeding one synchronizer; outputs recorded as tuples of stamps."""

    def __init__(self, impl: Impl = LOCAL, n=2, queue_size=10, slop=0.05, **kwargs):
        self.inputs = [impl.SimpleFilter() for _ in range(n)]
        self.sync = impl.ApproximateTimeSynchronizer(self.inputs, queue_size, slop, **kwargs)
        self.out = []
        self.sync.registerCallback(lambda *msgs: self.out.append(tuple(seconds(m) for m in msgs)))

    def feed(self, index, t):
        self.inputs[index].signalMessage(stamped(t))


def test_stamp_nanoseconds():
    assert stamp_nanoseconds(stamped(12.000000345)) == 12_000_000_345


def test_exact_and_within_slop_match_in_input_order(impl):
    rig = Rig(impl)
    rig.feed(0, 1.0)
    assert rig.out == []
    rig.feed(1, 1.0)
    rig.feed(1, 2.03)     # arrives first on input 1: output still in input order
    rig.feed(0, 2.0)
    assert rig.out == [(1.0, 1.0), (2.0, 2.03)]


def test_outside_slop_no_match(impl):
    rig = Rig(impl, slop=0.05)
    rig.feed(0, 1.0)
    rig.feed(1, 1.06)
    assert rig.out == []
    rig.feed(0, 1.05)     # 0.01 from 1.06: matches
    assert rig.out == [(1.05, 1.06)]


def test_local_slop_is_inclusive_and_zero_slop_needs_equal_stamps():
    # the fallback's documented rule; message_filters requires a spread strictly below slop
    rig = Rig(slop=0.25)
    rig.feed(0, 1.0)
    rig.feed(1, 1.25)
    assert rig.out == [(1.0, 1.25)]
    exact = Rig(slop=0.0)
    exact.feed(0, 1.0)
    exact.feed(1, 1.000000001)
    exact.feed(1, 1.0)
    assert exact.out == [(1.0, 1.0)]


def test_closest_candidate_wins(impl):
    rig = Rig(impl, slop=0.1)
    rig.feed(1, 0.95)
    rig.feed(1, 1.02)
    rig.feed(0, 1.0)
    assert rig.out == [(1.0, 1.02)]


def test_three_inputs_spread_must_fit_slop(impl):
    # Input 1's closest candidate to the new input-0 message (0.92) and input 2's only one
    # (1.08) are 0.16 apart (> slop): the search must fall back to input 1's 1.09.
    rig = Rig(impl, n=3, slop=0.1)
    rig.feed(1, 0.92)
    rig.feed(1, 1.09)
    rig.feed(2, 1.08)
    rig.feed(2, 0.88)      # too far from 1.0: never a candidate
    assert rig.out == []
    rig.feed(0, 1.0)
    assert len(rig.out) == 1
    a, b, c = rig.out[0]
    assert max(a, b, c) - min(a, b, c) <= 0.1 + 1e-9
    assert rig.out == [(1.0, 1.09, 1.08)]


def test_local_older_messages_dropped_after_match():
    # the fallback's documented rule; message_filters keeps unmatched older messages
    rig = Rig(slop=0.05)
    rig.feed(0, 1.0)           # never matched
    rig.feed(0, 2.0)
    rig.feed(1, 2.01)          # emits (2.0, 2.01), drops input 0's 1.0
    assert rig.out == [(2.0, 2.01)]
    assert rig.sync.queues == [{}, {}]
    rig.feed(1, 1.0)           # older than input 1's emitted stamp: dropped, not matched
    rig.feed(0, 1.01)          # older than input 0's emitted stamp: dropped
    assert rig.out == [(2.0, 2.01)]
    assert rig.sync.queues == [{}, {}]
    rig.feed(0, 3.0)
    rig.feed(1, 3.0)
    assert rig.out == [(2.0, 2.01), (3.0, 3.0)]


def test_queue_size_evicts_oldest(impl):
    rig = Rig(impl, queue_size=2, slop=0.05)
    for t in (1.0, 2.0, 3.0):
        rig.feed(0, t)
    assert sorted(rig.sync.queues[0]) == [2_000_000_000, 3_000_000_000]
    rig.feed(1, 1.0)           # its partner was evicted
    assert rig.out == []
    rig.feed(0, 0.5)           # older than everything in a full queue: evicted at once
    assert sorted(rig.sync.queues[0]) == [2_000_000_000, 3_000_000_000]
    rig.feed(1, 2.0)
    assert rig.out == [(2.0, 2.0)]


def test_callback_extra_args_and_several_callbacks(impl):
    rig = Rig(impl)
    seen = []
    rig.sync.registerCallback(lambda a, b, tag: seen.append((seconds(a), seconds(b), tag)), "x")
    rig.feed(0, 5.0)
    rig.feed(1, 5.0)
    assert seen == [(5.0, 5.0, "x")] and rig.out == [(5.0, 5.0)]


def test_headerless_messages(impl):
    inputs = [impl.SimpleFilter(), impl.SimpleFilter()]
    strict = impl.ApproximateTimeSynchronizer(inputs, 5, 0.5)
    got = []
    strict.registerCallback(lambda *m: got.append(m))
    inputs[0].signalMessage(String(data="a"))
    inputs[1].signalMessage(String(data="b"))
    assert got == [] and strict.queues == [{}, {}]

    inputs = [impl.SimpleFilter(), impl.SimpleFilter()]
    lenient = impl.ApproximateTimeSynchronizer(inputs, 5, 0.5, allow_headerless=True)
    lenient.registerCallback(lambda *m: got.append(tuple(x.data for x in m)))
    inputs[0].signalMessage(String(data="a"))
    inputs[1].signalMessage(String(data="b"))     # stamped "now": well within 0.5 s
    assert got == [("a", "b")]


@pytest.mark.parametrize("kwargs,match", [
    (dict(fs=[LocalSimpleFilter()], queue_size=5, slop=0.1), "at least 2"),
    (dict(fs=[LocalSimpleFilter(), LocalSimpleFilter()], queue_size=0, slop=0.1), "queue_size"),
    (dict(fs=[LocalSimpleFilter(), LocalSimpleFilter()], queue_size=5, slop=-1.0), "slop"),
    (dict(fs=[LocalSimpleFilter(), LocalSimpleFilter()], queue_size=5, slop=float("nan")), "slop"),
])
def test_local_invalid_arguments(kwargs, match):
    # the fallback checks its arguments; message_filters does not
    with pytest.raises(ValueError, match=match):
        LocalApproximateTimeSynchronizer(**kwargs)


def test_reset_forgets_queued_messages_and_matching_starts_afresh(impl):
    rig = Rig(impl, slop=0.05)
    rig.feed(0, 5.0)
    rig.feed(1, 5.0)
    rig.feed(0, 6.0)
    rig.feed(0, 7.0)
    assert rig.out == [(5.0, 5.0)]
    assert sync.queued(rig.sync, 0) == 2 and sync.queued(rig.sync, 1) == 0
    sync.reset_synchronizer(rig.sync)          # e.g. a bag restarted: time jumped back
    assert sync.queued(rig.sync, 0) == sync.queued(rig.sync, 1) == 0
    rig.feed(1, 6.0)                           # its partner was forgotten
    assert rig.out == [(5.0, 5.0)]
    rig.feed(0, 1.0)                           # older than what was emitted before the reset
    rig.feed(1, 1.01)
    assert rig.out == [(5.0, 5.0), (1.0, 1.01)]


def test_exports_follow_message_filters_availability():
    try:
        import message_filters  # noqa: F401
    except ImportError:
        assert not sync.USING_MESSAGE_FILTERS
        assert sync.ApproximateTimeSynchronizer is LocalApproximateTimeSynchronizer
        assert sync.Subscriber is sync.LocalSubscriber
    else:
        assert sync.USING_MESSAGE_FILTERS
        assert sync.ApproximateTimeSynchronizer is message_filters.ApproximateTimeSynchronizer


def test_image_and_camera_info_synchronised_over_dds(ros, impl):
    """Subscriber + ApproximateTimeSynchronizer (the fallback's, message_filters') over real DDS."""
    from h4w_ros.qos import image_qos

    pub_node, sub_node = ros.node("sync_pub"), ros.node("sync_sub")
    qos = image_qos("reliable", depth=10)
    image_sub = impl.Subscriber(sub_node, Image, "sync_image", qos_profile=qos)
    info_sub = impl.Subscriber(sub_node, CameraInfo, "sync_camera_info", qos_profile=qos)
    synchronizer = impl.ApproximateTimeSynchronizer([image_sub, info_sub], 10, 0.02)
    pairs = []
    synchronizer.registerCallback(lambda image, info: pairs.append(
        (seconds(image), seconds(info), image.header.frame_id, info.header.frame_id)))

    image_pub = pub_node.create_publisher(Image, "sync_image", qos)
    info_pub = pub_node.create_publisher(CameraInfo, "sync_camera_info", qos)
    assert ros.spin_until(lambda: image_pub.get_subscription_count() > 0
                          and info_pub.get_subscription_count() > 0)

    def publish(pub, msg_type, t):
        msg = msg_type()
        msg.header = stamped(t, "cam").header
        pub.publish(msg)

    for k in range(5):
        publish(image_pub, Image, 10.0 + k)
        publish(info_pub, CameraInfo, 10.0 + k + 0.005)   # camera_info stamped 5 ms later
        ros.spin_for(0.02)
    publish(info_pub, CameraInfo, 20.5)                    # no image partner: never emitted
    assert ros.spin_until(lambda: len(pairs) >= 5)
    ros.spin_for(0.3)
    assert pairs == [(10.0 + k, 10.0 + k + 0.005, "cam", "cam") for k in range(5)]


def test_frames_older_than_the_last_set_are_discarded_not_left_waiting(impl):
    """An image whose camera_info never came stays queued in message_filters until its queue
    overflows; discard_unpaired drops it once a newer set was emitted (so it is counted as never
    paired, not as in flight, when the stream stops)."""
    rig = Rig(impl)
    rig.feed(0, 1.0)  # image without camera_info
    rig.feed(0, 2.0)
    rig.feed(1, 2.0)
    assert rig.out == [(2.0, 2.0)]
    sync.discard_unpaired(rig.sync, None)  # nothing emitted yet: keep everything
    sync.discard_unpaired(rig.sync, int(2e9))
    assert sync.queued(rig.sync) == 0 and sync.queued(rig.sync, 1) == 0
    rig.feed(0, 3.0)
    sync.discard_unpaired(rig.sync, int(2e9))
    assert sync.queued(rig.sync) == 1  # newer than the last set: still waiting for its partner
