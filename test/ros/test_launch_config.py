"""The launch file and parameter file agree with the node (launch itself cannot run without apt ROS)."""
from __future__ import annotations

import ast
import importlib.util
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from ros_support import require_rclpy

require_rclpy()

from h4w_ros.params import SPECS, NodeConfig, ParameterError, validate  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def test_config_file_sets_exactly_the_declared_parameters():
    data = yaml.safe_load((REPO / "config" / "h4w.yaml").read_text())
    params = data["h4w_node"]["ros__parameters"]
    declared = {f.name for f in fields(NodeConfig)}
    assert set(params) == declared
    assert set(SPECS) == declared
    defaults = NodeConfig()
    for name, value in params.items():
        default = getattr(defaults, name)
        assert isinstance(value, type(list(default)) if isinstance(default, tuple) else type(default)), name
        assert (tuple(value) if isinstance(value, list) else value) == default, f"{name}: config/h4w.yaml {value!r}, code {default!r}"
    validate(NodeConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}))


def test_launch_file_runs_the_node_with_config_overrides_and_remaps():
    """Static view of launch/h4w.launch.py (test_launch.py runs it with ros2 launch where launch is installed)."""
    source = (REPO / "launch" / "h4w.launch.py").read_text()
    tree = ast.parse(source)
    calls = {node.func.id: node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    kwargs = {k.arg: k.value for k in calls["Node"].keywords}
    assert ast.literal_eval(kwargs["package"]) == "h4w_ros"
    assert ast.literal_eval(kwargs["executable"]) == "h4w_node"
    assert ast.literal_eval(kwargs["name"]) == "h4w_node"
    assert "OpaqueFunction" not in source  # declarative: `ros2 launch --print` shows the node
    assigned = {n.targets[0].id: n.value for n in ast.walk(tree) if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)}
    arguments = set(ast.literal_eval(assigned["PARAMETER_ARGUMENTS"]))
    assert arguments <= {f.name for f in fields(NodeConfig)}
    assert {"allow_standin", "precision", "image_reliability", "use_depth", "box_source", "detector_model", "publish_markers",
            "checkpoint", "smplx_dir", "device", "backend", "autostart"} <= arguments
    assert set(ast.literal_eval(assigned["REMAPPED_INPUTS"])) == {"image", "camera_info", "detections", "depth"}


def test_rviz_config_shows_markers_and_tf():
    rviz = yaml.safe_load((REPO / "config" / "h4w.rviz").read_text())
    displays = rviz["Visualization Manager"]["Displays"]
    classes = {d["Class"]: d for d in displays}
    assert classes["rviz_default_plugins/MarkerArray"]["Topic"]["Value"] == "/human/wholebody/markers"
    assert "rviz_default_plugins/TF" in classes


@pytest.mark.parametrize("bad", [{"box_source": "everything"}, {"backend": "magic"}, {"box_source": "fixed_roi"}])
def test_contradictory_parameters_are_rejected(bad):
    with pytest.raises(ParameterError):
        validate(NodeConfig(**bad))


def test_colcon_executables_match_the_pip_console_scripts():
    import re

    cmake = (REPO / "CMakeLists.txt").read_text()
    block = re.search(r"set\(H4W_ROS_EXECUTABLES(.*?)\)", cmake, re.S).group(1)
    colcon = {e.replace(" ", "") for e in re.findall(r'"([^"]+)"', block)}
    setup = (REPO / "setup.py").read_text()
    pip = {e.replace(" ", "") for e in re.findall(r'"(h4w[\w-]* = [\w.]+:\w+)"', setup)}
    assert colcon == pip and "h4w_node=h4w_ros.node:main" in colcon


@pytest.mark.parametrize("backend, device, configured, expected", [
    ("torch", "cpu", 0, 8),  # auto: the network's own kernels want every core
    ("torch_compiled", "cpu", 0, 8),
    ("torch", "cuda", 0, 1),  # auto: torch runs only posing on the CPU, beside the other stages
    ("onnxruntime", "cpu", 0, 1),  # ONNX Runtime has its own pool
    ("emulated", "cpu", 0, 1),
    ("onnxruntime", "cpu", 3, 3),  # set: taken as given
])
def test_torch_threads_auto_follows_where_the_network_runs(backend, device, configured, expected):
    from h4w_ros.node import torch_threads

    config = NodeConfig(backend=backend, device=device, torch_threads=configured)
    assert torch_threads(config, cores=8) == expected


def test_executor_choice(ros):
    """auto and events give rclpy's EventsExecutor where rclpy has it (Kilted on), single_threaded the classic one."""
    import rclpy.executors

    from h4w_ros.node import make_executor

    made = [make_executor(choice, context=ros.context) for choice in ("auto", "events", "single_threaded")]
    events = "EventsExecutor" if importlib.util.find_spec("rclpy.experimental") else "SingleThreadedExecutor"
    try:
        assert [type(e).__name__ for e in made] == [events, events, "SingleThreadedExecutor"]
        assert isinstance(made[2], rclpy.executors.SingleThreadedExecutor)
    finally:
        for executor in made:
            executor.shutdown()
