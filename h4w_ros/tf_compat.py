"""TF broadcasters: tf2_ros where importable, else small stand-ins publishing tf2_msgs/TFMessage.

tf2_ros is not published on PyPI; the stand-ins publish the same messages on the same topics
with the same QoS as tf2_ros, so real TF listeners (rviz, tf2_echo) see no difference:

- ``/tf``: keep-last 100, reliable, volatile; every ``sendTransform`` publishes its transforms.
- ``/tf_static``: keep-last 1, reliable, transient-local; the broadcaster keeps every static
  transform sent so far (one per child frame, the newest wins) and republishes the whole set,
  so late-joining listeners receive all of them.

``tf2_msgs`` itself comes from the ROS install, or from the stand-in interface package
``ros_compat/tf2_msgs`` that scripts/setup_ros.sh builds for PyPI environments.
"""
from __future__ import annotations

from typing import Iterable, Union

from geometry_msgs.msg import TransformStamped
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

__all__ = [
    "LocalStaticTransformBroadcaster",
    "LocalTransformBroadcaster",
    "TF_QOS",
    "TF_STATIC_QOS",
    "make_static_transform_broadcaster",
    "make_transform_broadcaster",
    "tf2_ros_available",
]

TF_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST,
                    reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.VOLATILE)
TF_STATIC_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                           reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)

Transforms = Union[TransformStamped, Iterable[TransformStamped]]


def _as_list(transform: Transforms) -> list[TransformStamped]:
    if isinstance(transform, TransformStamped):
        return [transform]
    return list(transform)


def _tf_message_type():
    try:
        from tf2_msgs.msg import TFMessage
    except ImportError as exc:
        raise ImportError(
            "neither tf2_ros nor tf2_msgs is importable: source a ROS 2 install, or build the "
            "tf2_msgs stand-in with scripts/setup_ros.sh VENV") from exc
    return TFMessage


class LocalTransformBroadcaster:
    """Stand-in for ``tf2_ros.TransformBroadcaster``: publishes on ``/tf``."""

    def __init__(self, node, qos: QoSProfile = TF_QOS) -> None:
        self._msg_type = _tf_message_type()
        self.pub_tf = node.create_publisher(self._msg_type, "/tf", qos)

    def sendTransform(self, transform: Transforms) -> None:  # noqa: N802 (tf2_ros API)
        self.pub_tf.publish(self._msg_type(transforms=_as_list(transform)))


class LocalStaticTransformBroadcaster:
    """Stand-in for ``tf2_ros.StaticTransformBroadcaster``: latched set on ``/tf_static``."""

    def __init__(self, node, qos: QoSProfile = TF_STATIC_QOS) -> None:
        self._msg_type = _tf_message_type()
        self.pub_tf = node.create_publisher(self._msg_type, "/tf_static", qos)
        self._by_child: dict[str, TransformStamped] = {}

    def sendTransform(self, transform: Transforms) -> None:  # noqa: N802 (tf2_ros API)
        for t in _as_list(transform):
            self._by_child[t.child_frame_id] = t
        self.pub_tf.publish(self._msg_type(transforms=list(self._by_child.values())))


def tf2_ros_available() -> bool:
    try:
        import tf2_ros  # noqa: F401
    except ImportError:
        return False
    return True


def make_transform_broadcaster(node):
    """``tf2_ros.TransformBroadcaster(node)`` when importable, else the local stand-in."""
    if tf2_ros_available():
        from tf2_ros import TransformBroadcaster

        return TransformBroadcaster(node)
    return LocalTransformBroadcaster(node)


def make_static_transform_broadcaster(node):
    """``tf2_ros.StaticTransformBroadcaster(node)`` when importable, else the local stand-in."""
    if tf2_ros_available():
        from tf2_ros import StaticTransformBroadcaster

        return StaticTransformBroadcaster(node)
    return LocalStaticTransformBroadcaster(node)
