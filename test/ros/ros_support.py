"""ROS test environment and helpers: real rclpy over real DDS, confined to this machine and this run.

Set before any rclpy context exists (conftest files load before tests run):
- ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST: discovery stays on loopback (no LAN multicast);
- ROS_DOMAIN_ID: 1 + pid % 100, so concurrent test runs do not see each other
  (H4W_TEST_ROS_DOMAIN_ID overrides);
- ROS_LOG_DIR: a fresh temporary folder.
Subprocesses started by tests inherit these. Imported by conftest.py, so this runs first. Test modules skip themselves (with the reason)
when rclpy is not importable: run scripts/setup_ros.sh VENV first.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_DOMAIN_ID"] = os.environ.get("H4W_TEST_ROS_DOMAIN_ID",
                                             str(1 + os.getpid() % 100))
os.environ["ROS_LOG_DIR"] = tempfile.mkdtemp(prefix="h4w_test_ros_log_")
# A profile file inherited from the shell would change transports under the tests' feet;
# tests that want one set it for their own subprocesses.
os.environ.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)

RCLPY_SKIP_REASON = ("rclpy is not importable: ROS 2 is not set up in this Python "
                     "(run scripts/setup_ros.sh VENV, or source a ROS 2 install)")


def require_rclpy():
    """Import rclpy or skip the calling test module with a clear reason."""
    return pytest.importorskip("rclpy", reason=RCLPY_SKIP_REASON)


REPO = Path(__file__).resolve().parents[2]


def upstream_wheels_dir() -> Path | None:
    """The folder of upstream ROS wheels (launch, ros2cli, tf2_ros, message_filters, ...) that
    scripts/setup.sh installs for CI and tests, when this workplace has one: H4W_ROS_WHEELS_DIR
    (empty: none), default ../shared/ros/wheels beside the repository. A user's apt ROS provides
    the same packages; the project never needs the folder."""
    value = os.environ.get("H4W_ROS_WHEELS_DIR")
    if value == "":
        return None
    folder = Path(value) if value else REPO.parent / "shared" / "ros" / "wheels"
    return folder if any(folder.glob("*.whl")) else None


def upstream_skip_reason(what: str) -> str:
    """Why a test needing the real (upstream ROS) ``what`` skips."""
    folder = upstream_wheels_dir()
    if folder is None:
        return (f"{what} is not installed: an apt ROS install provides it; in CI scripts/setup.sh "
                f"installs it from ../shared/ros/wheels, which is absent here")
    return f"{what} is not installed although {folder} exists: re-run scripts/setup.sh"


def require_upstream(module: str):
    """Import the real ROS package ``module`` (e.g. tf2_ros, message_filters) or skip the calling
    test with :func:`upstream_skip_reason`."""
    return pytest.importorskip(module, reason=upstream_skip_reason(module))


class RosHarness:
    """Nodes on one rclpy context, spun by one executor in the test's thread."""

    def __init__(self, context):
        from rclpy.executors import SingleThreadedExecutor

        self.context = context
        self.executor = SingleThreadedExecutor(context=context)
        self._nodes = []

    def node(self, name: str):
        import rclpy

        node = rclpy.create_node(f"{name}_{len(self._nodes)}", context=self.context)
        self._nodes.append(node)
        self.executor.add_node(node)
        return node

    def spin_until(self, predicate, timeout: float = 10.0) -> bool:
        """Spin until ``predicate()`` is true; False after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=0.05)
        return bool(predicate())

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        for node in self._nodes:
            self.executor.remove_node(node)
            node.destroy_node()
        self._nodes.clear()
        self.executor.shutdown()


COLCON = Path(sys.executable).with_name("colcon")


def build_colcon_workspace(ws: Path) -> Path:
    """`colcon build` of this repository in ``ws`` (PyPI ROS in this venv standing in for apt ROS)."""
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
