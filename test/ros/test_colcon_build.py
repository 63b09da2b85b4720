"""`colcon build` of this repository as a ROS package (PyPI ROS standing in for an apt install).

Checks what `ros2 launch h4w_ros h4w.launch.py` relies on: the executable in lib/h4w_ros, the
launch and config files in share/h4w_ros, and the modules importing from the install space.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import require_rclpy

require_rclpy()

REPO = Path(__file__).resolve().parents[2]
COLCON = Path(sys.executable).with_name("colcon")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    if not COLCON.exists():
        pytest.skip(f"colcon is not installed next to {sys.executable} (scripts/setup.sh installs it)")
    ws = tmp_path_factory.mktemp("colcon_ws")
    (ws / "src").mkdir()
    (ws / "src" / "h4w_ros").symlink_to(REPO)
    env = dict(os.environ, AMENT_PREFIX_PATH=sys.prefix, CMAKE_PREFIX_PATH=sys.prefix,
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = subprocess.run([str(COLCON), "build", "--base-paths", "src", "--cmake-args", "-G", "Ninja", "-DBUILD_TESTING=OFF"],
                          cwd=ws, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return ws


def in_workspace(ws: Path, command: str, **kwargs) -> subprocess.CompletedProcess:
    """Run a shell command after sourcing the workspace, as a user would."""
    return subprocess.run(["bash", "-c", f"source {ws}/install/setup.bash && {command}"], cwd="/",
                          capture_output=True, text=True, **kwargs)


def test_install_space_has_executable_launch_config_and_messages(workspace):
    prefix = workspace / "install" / "h4w_ros"
    assert os.access(prefix / "lib" / "h4w_ros" / "h4w_node", os.X_OK)
    assert (prefix / "share" / "h4w_ros" / "launch" / "h4w.launch.py").is_file()
    assert (prefix / "share" / "h4w_ros" / "config" / "h4w.yaml").is_file()
    assert (prefix / "share" / "h4w_ros" / "config" / "h4w.rviz").is_file()
    code = ("import h4w_ros.msg, h4w_ros.node, h4w_core.inference.estimator; "
            "print(h4w_ros.msg.__file__); print(h4w_ros.node.__file__); print(h4w_core.inference.estimator.__file__)")
    proc = in_workspace(workspace, f"{sys.executable} -c '{code}'", timeout=60)
    assert proc.returncode == 0, proc.stderr
    for line in proc.stdout.split():
        assert line.startswith(str(prefix)), f"{line} is not from the install space"


def test_installed_node_reports_missing_assets_and_keeps_running(workspace, tmp_path):
    node = workspace / "install" / "h4w_ros" / "lib" / "h4w_ros" / "h4w_node"
    config = workspace / "install" / "h4w_ros" / "share" / "h4w_ros" / "config" / "h4w.yaml"
    missing = tmp_path / "snapshot_6.pth.tar"
    log = tmp_path / "node.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            ["bash", "-c", f"source {workspace}/install/setup.bash && exec {node} --ros-args --params-file {config} "
                           f"-p checkpoint:={missing} -p smplx_dir:={tmp_path} -r image:=/cam/image_raw"],
            stdout=out, stderr=subprocess.STDOUT, cwd="/")
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and "configure failed" not in log.read_text():
                assert proc.poll() is None, log.read_text()
                time.sleep(0.5)
            time.sleep(1.0)
            assert proc.poll() is None, log.read_text()  # still running after the failed transition
        finally:
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=20)
    assert code == 0
    text = log.read_text()
    assert "configure failed" in text and str(missing) in text and "Hand4Whole_RELEASE" in text
