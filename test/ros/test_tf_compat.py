"""h4w_ros.tf_compat: /tf and /tf_static broadcasters over real DDS.

Every behaviour test runs twice: on the project's stand-ins (``Local*``, forced, whatever is
installed) and on the real tf2_ros broadcasters where tf2_ros is importable (apt ROS; in CI the
upstream wheels of ../shared/ros/wheels). Otherwise the tf2_ros cases skip with the reason.
"""
from __future__ import annotations

import pytest

from ros_support import require_rclpy, require_upstream

require_rclpy()

from geometry_msgs.msg import TransformStamped  # noqa: E402
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from h4w_ros import tf_compat  # noqa: E402

pytestmark = pytest.mark.ros


def transform(parent: str, child: str, x: float) -> TransformStamped:
    t = TransformStamped()
    t.header.frame_id = parent
    t.header.stamp.sec = 3
    t.child_frame_id = child
    t.transform.translation.x = x
    t.transform.rotation.w = 1.0
    return t


def summary(msg: TFMessage):
    return sorted((t.header.frame_id, t.child_frame_id, t.transform.translation.x)
                  for t in msg.transforms)


@pytest.fixture(params=["local", "tf2_ros"])
def broadcasters(request):
    """(dynamic class, static class): the stand-ins, or tf2_ros's own."""
    if request.param == "local":
        return tf_compat.LocalTransformBroadcaster, tf_compat.LocalStaticTransformBroadcaster
    tf2_ros = require_upstream("tf2_ros")
    return tf2_ros.TransformBroadcaster, tf2_ros.StaticTransformBroadcaster


def late_static_listener(ros, name: str) -> list:
    """A /tf_static subscriber created now; returns the list its messages go to."""
    got = []
    ros.node(name).create_subscription(TFMessage, "/tf_static", got.append, tf_compat.TF_STATIC_QOS)
    return got


def test_factories_pick_tf2_ros_or_stand_in(ros):
    node = ros.node("tf_pick")
    dynamic = tf_compat.make_transform_broadcaster(node)
    static = tf_compat.make_static_transform_broadcaster(node)
    if tf_compat.tf2_ros_available():
        import tf2_ros

        assert isinstance(dynamic, tf2_ros.TransformBroadcaster)
        assert isinstance(static, tf2_ros.StaticTransformBroadcaster)
    else:
        assert isinstance(dynamic, tf_compat.LocalTransformBroadcaster)
        assert isinstance(static, tf_compat.LocalStaticTransformBroadcaster)


def test_tf_and_tf_static_topics_and_qos_seen_by_the_graph(ros, broadcasters):
    dynamic_cls, static_cls = broadcasters
    node = ros.node("tf_graph")
    dynamic_cls(node)
    static_cls(node)
    observer = ros.node("tf_graph_observer")

    def info(topic):
        return [i for i in observer.get_publishers_info_by_topic(topic)
                if i.node_name == node.get_name()]

    assert ros.spin_until(lambda: info("/tf") and info("/tf_static"))
    (tf_info,), (static_info,) = info("/tf"), info("/tf_static")
    assert tf_info.topic_type == static_info.topic_type == "tf2_msgs/msg/TFMessage"
    assert tf_info.qos_profile.reliability == ReliabilityPolicy.RELIABLE
    assert tf_info.qos_profile.durability == DurabilityPolicy.VOLATILE
    assert static_info.qos_profile.reliability == ReliabilityPolicy.RELIABLE
    assert static_info.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL


def test_dynamic_transforms_reach_a_listener(ros, broadcasters):
    dynamic_cls, _ = broadcasters
    node, listener = ros.node("tf_dyn"), ros.node("tf_dyn_listener")
    got = []
    listener.create_subscription(TFMessage, "/tf", got.append, tf_compat.TF_QOS)
    broadcaster = dynamic_cls(node)
    assert ros.spin_until(lambda: broadcaster.pub_tf.get_subscription_count() > 0)

    broadcaster.sendTransform(transform("camera", "h4w_pelvis_0", 1.5))
    broadcaster.sendTransform([transform("camera", "h4w_pelvis_0", 1.6),
                               transform("camera", "h4w_pelvis_1", -2.0)])
    assert ros.spin_until(lambda: len(got) >= 2)
    assert summary(got[0]) == [("camera", "h4w_pelvis_0", 1.5)]
    assert summary(got[1]) == [("camera", "h4w_pelvis_0", 1.6), ("camera", "h4w_pelvis_1", -2.0)]


