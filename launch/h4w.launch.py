"""Launch h4w_node with a parameter file and remapped camera topics.

    ros2 launch h4w_ros h4w.launch.py image:=/camera/color/image_raw \
        camera_info:=/camera/color/camera_info checkpoint:=/data/h4w/snapshot_6.pth.tar \
        smplx_dir:=/data/h4w/smplx device:=cuda backend:=tensorrt

Expands to: h4w_node --ros-args --params-file <config> [-p name:=value ...] \
    -r image:=<image> -r camera_info:=<camera_info>
"""
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

OVERRIDABLE = ("checkpoint", "smplx_dir", "device", "backend", "box_source")


def _node(context):
    value = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    overrides = {name: value(name) for name in OVERRIDABLE if value(name)}
    return [
        Node(
            package="h4w_ros",
            executable="h4w_node",
            name="h4w_node",
            output="screen",
            parameters=[value("config"), overrides],
            remappings=[("image", value("image")), ("camera_info", value("camera_info"))],
        )
    ]


def generate_launch_description():
    share = Path(get_package_share_directory("h4w_ros"))
    args = [
        DeclareLaunchArgument("image", default_value="/camera/image_raw", description="sensor_msgs/Image topic"),
        DeclareLaunchArgument("camera_info", default_value="/camera/camera_info", description="sensor_msgs/CameraInfo topic"),
        DeclareLaunchArgument("config", default_value=str(share / "config" / "h4w.yaml"), description="parameter file"),
        DeclareLaunchArgument("checkpoint", default_value="", description="snapshot_6.pth.tar ('' = from the config file)"),
        DeclareLaunchArgument("smplx_dir", default_value="", description="folder with SMPLX_NEUTRAL.npz ('' = from the config file)"),
        DeclareLaunchArgument("device", default_value="", description="cpu or cuda ('' = from the config file)"),
        DeclareLaunchArgument("backend", default_value="", description="torch, torch_compiled, onnxruntime or tensorrt ('' = config)"),
        DeclareLaunchArgument("box_source", default_value="", description="full_frame, fixed_roi, detections or detector ('' = config)"),
    ]
    return LaunchDescription(args + [OpaqueFunction(function=_node)])
