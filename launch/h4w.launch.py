"""Launch h4w_node (a lifecycle node, brought to active by default) on one camera.

    ros2 launch h4w_ros h4w.launch.py image:=/camera/color/image_raw \
        camera_info:=/camera/color/camera_info checkpoint:=/data/h4w/snapshot_6.pth.tar \
        smplx_dir:=/data/h4w/smplx device:=cuda backend:=tensorrt precision:=fp16

Parameters come from `config` (config/h4w.yaml by default); a launch argument left empty keeps
the file's value, a given one overrides it. Topics are relative: with namespace:=cam_left the
outputs are /cam_left/human/wholebody ... and frame_prefix:=cam_left/ keeps TF frames apart.
"""
import tempfile
from pathlib import Path

import yaml
from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.substitution import Substitution
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

# node parameters settable as launch arguments ('' = the config file's value)
PARAMETER_ARGUMENTS = {
    "checkpoint": "released snapshot_6.pth.tar",
    "smplx_dir": "folder with SMPLX_NEUTRAL.npz",
    "allow_standin": "true: run on generated stand-in assets when no real ones are given (demo only)",
    "device": "cpu | cuda",
    "backend": "torch | torch_compiled | onnxruntime | tensorrt",
    "precision": "fp32 | fp16 | bf16",
    "image_reliability": "auto | best_effort | reliable",
    "use_depth": "true: subscribe 'depth' (registered) for metric placement",
    "box_source": "detector | detections | full_frame | fixed_roi",
    "detector": "hog | onnx",
    "detector_model": "YOLO ONNX model for detector onnx",
    "fixed_roi": "[x, y, width, height] for box_source fixed_roi",
    "max_persons": "most persons per frame",
    "publish_markers": "true | false",
    "publish_overlay": "true | false",
    "frame_prefix": "prefix of the TF frame names, e.g. cam_left/",
    "hri": "true: REP 155 topics under /humans (needs hri_msgs)",
    "autostart": "true: configure and activate at start; false: wait for ros2 lifecycle",
}
REMAPPED_INPUTS = {
    "image": "/camera/image_raw",
    "camera_info": "/camera/camera_info",
    "detections": "/detections",
    "depth": "/camera/depth/image_raw",
}


class ExistingFile(Substitution):
    """A launch argument naming a file that must exist: a clear error naming the path otherwise."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def describe(self) -> str:
        return f"ExistingFile({self.name})"

    def perform(self, context) -> str:
        path = Path(LaunchConfiguration(self.name).perform(context)).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{self.name}:={path}: no such parameter file")
        return str(path)


class GivenParameters(Substitution):
    """A parameter file holding only the launch arguments that were given (non-empty)."""

    def __init__(self, names):
        super().__init__()
        self.names = tuple(names)

    def describe(self) -> str:
        return f"GivenParameters({', '.join(self.names)})"

    def perform(self, context) -> str:
        given = {}
        for name in self.names:
            text = LaunchConfiguration(name).perform(context)
            if text != "":
                given[name] = yaml.safe_load(text) if name not in ("checkpoint", "smplx_dir", "detector_model", "frame_prefix") else text
        with tempfile.NamedTemporaryFile("w", prefix="h4w_launch_", suffix=".yaml", delete=False) as f:
            yaml.safe_dump({"/**": {"ros__parameters": given}}, f)
        return f.name


def generate_launch_description():
    share = Path(get_package_share_directory("h4w_ros"))
    args = [
        DeclareLaunchArgument("config", default_value=str(share / "config" / "h4w.yaml"), description="parameter file"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its topics (one per camera)"),
        DeclareLaunchArgument("log_level", default_value="info", description="debug | info | warn | error"),
    ]
    args += [DeclareLaunchArgument(name, default_value=topic, description=f"{name} topic to subscribe")
             for name, topic in REMAPPED_INPUTS.items()]
    args += [DeclareLaunchArgument(name, default_value="", description=f"{text} ('' = config file)")
             for name, text in PARAMETER_ARGUMENTS.items()]
    node = Node(
        package="h4w_ros",
        executable="h4w_node",
        name="h4w_node",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[ExistingFile("config"), GivenParameters(PARAMETER_ARGUMENTS)],
        remappings=[(name, LaunchConfiguration(name)) for name in REMAPPED_INPUTS],
        ros_arguments=["--log-level", LaunchConfiguration("log_level")],
    )
    return LaunchDescription(args + [node])
