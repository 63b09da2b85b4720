"""h4w_node end to end: a real node process over real DDS (loopback), stand-in assets.

The node is started from its executable with the config file, parameter overrides and
remappings, exactly what launch/h4w.launch.py expands to.
"""
from __future__ import annotations

import importlib.util
import time

import numpy as np
import pytest

from ros_support import require_rclpy

require_rclpy()

from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from h4w_ros import rep155  # noqa: E402
from h4w_ros.hri import hri_available  # noqa: E402
from h4w_ros.msg import HandStateArray, PersonBox, PersonBoxArray, WholeBodyMeshArray  # noqa: E402
from h4w_ros.replay import camera_info_for  # noqa: E402
from node_harness import INFO_TOPIC, make_io, photo_rgb, start_node, wait_for_output  # noqa: E402,F401


def test_node_publishes_mesh_tf_markers_faces_and_diagnostics(ros, start_node):
    node = start_node(box_source="fixed_roi", fixed_roi="[20.0, 10.0, 360.0, 490.0]", publish_overlay="false")
    player, recorder = make_io(ros)
    hands, tracked = [], []
    listener = ros.node("hands_listener")
    listener.create_subscription(HandStateArray, "/human/hands", hands.append, 10)
    hri_msgs = pytest.importorskip("hri_msgs.msg", reason="hri_msgs is not installed") if hri_available() else None
    if hri_msgs is not None:
        listener.create_subscription(hri_msgs.IdsList, "/humans/bodies/tracked", tracked.append, 10)
    rgb = photo_rgb()
    header, out = wait_for_output(ros, node, recorder, player, rgb)

    assert isinstance(out, WholeBodyMeshArray)
    assert out.header.frame_id == header.frame_id == "camera_optical_frame"
    assert len(out.people) == 1
    person = out.people[0]
    vertices = np.asarray(person.vertices, dtype=np.float64).reshape(-1, 3)
    assert vertices.shape == (10475, 3) and np.all(np.isfinite(vertices))
    h, w = rgb.shape[:2]
    f = float(max(w, h))
    u = vertices[:, 0] / vertices[:, 2] * f + w / 2
    v = vertices[:, 1] / vertices[:, 2] * f + h / 2
    inside = np.mean((vertices[:, 2] > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h))
    assert inside > 0.9, f"only {inside:.0%} of the vertices project inside the image"
    assert len(person.joints) == 137 and len(person.hand_orientations) == 32
    q = np.array([[o.x, o.y, o.z, o.w] for o in person.hand_orientations])
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    assert person.track_id >= 0  # tracking is on by default and a track is born on its first frame
    assert np.all(np.isfinite(person.body_pose)) and len(person.left_hand_pose) == 45

    key = rep155.body_id(person.track_id, 0)  # REP 155 ids: h4w + zero-padded track id
    assert ros.spin_until(lambda: any(t.header.stamp == header.stamp for m in recorder.rec.tf for t in m.transforms), 10)
    frames = {t.child_frame_id: t for m in recorder.rec.tf for t in m.transforms if t.header.stamp == header.stamp}
    assert frames[f"body_{key}"].header.frame_id == "camera_optical_frame"
    assert frames[f"l_wrist_{key}"].header.frame_id == f"body_{key}"
    assert frames[f"r_wrist_{key}"].header.frame_id == f"body_{key}"
    assert frames[f"l_index_1_{key}"].header.frame_id == f"l_wrist_{key}"
    assert frames[f"r_thumb_3_{key}"].header.frame_id == f"r_thumb_2_{key}"
    assert frames[f"smplx_pelvis_{key}"].header.frame_id == "camera_optical_frame"  # the SMPL-X pelvis, SMPL-X axes
    for link, _ in rep155.REP_LINKS:  # REP 155's recommended links under body_<id>
        assert frames[f"{link}_{key}"].header.frame_id == f"body_{key}"
    assert len(frames) - len({f"face_{key}", f"gaze_{key}"} & set(frames)) == 1 + len(rep155.REP_LINKS) + 2 * 16 + 1

    # hand states: in the message and on their own topic, the same numbers
    assert person.left_hand.side == "left" and person.right_hand.side == "right"
    assert person.left_hand.state in ("open", "fist", "pointing", "pinch", "other") and len(person.right_hand.curls) == 5
    assert ros.spin_until(lambda: any(m.header.stamp == header.stamp for m in hands), 10)
    same = next(m for m in hands if m.header.stamp == header.stamp)
    assert [(h.side, h.state, h.track_id) for h in same.hands] == [
        ("left", person.left_hand.state, person.track_id), ("right", person.right_hand.state, person.track_id)]
    assert same.hands[0].aperture == pytest.approx(person.left_hand.aperture)
    if hri_msgs is not None:  # REP 155 topics: the body id of the tracked person
        assert ros.spin_until(lambda: any(key in m.ids for m in tracked), 10), [m.ids for m in tracked][-3:]

    assert ros.spin_until(lambda: recorder.rec.markers and recorder.rec.faces is not None, 10)
    markers = [m for arr in recorder.rec.markers for m in arr.markers if m.header.stamp == header.stamp]
    mesh = next(m for m in markers if m.ns == "h4w_mesh")
    bones = next(m for m in markers if m.ns == "h4w_skeleton")
    assert mesh.type == mesh.TRIANGLE_LIST and 0 < len(mesh.points) <= 3000 * 3 and len(mesh.points) % 3 == 0  # marker_mesh coarse
    assert bones.type == bones.LINE_LIST and len(bones.points) == 54 * 2
    faces = np.asarray(recorder.rec.faces.data).reshape(-1, 3)
    assert faces.shape == (20908, 3) and faces.max() < 10475

    assert ros.spin_until(lambda: any(s.values for d in recorder.rec.diagnostics for s in d.status), 10)
    status = recorder.rec.diagnostics[-1].status[0]
    values = {kv.key: kv.value for kv in status.values}
    for k in ("input_rate_hz", "output_rate_hz", "latency_ms_mean", "dropped_frames", "backend", "device"):
        assert k in values
    # where latency goes: an image's age on arrival (camera and transport), then the node's own time
    def after_output():
        """The newest status that has counted a processed frame (earlier ones may predate the first image)."""
        for array in reversed(recorder.rec.diagnostics):
            for st in array.status:
                found = {kv.key: kv.value for kv in st.values}
                if found.get("frames_processed", "0") != "0":
                    return found
        return None

    assert ros.spin_until(lambda: after_output() is not None, 10)
    timing = after_output()
    age, latency = float(timing["image_age_ms_p50"]), float(timing["latency_ms_p50"])
    assert 0.0 <= age <= latency and float(timing["processing_ms_mean"]) > 0.0
    assert values["backend"] == "torch" and values["device"] == "cpu" and values["standin_assets"] == "True"
    # executor: auto = rclpy's EventsExecutor where this rclpy has it (Kilted on), else the classic one
    events = importlib.util.find_spec("rclpy.experimental") is not None
    assert values["executor"] == ("EventsExecutor" if events else "SingleThreadedExecutor")
    # said once, in the words of a launch user (parameters, not h4w-infer flags)
    assert node.text().count("RUNNING ON STAND-IN ASSETS") == 1 and "Give checkpoint:= " in node.text()

    # a burst faster than inference: the newest frame is always processed, older ones are dropped
    # (and counted), so no backlog builds up
    burst = []
    for _ in range(8):
        burst.append(player.publish(rgb).stamp)
        ros.spin_for(0.03)
    assert ros.spin_until(lambda: any(m.header.stamp == burst[-1] for m in recorder.rec.meshes), 60)
    answered = sum(any(m.header.stamp == s for m in recorder.rec.meshes) for s in burst)
    assert answered < len(burst)

    def dropped():
        d = [kv.value for d in recorder.rec.diagnostics for s in d.status for kv in s.values if kv.key == "dropped_frames"]
        return int(d[-1]) if d else 0

    assert ros.spin_until(lambda: dropped() >= 1, 5)

    # four concurrent stages, each timed, and the slowest named
    stages = ("prepare", "network", "posing", "output")

    def timed() -> dict:
        last = recorder.rec.diagnostics[-1].status[0]
        return {kv.key: kv.value for kv in last.values}

    assert ros.spin_until(lambda: all(timed().get(f"stage_{s}_ms", "nan") != "nan" for s in stages), 10)
    values = timed()
    assert all(float(values[f"stage_{s}_ms"]) > 0 for s in stages)
    assert float(values["stage_posing_cpu_ms"]) > 0  # CPU time beside the wall time: waiting shows as the gap
    assert values["limiting_stage"] in stages


