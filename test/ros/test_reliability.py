"""The node under a robot integrator's worst day: bad clocks, bad camera_info, bad parameters,
floods of broken frames, a second node on the same outputs, and signals at any moment.

Every test runs the real node process over real DDS (loopback) with stand-in assets and waits on
conditions with generous deadlines: none depends on how fast this machine is.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ros_support import require_rclpy

require_rclpy()

from builtin_interfaces.msg import Time  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from h4w_ros.image_conversion import numpy_to_image  # noqa: E402
from h4w_ros.msg import WholeBodyMeshArray  # noqa: E402
from h4w_ros.replay import camera_info_for  # noqa: E402
from node_harness import REPO, make_io, photo_rgb, start_node, wait_for_output  # noqa: E402,F401

DAY_S = 86_400
ROI = "[20, 10, 360, 490]"  # integers, as anyone types pixels: accepted for a float array


def _send(player, rgb: np.ndarray, stamp: Time, info=None) -> Header:
    header = Header(frame_id="camera_optical_frame", stamp=stamp)
    player.image_pub.publish(numpy_to_image(rgb, "rgb8", header))
    player.info_pub.publish(info(header) if info else camera_info_for(rgb.shape[1], rgb.shape[0], header))
    return header


def _shifted(player, seconds: int) -> Time:
    now = player.get_clock().now().to_msg()
    return Time(sec=now.sec + seconds, nanosec=now.nanosec)


def _answered(recorder, stamps) -> list[WholeBodyMeshArray]:
    wanted = {(s.sec, s.nanosec) for s in stamps}
    return [m for m in recorder.rec.meshes if (m.header.stamp.sec, m.header.stamp.nanosec) in wanted]


def _keep_sending(ros, node, recorder, send, timeout: float = 180.0) -> WholeBodyMeshArray:
    """Call ``send()`` (which publishes one frame and returns its stamp) every 0.5 s until one of
    the frames sent is answered; the answer."""
    sent = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert node.alive(), node.text()[-3000:]
        sent.append(send())
        if ros.spin_until(lambda: bool(_answered(recorder, sent)), 0.5):
            return _answered(recorder, sent)[0]
    raise AssertionError(f"no answer within {timeout} s:\n{node.text()[-3000:]}")


def _diagnostics(recorder) -> list[dict[str, str]]:
    return [{kv.key: kv.value for kv in s.values} for d in recorder.rec.diagnostics for s in d.status if s.values]


def _all_finite(msg: WholeBodyMeshArray) -> bool:
    return all(np.all(np.isfinite(p.vertices)) and np.all(np.isfinite([[q.x, q.y, q.z] for q in p.joints])) for p in msg.people)


# ---------------------------------------------------------------------------------------------
def test_clock_jumps_and_zero_stamps_never_stall_the_node(ros, start_node):
    node = start_node(box_source="fixed_roi", fixed_roi=ROI)
    player, recorder = make_io(ros)
    rgb = photo_rgb()
    first = _keep_sending(ros, node, recorder, lambda: _send(player, rgb, _shifted(player, 0)).stamp)
    assert len(first.people) == 1  # integer fixed_roi accepted

    # a frame a day ahead, then normal time again: processed again after the reset
    ahead = _keep_sending(ros, node, recorder, lambda: _send(player, rgb, _shifted(player, DAY_S)).stamp)
    assert ahead.header.stamp.sec > first.header.stamp.sec + DAY_S - 60
    started = time.monotonic()
    back = _keep_sending(ros, node, recorder, lambda: _send(player, rgb, _shifted(player, 0)).stamp)
    recovered_s = time.monotonic() - started
    assert back.header.stamp.sec < ahead.header.stamp.sec - DAY_S + 60
    # a bag looping: a day back, then normal again
    _keep_sending(ros, node, recorder, lambda: _send(player, rgb, _shifted(player, -DAY_S)).stamp)
    _keep_sending(ros, node, recorder, lambda: _send(player, rgb, _shifted(player, 0)).stamp)
    # stamps left at zero: answered too (paired by arrival), with the image's (zero) header
    zero = _keep_sending(ros, node, recorder, lambda: _send(player, rgb, Time(sec=0, nanosec=0)).stamp)
    assert zero.header.stamp.sec == 0 and len(zero.people) == 1 and _all_finite(zero)

    assert ros.spin_until(lambda: any(int(d.get("stamp_jumps", 0)) >= 3 and int(d.get("zero_stamps", 0)) >= 1
                                      for d in _diagnostics(recorder)), 30), _diagnostics(recorder)[-1:]
    log = node.text()
    assert "(ahead)" in log and "(back)" in log and "image stamps are zero" in log
    assert log.count("image stamps are zero") == 1  # once per cause, not per frame
    # latency is computed from sane stamps only: never a day
    latencies = [float(d["latency_ms_max"]) for d in _diagnostics(recorder) if d.get("latency_ms_max", "nan") != "nan"]
    assert latencies and max(latencies) < DAY_S * 1e3 / 2
    print(f"normally stamped frames answered again {recovered_s:.2f} s after the +1 day frame")


def test_broken_camera_info_is_refused_and_never_poisons_a_track(ros, start_node):
    node = start_node(box_source="fixed_roi", fixed_roi=ROI)
    player, recorder = make_io(ros)
    rgb = photo_rgb()
    _keep_sending(ros, node, recorder, lambda: _send(player, rgb, _shifted(player, 0)).stamp)

    def absurd(header):
        info = camera_info_for(rgb.shape[1], rgb.shape[0], header)
        info.k[0] = 1e300
        return info

    def wrong_size(header):
        return camera_info_for(2 * rgb.shape[1], 2 * rgb.shape[0], header)

    for broken in (absurd, wrong_size):
        out = _keep_sending(ros, node, recorder, lambda b=broken: _send(player, rgb, _shifted(player, 0), info=b).stamp)
        assert len(out.people) == 1 and _all_finite(out)
    after = _keep_sending(ros, node, recorder, lambda: _send(player, rgb, _shifted(player, 0)).stamp)
    assert len(after.people) == 1 and _all_finite(after)  # the same track, its filters not poisoned
    assert after.people[0].track_id == out.people[0].track_id
    assert all(np.all(np.isfinite([t.transform.translation.x, t.transform.rotation.w])) for m in recorder.rec.tf for t in m.transforms)
    log = node.text()
    assert "camera_info has no usable K" in log and "its K does not apply" in log


@pytest.mark.slow
def test_frame_accounting_adds_up_under_a_flood(ros, start_node):
    """200 Hz of frames, some without camera_info, some undecodable: every frame received is
    processed or counted as lost, at every diagnostics message."""
    node = start_node(box_source="fixed_roi", fixed_roi=ROI, diagnostics_period="0.2")
    player, recorder = make_io(ros)
    rgb = photo_rgb()
    _keep_sending(ros, node, recorder, lambda: _send(player, rgb, _shifted(player, 0)).stamp)
    small = np.ascontiguousarray(rgb[::4, ::4])
    for i in range(600):
        header = Header(frame_id="camera_optical_frame", stamp=player.get_clock().now().to_msg())
        if i % 10 == 3:  # an encoding the network cannot take
            image = numpy_to_image(np.zeros((8, 8), np.float32), "32FC1", header)
        else:
            image = numpy_to_image(small, "rgb8", header)
        player.image_pub.publish(image)
        if i % 10 != 7:  # every tenth frame has no camera_info
            player.info_pub.publish(camera_info_for(image.width, image.height, header))
        ros.spin_for(0.005)

    def settled():
        d = _diagnostics(recorder)
        return d and d[-1]["frames_in_flight"] == "0" and int(d[-1]["frames_received"]) > 0

    assert ros.spin_until(settled, 120), _diagnostics(recorder)[-1:]  # frames never paired are not left in flight
    keys = ("frames_processed", "sync_dropped", "newest_wins_dropped", "bad_input", "not_ready", "failed", "frames_in_flight")
    for d in _diagnostics(recorder):
        assert int(d["frames_received"]) == sum(int(d[k]) for k in keys), d
    last = _diagnostics(recorder)[-1]
    assert int(last["frames_received"]) >= 300, last  # reliable, so most frames of the flood arrived
    assert int(last["newest_wins_dropped"]) > 0 and int(last["bad_input"]) > 0 and int(last["sync_dropped"]) > 0, last
    # repeated problems are summarised per cause, not logged per frame
    errors = [line for line in node.text().splitlines() if "image rejected" in line]
    assert 1 <= len(errors) <= 5, errors


def test_a_second_publisher_of_the_outputs_is_reported(ros, start_node):
    node = start_node(box_source="fixed_roi", fixed_roi=ROI)
    other = ros.node("other_h4w")
    other.create_publisher(WholeBodyMeshArray, "/human/wholebody", 10)
    assert node.wait_for_log("h4w_node active", 180), node.text()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "another node also publishes /human/wholebody" not in node.text():
        ros.spin_for(0.5)
    assert "another node also publishes /human/wholebody" in node.text()


def test_idle_person_output_is_a_warning_with_its_reason(ros, start_node):
    node = start_node(box_source="detector", idle_warning_timeout="1.0")
    player, recorder = make_io(ros)
    blank = np.full((240, 320, 3), 127, np.uint8)  # nobody in view

    def warned():
        return any(s.level == s.WARN and "no person output" in s.message and "no persons found" in s.message
                   for d in recorder.rec.diagnostics for s in d.status)

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not warned():
        assert node.alive(), node.text()[-3000:]
        player.publish(blank)
        ros.spin_for(0.3)
    assert warned(), [s.message for d in recorder.rec.diagnostics for s in d.status][-3:]


# ---------------------------------------------------------------------------------------------
def _node_command(*params: str) -> list[str]:
    args = [sys.executable, "-m", "h4w_ros.node", "--ros-args", "--params-file", str(REPO / "config" / "h4w.yaml"),
            "-p", "allow_standin:=true", "-p", "autostart:=false"]
    for p in params:
        args += ["-p", p]
    return args


@pytest.mark.parametrize("param, expected", [
    ("max_persons:=many", "parameter 'max_persons' must be an integer"),
    ("detector_score_threshold:=2.5", "parameter 'detector_score_threshold' must be"),
    ("box_source:=everything", "parameter 'box_source' must be one of"),
    ("fixed_roi:=[1.0, nan, 3.0, 4.0]", "parameter 'fixed_roi' must hold finite numbers"),
])
def test_a_bad_parameter_is_one_line_naming_it(param, expected):
    proc = subprocess.run(_node_command(param), capture_output=True, text=True, timeout=300, cwd=REPO)
    err = [line for line in proc.stderr.splitlines() if "configuration error" in line]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(err) == 1 and expected in err[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr + proc.stdout


# ---------------------------------------------------------------------------------------------
SHUTDOWN_CASES = {
    "sigint": (signal.SIGINT,),
    "sigterm": (signal.SIGTERM,),
    "double_sigint": (signal.SIGINT, signal.SIGINT),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", ["sigint", "sigterm", "double_sigint", "sigterm_while_loading", "sigint_mid_frame"])
def test_clean_exit_on_any_signal(case, ros, start_node):
    """Exit code 0 within 10 s, no traceback, no abort, no ERROR after the signal."""
    node = start_node(box_source="fixed_roi", fixed_roi=ROI)
    if case == "sigterm_while_loading":
        assert node.wait_for_log("STAND-IN", 180), node.text()  # assets resolved, network loading now
        signals = (signal.SIGTERM,)
    else:
        player, recorder = make_io(ros)
        rgb = photo_rgb()
        _keep_sending(ros, node, recorder, lambda: _send(player, rgb, _shifted(player, 0)).stamp)
        if case == "sigint_mid_frame":
            _send(player, rgb, _shifted(player, 0))
            ros.spin_for(0.05)  # the frame is in the network now (a CPU frame takes far longer)
            signals = (signal.SIGINT,)
        else:
            signals = SHUTDOWN_CASES[case]
    before = len(node.text())
    started = time.monotonic()
    for sig in signals:
        node.signal(sig)
        time.sleep(0.2)
    code = node.wait_exit(timeout=10.0 + 5.0)  # 10 s asked; 5 s of slack for a loaded CI machine
    elapsed = time.monotonic() - started
    after = node.text()[before:]
    assert code == 0, (code, node.text()[-3000:])
    assert elapsed < 15.0, elapsed
    assert "Traceback" not in after and "[ERROR]" not in after, after


def test_image_qos_auto_follows_the_camera_when_it_changes(ros, start_node):
    """image_reliability auto: a best-effort camera is followed with best effort; when the driver
    restarts publishing reliable (images already seen), the node follows it to reliable."""
    from h4w_ros.qos import image_qos
    from h4w_ros.replay import Player
    from node_harness import IMAGE_TOPIC, INFO_TOPIC

    node = start_node(box_source="fixed_roi", fixed_roi=ROI, image_reliability="auto", diagnostics_period="0.5")
    assert node.wait_for_log("h4w_node active", 180), node.text()
    _, recorder = make_io(ros)
    best_effort = Player(IMAGE_TOPIC, INFO_TOPIC, context=ros.context)
    for pub in (best_effort.image_pub, best_effort.info_pub):
        best_effort.destroy_publisher(pub)
    best_effort.image_pub = best_effort.create_publisher(Image, IMAGE_TOPIC, image_qos("best_effort"))
    best_effort.info_pub = best_effort.create_publisher(CameraInfo, INFO_TOPIC, image_qos("best_effort"))
    ros.executor.add_node(best_effort)
    small = np.ascontiguousarray(photo_rgb()[::2, ::2])  # fits Fast DDS's default shared memory
    wait_for_output(ros, node, recorder, best_effort, small)
    assert any(d.get("image_qos") == "best_effort" for d in _diagnostics(recorder))
    ros.executor.remove_node(best_effort)
    best_effort.destroy_node()  # the driver restarts, now reliable
    reliable = Player(IMAGE_TOPIC, INFO_TOPIC, context=ros.context)
    ros.executor.add_node(reliable)
    ros._nodes.append(reliable)
    assert ros.spin_until(lambda: "publishes reliable: subscribing reliable" in node.text(), 60), node.text()[-2000:]
    wait_for_output(ros, node, recorder, reliable, small)
    assert ros.spin_until(lambda: _diagnostics(recorder)[-1].get("image_qos") == "reliable", 30), _diagnostics(recorder)[-1:]
