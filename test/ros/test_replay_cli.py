"""h4w-replay refuses a missing or unreadable image in one line, before any ROS node exists."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ros_support import require_rclpy

require_rclpy()

REPO = Path(__file__).resolve().parents[2]


def replay(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "h4w_ros.replay", *args], capture_output=True, text=True, cwd=REPO, timeout=120)


@pytest.mark.parametrize("kind", ["missing", "not_an_image"])
def test_bad_image_is_one_line_and_no_node(tmp_path, kind):
    from h4w_core.data import SAMPLE_PHOTO

    bad = tmp_path / "frame_0001.png"
    if kind == "not_an_image":
        bad.write_text("not a picture\n")
    out = tmp_path / "replay_out"
    proc = replay(str(SAMPLE_PHOTO), str(bad), "--out", str(out), "--wait", "1")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("h4w-replay: error:") and str(bad) in lines[0]
    assert not out.exists()  # play() never ran: it makes the folder before creating its nodes


@pytest.mark.parametrize("args, says", [(("--frames", "1"), "--frames: must be at least 2"),
                                        (("--wait", "nan"), "--wait: must be a finite number"),
                                        (("--period", "-1"), "--period: must be a finite number")])
def test_bad_arguments_are_one_line(args, says):
    proc = replay(*args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert says in proc.stderr.strip().splitlines()[-1], proc.stderr
