"""QoS profiles for the node's topics.

Images: ``image_qos('best_effort')`` (the default) is the sensor-data QoS of REP 2003 with
depth 1, so a slow consumer always gets the newest frame and never stalls the camera;
``image_qos('reliable')`` is reliable, volatile, depth 1.

Large images and best-effort over Fast DDS shared memory: Fast DDS's default shared-memory
segment is 512 KB, and a best-effort subscriber in another process often receives no image
larger than that (640x480 rgb8 is 921 KB) while smaller ones get through. Either use
``reliable`` or start every process with the profile shipped in
``config/fastdds_large_images.xml`` (16 MB segment)::

    export FASTDDS_DEFAULT_PROFILES_FILE=<share/h4w_ros>/config/fastdds_large_images.xml

See docs/ROS_BUILD.md.
"""
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

IMAGE_RELIABILITY_CHOICES = ("best_effort", "reliable")


def image_qos(reliability: str = "best_effort", depth: int = 1) -> QoSProfile:
    """QoS for subscribing to (or publishing) camera images.

    ``reliability`` is the node parameter's value: 'best_effort' (sensor-data QoS) or
    'reliable'. Raises ``ValueError`` for anything else.
    """
    if reliability not in IMAGE_RELIABILITY_CHOICES:
        raise ValueError(
            f"image reliability must be one of {IMAGE_RELIABILITY_CHOICES}, got {reliability!r}")
    if depth < 1:
        raise ValueError(f"QoS depth must be >= 1, got {depth}")
    if reliability == "best_effort":
        profile = QoSProfile(
            history=qos_profile_sensor_data.history,
            depth=depth,
            reliability=qos_profile_sensor_data.reliability,
            durability=qos_profile_sensor_data.durability,
        )
    else:
        profile = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=depth,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.VOLATILE,
        )
    return profile


def output_qos(depth: int = 5) -> QoSProfile:
    """QoS for the node's results (meshes, markers): reliable, volatile, keep-last ``depth``."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)