def test_static_transforms_accumulate_and_reach_a_late_listener(ros, broadcasters):
    """Holds for both. Re-sending an already-sent child frame is allowed either outcome: this
    tf2_ros keeps the first transform (upstream later reverted that), the stand-in the newest;
    code must rely on neither, so only "one transform per child frame" is checked here."""
    _, static_cls = broadcasters
    broadcaster = static_cls(ros.node("tf_static"))
    broadcaster.sendTransform(transform("base_link", "camera", 0.1))
    broadcaster.sendTransform([transform("camera", "camera_optical", 0.0),
                               transform("base_link", "camera", 0.2)])   # an update of "camera"
    ros.spin_for(0.2)

    got = late_static_listener(ros, "tf_static_late_listener")   # joins after everything was sent
    assert ros.spin_until(lambda: got)
    ros.spin_for(0.2)
    assert len(got) == 1, "transient-local keep-last 1 must deliver exactly the latest set"
    frames = summary(got[0])
    assert [(parent, child) for parent, child, _ in frames] == [("base_link", "camera"), ("camera", "camera_optical")]
    assert frames[0][2] in (0.1, 0.2) and frames[1][2] == 0.0


def test_local_static_broadcaster_newest_transform_wins(ros):
    """The stand-in's documented behaviour (h4w_ros.tf_compat): one transform per child frame,
    the newest wins, the whole set republished. Not asserted of tf2_ros (see above)."""
    broadcaster = tf_compat.LocalStaticTransformBroadcaster(ros.node("tf_static_local"))
    broadcaster.sendTransform(transform("base_link", "camera", 0.1))
    broadcaster.sendTransform([transform("camera", "camera_optical", 0.0),
                               transform("base_link", "camera", 0.2)])   # replaces the first
    broadcaster.sendTransform(iter([transform("camera", "camera_optical", 0.05)]))  # any iterable
    ros.spin_for(0.2)

    got = late_static_listener(ros, "tf_static_local_late_listener")
    assert ros.spin_until(lambda: got)
    ros.spin_for(0.2)
    assert len(got) == 1
    assert summary(got[0]) == [("base_link", "camera", 0.2), ("camera", "camera_optical", 0.05)]


def test_transforms_resolve_in_a_tf2_ros_buffer(ros, broadcasters):
    """A real TF listener (tf2_ros Buffer + TransformListener) chains the static and the dynamic
    transforms of either implementation."""
    tf2_ros = require_upstream("tf2_ros")
    from rclpy.time import Time

    dynamic_cls, static_cls = broadcasters
    node = ros.node("tf_chain")
    dynamic, static = dynamic_cls(node), static_cls(node)
    buffer = tf2_ros.Buffer()
    listener = tf2_ros.TransformListener(buffer, ros.node("tf_chain_listener"), spin_thread=False)
    try:
        static.sendTransform(transform("base_link", "camera", 0.1))
        assert ros.spin_until(lambda: dynamic.pub_tf.get_subscription_count() > 0)

        def resolved():
            dynamic.sendTransform(transform("camera", "h4w_pelvis_0", 1.5))
            return buffer.can_transform("base_link", "h4w_pelvis_0", Time())

        assert ros.spin_until(resolved)
        t = buffer.lookup_transform("base_link", "h4w_pelvis_0", Time())
        assert t.transform.translation.x == pytest.approx(1.6)
        assert (t.header.stamp.sec, t.header.stamp.nanosec) == (3, 0)
    finally:
        listener.unregister()