def _raw_image(header: Header, encoding: str, width: int, height: int, data: bytes, step: int) -> Image:
    return Image(header=header, height=height, width=width, encoding=encoding, is_bigendian=0, step=step, data=data)


@pytest.mark.parametrize("executor", ["auto", "single_threaded"])  # single_threaded: rclpy before Kilted
def test_bad_input_is_logged_and_the_node_keeps_running(ros, start_node, executor):
    node = start_node(box_source="detections", tracking="false", executor=executor)
    player, recorder = make_io(ros)
    det_pub = player.create_publisher(PersonBoxArray, "/detections", 10)  # the node's relative 'detections'
    rgb = photo_rgb()

    def publish_with_boxes(boxes):
        header = player.publish(rgb)
        det_pub.publish(PersonBoxArray(header=header, boxes=[PersonBox(x=float(b[0]), y=float(b[1]), width=float(b[2]), height=float(b[3]), score=1.0) for b in boxes]))
        return header

    # wait until the node answers at all (model loaded, discovery done)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not recorder.rec.meshes:
        assert node.alive(), node.text()
        publish_with_boxes([(20, 10, 360, 490)])
        ros.spin_until(lambda: bool(recorder.rec.meshes), 3.0)
    assert recorder.rec.meshes, node.text()[-3000:]

    def stamp():
        return Header(frame_id="camera_optical_frame", stamp=player.get_clock().now().to_msg())

    bad = [
        _raw_image(stamp(), "32FC1", 8, 8, bytes(256), 32),  # not a camera colour image
        _raw_image(stamp(), "rgb8", 0, 0, b"", 0),  # zero size
        _raw_image(stamp(), "rgb8", 64, 48, bytes(100), 192),  # data shorter than step * height
    ]
    for img in bad:  # each with matching camera_info and detections, so it reaches the worker
        player.image_pub.publish(img)
        player.info_pub.publish(camera_info_for(max(img.width, 1), max(img.height, 1), img.header))
        det_pub.publish(PersonBoxArray(header=img.header, boxes=[PersonBox(x=0.0, y=0.0, width=4.0, height=4.0, score=1.0)]))
        ros.spin_for(1.0)
    # images with no camera_info at all for longer than camera_info_timeout (2 s) ...
    for _ in range(8):
        player.image_pub.publish(_raw_image(stamp(), "rgb8", 4, 4, bytes(48), 12))
        ros.spin_for(0.5)  # further apart than sync_slop, so none pairs with the next frame
    # ... then absurd and empty boxes next to a good one
    before = len(recorder.rec.meshes)
    header = publish_with_boxes([(1e7, 1e7, 50, 50), (0, 0, 0, 0), (20, 10, 360, 490)])
    assert ros.spin_until(lambda: any(m.header.stamp == header.stamp for m in recorder.rec.meshes[before:]), 120), node.text()[-3000:]
    out = next(m for m in recorder.rec.meshes[before:] if m.header.stamp == header.stamp)
    assert len(out.people) == 1  # the two bad boxes were skipped, the good one estimated
    ros.spin_for(1.0)
    assert node.alive()
    log = node.text()
    assert "encoding '32FC1'" in log
    assert "empty image" in log and "data length mismatch" in log
    assert "person box(es) could not be cropped" in log
    assert f"but no camera_info on {INFO_TOPIC}" in log
    assert ros.spin_until(lambda: any(kv.key == "bad_input_frames" and kv.value == "3"
                                      for d in recorder.rec.diagnostics for s in d.status for kv in s.values), 5)


