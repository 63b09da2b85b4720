"""`ros2 launch h4w_ros h4w.launch.py` as users run it: a real launch process, the real ros2 CLI.

From the pip install (this venv as the ament prefix, as scripts/setup.sh makes it) and from a colcon
install space: stand-in assets, a photo replayed by the test, outputs on human/wholebody and /tf,
`ros2 param describe/set`, `ros2 lifecycle get`, and a SIGINT (to the launch process, or to its whole
process group as a terminal's Ctrl-C does) with a frame in flight ends every process within 10 s,
exit code 0, no traceback, no orphan. A second test runs two cameras in two namespaces at once.

Needs the upstream launch and ros2cli packages (an apt ROS has them; CI installs them from
../shared/ros/wheels); skips with the reason otherwise. Every wait is on a condition.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ros_support import require_rclpy, require_upstream

require_rclpy()
require_upstream("ros2launch")
require_upstream("ros2param")
require_upstream("ros2lifecycle")

from h4w_ros.replay import Player, Recorder  # noqa: E402
from node_harness import photo_rgb, wait_for_output  # noqa: E402

ROS2 = Path(sys.executable).with_name("ros2")
SHUTDOWN_S = 10.0
STARTUP_S = 240.0


class LaunchProcess:
    """`ros2 launch` in its own process group (as a terminal runs it), output in a log file."""

    def __init__(self, log_path: Path, launch_args: dict[str, str], workspace: Path | None = None):
        args = " ".join(f"{k}:={v}" for k, v in launch_args.items())
        setup = f"source {workspace}/install/setup.bash && " if workspace else ""
        env = dict(os.environ, PATH=f"{ROS2.parent}:{os.environ['PATH']}", PYTHONUNBUFFERED="1")
        if workspace is None:
            env["AMENT_PREFIX_PATH"] = sys.prefix  # the pip install: this venv is the ament prefix
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(["bash", "-c", f"{setup}exec ros2 launch h4w_ros h4w.launch.py {args}"],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd="/", start_new_session=True)
        self.env = env

    def text(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def node_pids(self) -> list[int]:
        """Pids launch reports for the processes it started."""
        return [int(p) for p in re.findall(r"process started with pid \[(\d+)\]", self.text())]

    def cli(self, *args: str, expect: str, timeout: float = 90.0) -> str:
        """Run `ros2 <args> --no-daemon` until its output contains ``expect`` (the node may still be
        being discovered); the last output otherwise."""
        deadline = time.monotonic() + timeout
        out = ""
        while time.monotonic() < deadline:
            assert self.alive(), self.text()[-3000:]
            proc = subprocess.run([str(ROS2), *args, "--no-daemon", "--spin-time", "3"], env=self.env, capture_output=True, text=True, timeout=120)
            out = proc.stdout + proc.stderr
            if expect in out:
                return out
            time.sleep(0.5)
        raise AssertionError(f"`ros2 {' '.join(args)}` never printed {expect!r}; last output:\n{out}")

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for pid in self.node_pids():
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
        self.log.close()


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def launch_arguments(assets, camera: str, **extra: str) -> dict[str, str]:
    return {"allow_standin": "true", "checkpoint": str(assets.checkpoint), "smplx_dir": str(assets.smplx_dir),
            "box_source": "full_frame", "image_reliability": "reliable", "publish_markers": "false",
            "image": f"/{camera}/image_raw", "camera_info": f"/{camera}/camera_info", **extra}


@pytest.fixture
def launched(tmp_path):
    started: list[LaunchProcess] = []

    def start(name: str, launch_args: dict[str, str], workspace: Path | None = None) -> LaunchProcess:
        proc = LaunchProcess(tmp_path / f"{name}.log", launch_args, workspace)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


class SentPlayer(Player):
    """The replay player, remembering the stamps it sent."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sent: set[tuple[int, int]] = set()

    def publish(self, *args, **kwargs):
        header = super().publish(*args, **kwargs)
        self.sent.add(_stamp(header))
        return header


