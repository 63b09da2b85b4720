"""`colcon build` of this repository as a ROS package (PyPI ROS standing in for an apt install).

Checks what `ros2 launch h4w_ros h4w.launch.py` relies on: the executable in lib/h4w_ros, the
launch and config files in share/h4w_ros, and the modules importing from the install space.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from ros_support import REPO, in_workspace, require_rclpy

require_rclpy()


@pytest.fixture
def workspace(colcon_workspace):
    return colcon_workspace


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


@pytest.mark.slow
def test_installed_tools_find_their_data_from_any_directory(workspace, tmp_path, standin_assets):
    """h4w-bench, python -m h4w_ros.bench and h4w-replay read the sample photo from the install
    space (package data), started from / ."""
    prefix = workspace / "install" / "h4w_ros"
    assets = f"--checkpoint {standin_assets.checkpoint} --smplx-dir {standin_assets.smplx_dir}"
    bench = in_workspace(workspace, f"{prefix}/lib/h4w_ros/h4w-bench {assets} --backends torch --batches 1 --repeats 1 "
                                    f"--warmup 0 --json {tmp_path}/bench.json", timeout=600)
    assert bench.returncode == 0, bench.stdout[-2000:] + bench.stderr[-2000:]
    assert (tmp_path / "bench.json").is_file()
    stages = in_workspace(workspace, f"{sys.executable} -m h4w_ros.bench --mode stages --persons 1 --repeats 1 {assets} "
                                     f"--json {tmp_path}/stages.json", timeout=600)
    assert stages.returncode == 0, stages.stdout[-2000:] + stages.stderr[-2000:]
    assert (tmp_path / "stages.json").is_file()
    # no node is running: the replay builds its sequence from the photo, then says nobody answered
    replay = in_workspace(workspace, f"{prefix}/lib/h4w_ros/h4w-replay --frames 2 --wait 1 --out {tmp_path}/replay "
                                     f"--image-topic /nobody/image_raw --camera-info-topic /nobody/camera_info", timeout=120)
    text = replay.stdout + replay.stderr
    assert replay.returncode != 0 and "Traceback" not in text and "No such file" not in text, text[-2000:]
    assert text.strip().splitlines()[-1].startswith("h4w-replay:"), text[-2000:]


@pytest.mark.slow
def test_pip_install_carries_the_sample_photo(tmp_path):
    """A plain (non-editable) pip install holds the package data the tools read."""
    target, source = tmp_path / "site", tmp_path / "source"
    # from a copy of the sources: setuptools builds in place and must not leave build/ in the repository
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", ".cache", "build", "out", "*.egg-info", "__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target), str(source)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    code = "from h4w_core.data import SAMPLE_PHOTO; print(SAMPLE_PHOTO); assert SAMPLE_PHOTO.is_file()"
    run = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(target)), cwd="/", capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().startswith(str(target)), run.stdout