def test_multi_person_frames_tracked_placed_by_depth_and_withdrawn(ros, start_node):
    """Crowd frames with their people's boxes on 'detections' and a registered depth image."""
    from h4w_core.testing.sequence import make_crowd_sequence

    seq = make_crowd_sequence(num_frames=40)
    node = start_node(box_source="detections", use_depth="true", track_max_age="0", track_min_hits="1")
    player, recorder = make_io(ros)
    det_pub = player.create_publisher(PersonBoxArray, "/detections", 10)
    depth_pub = player.create_publisher(Image, "/depth", 10)
    h, w = seq.frames[0].shape[:2]
    depth = np.full((h, w), 2.0, np.float32)  # everyone's torso front at 2 m

    def publish(t):
        header = player.publish(seq.frames[t])
        boxes = [PersonBox(x=float(b[0]), y=float(b[1]), width=float(b[2]), height=float(b[3]), score=1.0) for b in seq.gt_boxes[t]]
        det_pub.publish(PersonBoxArray(header=header, boxes=boxes))
        from h4w_ros.image_conversion import numpy_to_image

        depth_pub.publish(numpy_to_image(depth, "32FC1", header))
        return header

    def output_for(header, timeout):
        def find():
            return next((m for m in recorder.rec.meshes if m.header.stamp == header.stamp), None)

        ros.spin_until(lambda: find() is not None, timeout)
        return find()

    # consecutive frames from all three in view up to the first frame after person 2 has left
    gone_at = next(t for t in range(len(seq.frames)) if 2 not in seq.gt_ids[t])
    deadline = time.monotonic() + 120
    sent = set()

    def first_answer():  # any of the start-up frames: a slow CPU frame may be answered late
        return next((m for m in recorder.rec.meshes if (m.header.stamp.sec, m.header.stamp.nanosec) in sent), None)

    while first_answer() is None and time.monotonic() < deadline:  # until the node is up
        assert node.alive(), node.text()
        stamp = publish(0).stamp
        sent.add((stamp.sec, stamp.nanosec))
        ros.spin_until(lambda: first_answer() is not None, 3.0)
    assert first_answer() is not None, node.text()[-3000:]
    ids_by_gt = {}
    for t in range(1, gone_at + 1):
        out = output_for(publish(t), 60.0)
        assert out is not None, node.text()[-3000:]
        assert len(out.people) == len(seq.gt_ids[t])  # every person of the frame, one message
        for person in out.people:
            # match the output to the ground-truth person by box
            gt = int(np.argmin([np.abs(np.array(person.bbox[:2]) - b[:2]).sum() for b in seq.gt_boxes[t]]))
            ids_by_gt.setdefault(int(seq.gt_ids[t][gt]), set()).add(person.track_id)
            assert 1.9 < person.root_pose.position.z < 2.5  # placed by the depth image, not the 2.5 m prior
        ros.spin_for(0.3)
    assert all(len(ids) == 1 for ids in ids_by_gt.values()), ids_by_gt  # stable ids
    assert len({next(iter(ids)) for ids in ids_by_gt.values()}) == 3  # distinct ids
    gone = str(next(iter(ids_by_gt[2])))
    assert ros.spin_until(lambda: any(m.action == m.DELETE and m.id == int(gone) for arr in recorder.rec.markers for m in arr.markers), 10)
    tf_children = {t.child_frame_id for m in recorder.rec.tf for t in m.transforms}
    assert {f"body_{rep155.body_id(next(iter(ids)))}" for ids in ids_by_gt.values()} <= tf_children


