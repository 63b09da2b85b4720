"""ROS fixtures; the environment (loopback discovery, own domain id, log folder) is set by
ros_support on import, before any rclpy context exists."""
from __future__ import annotations

import pytest

from ros_support import COLCON, RosHarness, build_colcon_workspace, require_rclpy


@pytest.fixture(scope="session")
def ros_context():
    """One initialised rclpy context for the session (no signal handlers: pytest keeps ^C)."""
    rclpy = require_rclpy()
    from rclpy.signals import SignalHandlerOptions

    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    yield context
    context.try_shutdown()


@pytest.fixture
def ros(ros_context):
    """A :class:`RosHarness`; its nodes are destroyed after the test."""
    harness = RosHarness(ros_context)
    yield harness
    harness.close()


@pytest.fixture(scope="session")
def colcon_workspace(tmp_path_factory):
    """A colcon workspace with this repository built into install/ (once per run)."""
    require_rclpy()
    if not COLCON.exists():
        pytest.skip(f"colcon is not installed next to {COLCON.parent / 'python'} (scripts/setup.sh installs it)")
    return build_colcon_workspace(tmp_path_factory.mktemp("colcon_ws"))
