"""h4w_ros.tf_compat: /tf and /tf_static broadcasters (tf2_ros or stand-ins) over real DDS."""
from __future__ import annotations

import pytest

pytest.importorskip("rclpy", reason="rclpy is not importable: run scripts/setup_ros.sh VENV")

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


def test_tf_and_tf_static_topics_and_qos_seen_by_the_graph(ros):
    node = ros.node("tf_graph")
    tf_compat.make_transform_broadcaster(node)
    tf_compat.make_static_transform_broadcaster(node)
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


def test_dynamic_transforms_reach_a_listener(ros):
    node, listener = ros.node("tf_dyn"), ros.node("tf_dyn_listener")
    got = []
    listener.create_subscription(TFMessage, "/tf", got.append, tf_compat.TF_QOS)
    broadcaster = tf_compat.make_transform_broadcaster(node)
    assert ros.spin_until(lambda: broadcaster.pub_tf.get_subscription_count() > 0)

    broadcaster.sendTransform(transform("camera", "h4w_pelvis_0", 1.5))
    broadcaster.sendTransform([transform("camera", "h4w_pelvis_0", 1.6),
                               transform("camera", "h4w_pelvis_1", -2.0)])
    assert ros.spin_until(lambda: len(got) >= 2)
    assert summary(got[0]) == [("camera", "h4w_pelvis_0", 1.5)]
    assert summary(got[1]) == [("camera", "h4w_pelvis_0", 1.6), ("camera", "h4w_pelvis_1", -2.0)]


def test_static_transforms_accumulate_and_reach_a_late_listener(ros):
    node = ros.node("tf_static")
    broadcaster = tf_compat.make_static_transform_broadcaster(node)
    broadcaster.sendTransform(transform("base_link", "camera", 0.1))
    broadcaster.sendTransform([transform("camera", "camera_optical", 0.0),
                               transform("base_link", "camera", 0.2)])   # replaces the first
    ros.spin_for(0.2)

    listener = ros.node("tf_static_late_listener")      # joins after everything was sent
    got = []
    listener.create_subscription(TFMessage, "/tf_static", got.append, tf_compat.TF_STATIC_QOS)
    assert ros.spin_until(lambda: got)
    ros.spin_for(0.2)
    assert len(got) == 1, "transient-local keep-last 1 must deliver exactly the latest set"
    assert summary(got[0]) == [("base_link", "camera", 0.2), ("camera", "camera_optical", 0.0)]