def test_backend_parameter_selects_onnxruntime(ros, start_node):
    node = start_node(box_source="fixed_roi", fixed_roi="[20.0, 10.0, 360.0, 490.0]", backend="onnxruntime", tracking="false")
    player, recorder = make_io(ros)
    _, out = wait_for_output(ros, node, recorder, player, photo_rgb(), timeout=240.0)
    vertices = np.asarray(out.people[0].vertices).reshape(-1, 3)
    assert vertices.shape == (10475, 3) and np.all(np.isfinite(vertices))
    assert ros.spin_until(lambda: any(kv.key == "backend" and kv.value == "onnxruntime"
                                      for d in recorder.rec.diagnostics for s in d.status for kv in s.values), 10)


def test_missing_detector_model_is_reported_and_the_node_keeps_running(ros, start_node, tmp_path):
    missing = tmp_path / "yolov8n.onnx"
    node = start_node(box_source="detector", detector="onnx", detector_model=str(missing))
    _, recorder = make_io(ros)
    assert ros.spin_until(lambda: any(s.level == s.ERROR for d in recorder.rec.diagnostics for s in d.status), 120), node.text()
    status = next(s for d in recorder.rec.diagnostics for s in d.status if s.level == s.ERROR)
    assert str(missing) in status.message
    assert node.alive() and "configure failed" in node.text()