def _io(ros, camera: str, namespace: str = ""):
    player = SentPlayer(f"/{camera}/image_raw", f"/{camera}/camera_info", context=ros.context)
    recorder = Recorder(f"rec_{camera}", context=ros.context, **({"namespace": namespace} if namespace else {}))
    for n in (player, recorder):
        ros.executor.add_node(n)
        ros._nodes.append(n)
    return player, recorder


def _stamp(header) -> tuple[int, int]:
    return header.stamp.sec, header.stamp.nanosec


def _tf_children(recorder, stamp: tuple[int, int]) -> set[str]:
    return {t.child_frame_id for m in recorder.rec.tf for t in m.transforms if _stamp(t.header) == stamp}


def _has_frames(recorder, stamp: tuple[int, int], *starts: str) -> bool:
    """Frames starting with each of ``starts`` were broadcast with ``stamp``."""
    children = _tf_children(recorder, stamp)
    return all(any(f.startswith(start) for f in children) for start in starts)


def _assert_clean_exit(launch: LaunchProcess, pids: list[int], code: int | None) -> None:
    log = launch.text()
    assert code == 0, f"exit code {code}:\n{log[-3000:]}"
    assert _wait_until(lambda: not any(_running(p) for p in pids), 2.0), f"orphans left: {[p for p in pids if _running(p)]}"
    for bad in ("Traceback", "process has died", "RCLError", "[ERROR]", "KeyboardInterrupt"):
        assert bad not in log, f"{bad!r} in the launch output:\n{log[-3000:]}"


def _check_parameters_over_the_cli(launch: LaunchProcess, ros, recorder, player, rgb) -> None:
    """ros2 param describe / set / get as documented: read-only refused, live ones applied."""
    described = launch.cli("param", "describe", "/h4w_node", "backend", "camera_info_timeout", expect="Parameter name: camera_info_timeout")
    backend, timeout = described.split("Parameter name: camera_info_timeout")
    assert "Read only: true" in backend and "Read only" not in timeout
    assert "Description:" in backend and "Description:" in timeout and "Max value: 60.0" in timeout
    refused = launch.cli("param", "set", "/h4w_node", "backend", "onnxruntime", expect="Setting parameter failed")
    assert "read-only" in refused.lower() or "read only" in refused.lower(), refused
    launch.cli("param", "set", "/h4w_node", "camera_info_timeout", "7", expect="Set parameter successful")  # an integer for a float
    assert "7.0" in launch.cli("param", "get", "/h4w_node", "camera_info_timeout", expect="7")
    out_of_range = launch.cli("param", "set", "/h4w_node", "camera_info_timeout", "100", expect="Setting parameter failed")
    assert "camera_info_timeout" in out_of_range and "60" in out_of_range, out_of_range
    launch.cli("param", "set", "/h4w_node", "publish_tf", "false", expect="Set parameter successful")
    after, _ = wait_for_output(ros, launch, recorder, player, rgb, timeout=STARTUP_S)
    ros.spin_for(1.0)
    assert not _tf_children(recorder, _stamp(after)), "publish_tf false left /tf flowing"


