"""Helpers for tests that run h4w_node as a real process and talk to it over DDS."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from h4w_core.data import SAMPLE_PHOTO
from h4w_ros.msg import WholeBodyMeshArray  # noqa: F401  (re-exported for the tests)
from h4w_ros.replay import Player, Recorder

REPO = Path(__file__).resolve().parents[2]
PHOTO = SAMPLE_PHOTO
IMAGE_TOPIC = "/test_cam/image_raw"
INFO_TOPIC = "/test_cam/camera_info"


class NodeProcess:
    """h4w_node in a subprocess with its output in a log file."""

    def __init__(self, tmp_path: Path, overrides: dict[str, str], extra_args: tuple[str, ...] = (), name: str = "h4w_node"):
        self.log_path = tmp_path / f"{name}.log"
        # the installed executable, as launch runs it (console script of this venv)
        executable = Path(sys.executable).with_name("h4w_node")
        command = [str(executable)] if executable.exists() else [sys.executable, "-m", "h4w_ros.node"]
        args = command + ["--ros-args", "--params-file", str(REPO / "config" / "h4w.yaml")]
        # reliable images: a 512x512 rgb8 frame is larger than Fast DDS's default shared-memory
        # segment, which best-effort delivery cannot use (see config/fastdds_large_images.xml)
        for name, value in {"allow_standin": "true", "image_reliability": "reliable", **overrides}.items():
            args += ["-p", f"{name}:={value}"]
        args += ["-r", f"image:={IMAGE_TOPIC}", "-r", f"camera_info:={INFO_TOPIC}", *extra_args]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=dict(os.environ), cwd=REPO)

    def text(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code, or None when the process is still running after ``timeout`` seconds."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def wait_for_log(self, text: str, timeout: float = 120.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.text():
                return True
            if not self.alive():
                return False
            time.sleep(0.1)
        return text in self.text()

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def start_node(tmp_path, standin_assets):
    started = []

    def start(extra_args: tuple[str, ...] = (), name: str = "h4w_node", **overrides) -> NodeProcess:
        node = NodeProcess(tmp_path, {k: str(v) for k, v in overrides.items()}, extra_args, name)
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


def photo_rgb() -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(PHOTO), cv2.IMREAD_COLOR)[:, :, ::-1])


def wait_for_output(ros, node: NodeProcess, recorder: Recorder, player: Player, rgb: np.ndarray, timeout: float = 120.0):
    """Publish the frame every few seconds until an output with the stamp of any frame sent arrives
    (a slow CPU frame may be answered after later frames were sent: match on every stamp sent)."""
    sent = {}

    def answered():
        return [m for m in recorder.rec.meshes if (m.header.stamp.sec, m.header.stamp.nanosec) in sent]

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert node.alive(), f"h4w_node exited:\n{node.text()}"
        header = player.publish(rgb)
        sent[(header.stamp.sec, header.stamp.nanosec)] = header
        if ros.spin_until(lambda: bool(answered()), timeout=3.0):
            msg = answered()[0]
            return sent[(msg.header.stamp.sec, msg.header.stamp.nanosec)], msg
    raise AssertionError(f"no output from h4w_node within {timeout}s:\n{node.text()[-3000:]}")


def make_io(ros):
    """The replay tool's player and recorder, spun by the test harness."""
    player = Player(IMAGE_TOPIC, INFO_TOPIC, context=ros.context)
    recorder = Recorder("h4w_test_recorder", context=ros.context)
    for n in (player, recorder):
        ros.executor.add_node(n)
        ros._nodes.append(n)
    return player, recorder