@pytest.mark.slow
@pytest.mark.parametrize("install, stop_with", [("pip", "launch_process"), ("colcon", "process_group")])
def test_ros2_launch_outputs_params_lifecycle_and_clean_sigint(install, stop_with, request, ros, launched, standin_assets):
    workspace = request.getfixturevalue("colcon_workspace") if install == "colcon" else None
    launch = launched("launch", launch_arguments(standin_assets, "lt_cam"), workspace)
    player, recorder = _io(ros, "lt_cam")
    rgb = photo_rgb()

    header, msg = wait_for_output(ros, launch, recorder, player, rgb, timeout=STARTUP_S)
    assert len(msg.people) == 1 and len(msg.people[0].vertices) == 10475 * 3
    assert ros.spin_until(lambda: _has_frames(recorder, _stamp(header), "body_", "l_wrist_"), timeout=30)

    assert launch.cli("lifecycle", "get", "/h4w_node", expect="active").startswith("active")
    if install == "pip":  # the CLI needs the node only, not an install path: once is enough
        _check_parameters_over_the_cli(launch, ros, recorder, player, rgb)
    pids = launch.node_pids()
    assert pids and all(_running(p) for p in pids)
    player.publish(rgb)  # a frame in flight at shutdown: dropped silently
    ros.spin_for(0.3)
    if stop_with == "process_group":
        os.killpg(launch.proc.pid, signal.SIGINT)
    else:
        launch.proc.send_signal(signal.SIGINT)
    try:
        code = launch.proc.wait(timeout=SHUTDOWN_S)
    except subprocess.TimeoutExpired:
        code = None
    _assert_clean_exit(launch, pids, code)


@pytest.mark.slow
def test_two_cameras_in_two_namespaces_do_not_collide(ros, launched, standin_assets):
    cameras = ("cam_left", "cam_right")
    launches = {c: launched(c, launch_arguments(standin_assets, c, namespace=c, frame_prefix=f"{c}/")) for c in cameras}
    io = {c: _io(ros, c, namespace=f"/{c}") for c in cameras}
    rgb = photo_rgb()
    answered = {}
    for c in cameras:
        player, recorder = io[c]
        answered[c] = wait_for_output(ros, launches[c], recorder, player, rgb, timeout=STARTUP_S)[0]
    for c in cameras:
        player, recorder = io[c]
        # each namespace's output answers only its own camera's frames
        assert recorder.rec.meshes and {_stamp(m.header) for m in recorder.rec.meshes} <= player.sent

        stamp = _stamp(answered[c])
        assert ros.spin_until(lambda: _has_frames(recorder, stamp, f"{c}/body_", f"{c}/l_wrist_"), timeout=30), \
            sorted(_tf_children(recorder, stamp))[:5]  # noqa: B023
        assert all(f.startswith(f"{c}/") for f in _tf_children(recorder, stamp))
    names = {"/cam_left/h4w_node: whole-body estimation", "/cam_right/h4w_node: whole-body estimation"}
    assert ros.spin_until(lambda: names <= {s.name for m in io["cam_left"][1].rec.diagnostics for s in m.status}, timeout=30)
    for c in cameras:
        launches[c].proc.send_signal(signal.SIGINT)
    for c in cameras:
        pids = launches[c].node_pids()
        try:
            code = launches[c].proc.wait(timeout=SHUTDOWN_S)
        except subprocess.TimeoutExpired:
            code = None
        _assert_clean_exit(launches[c], pids, code)


def _launch_cli(*args: str, option: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = dict(os.environ, AMENT_PREFIX_PATH=sys.prefix, PATH=f"{ROS2.parent}:{os.environ['PATH']}")
    return subprocess.run([str(ROS2), "launch", *option, "h4w_ros", "h4w.launch.py", *args], env=env, cwd="/",
                          capture_output=True, text=True, timeout=120)


def test_ros2_launch_print_shows_the_node_and_its_arguments():
    proc = _launch_cli("namespace:=cam_left", "allow_standin:=true", option=("--print",))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ExecInPkg(pkg='h4w_ros', exec='h4w_node')" in proc.stdout, proc.stdout  # the node, not an OpaqueFunction
    shown = _launch_cli(option=("--show-args",))
    for name in ("allow_standin", "precision", "image_reliability", "use_depth", "box_source", "detector_model",
                 "publish_markers", "namespace", "autostart", "image", "camera_info", "detections", "depth", "frame_prefix"):
        assert f"'{name}'" in shown.stdout, name


def test_a_missing_config_file_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "my_h4w.yaml"
    proc = _launch_cli(f"config:={missing}")
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and f"config:={missing}: no such parameter file" in text, text[-2000:]
    assert "process started" not in text  # no node was started on other settings
