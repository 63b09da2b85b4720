"""h4w_ros.hri: the REP 155 topics over real DDS, seen by a second node as a libhri application would.

A publisher node in this process runs HriPublisher on two consecutive frames of two tracked people
(stand-in estimator on the sample photo), a subscriber node receives /humans/bodies/tracked and a
person's roi and skeleton2d; a third frame without one person removes its per-id topics.
"""
from __future__ import annotations

import numpy as np
import pytest

from ros_support import require_rclpy

require_rclpy()

from h4w_ros import hri, rep155  # noqa: E402

pytestmark = pytest.mark.ros

if not hri.hri_available():
    pytest.skip(hri.HRI_SKIP_REASON, allow_module_level=True)

import cv2  # noqa: E402
from hri_msgs.msg import IdsList, IdsMatch, NormalizedRegionOfInterest2D, Skeleton2D  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from h4w_core.data import SAMPLE_PHOTO  # noqa: E402
from h4w_core.model.joint_tables import joint_indices  # noqa: E402

BOXES = [(20.0, 10.0, 250.0, 490.0), (240.0, 30.0, 250.0, 470.0)]
TRACKS = (4, 9)


@pytest.fixture(scope="module")
def frame(standin_estimator):
    rgb = np.ascontiguousarray(cv2.imread(str(SAMPLE_PHOTO), cv2.IMREAD_COLOR)[:, :, ::-1])
    results = standin_estimator.predict(rgb, BOXES, "rgb")
    assert len(results) == 2
    return rgb, [r.with_track(track_id=t) for r, t in zip(results, TRACKS)]


def header_at(sec: int) -> Header:
    h = Header(frame_id="camera_optical_frame")
    h.stamp.sec = sec
    return h


class Inbox:
    def __init__(self):
        self.messages: dict[str, list] = {}

    def callback(self, topic: str):
        return lambda msg: self.messages.setdefault(topic, []).append(msg)

    def get(self, topic: str) -> list:
        return self.messages.get(topic, [])


def test_skeleton2d_and_roi_messages(ros, frame):
    rgb, results = frame
    node = ros.node("hri_unit")
    pub = hri.HriPublisher(node)
    try:
        h, w = rgb.shape[:2]
        result = results[0]
        skel = pub.skeleton2d_message(header_at(1), result, w, h)
        assert len(skel.skeleton) == 18
        nose = result.joints_img[joint_indices("Nose")[0]]
        inside = 0 <= nose[0] <= w and 0 <= nose[1] <= h
        point = skel.skeleton[Skeleton2D.NOSE]
        if inside:
            assert point.c == 1.0 and abs(point.x - nose[0] / w) < 1e-6 and abs(point.y - nose[1] / h) < 1e-6
        for p in skel.skeleton:
            assert 0.0 <= p.x <= 1.0 and 0.0 <= p.y <= 1.0 and p.c in (0.0, 1.0)
        left_eye = result.joints_img[joint_indices("L_Eye")[0]]
        if 0 <= left_eye[0] <= w and 0 <= left_eye[1] <= h:
            assert abs(skel.skeleton[Skeleton2D.LEFT_EYE].x - left_eye[0] / w) < 1e-6
        roi = pub.roi_message(header_at(1), hri.input_box_xyxy(result), w, h, 0.5)
        x, y, bw, bh = BOXES[0]
        np.testing.assert_allclose([roi.xmin, roi.ymin, roi.xmax, roi.ymax],
                                   [x / w, y / h, min((x + bw) / w, 1.0), min((y + bh) / h, 1.0)], atol=1e-6)
        js = pub.joint_state_message(header_at(1), result, "h4w00004")
        assert js.name[0] == "waist_h4w00004" and len(js.name) == len(js.position) == 20
        assert np.all(np.isfinite(js.position))
    finally:
        pub.close()


def test_hri_topics_over_dds(ros, frame):
    rgb, results = frame
    h, w = rgb.shape[:2]
    ids = [rep155.body_id(t) for t in TRACKS]
    face_id_0 = rep155.face_id(TRACKS[0])
    publisher_node = ros.node("h4w_hri_pub")
    listener = ros.node("hri_app")
    pub = hri.HriPublisher(publisher_node)
    inbox = Inbox()
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    topics = {
        "/humans/bodies/tracked": IdsList,
        "/humans/faces/tracked": IdsList,
        "/humans/candidate_matches": IdsMatch,
        f"/humans/bodies/{ids[0]}/roi": NormalizedRegionOfInterest2D,
        f"/humans/bodies/{ids[0]}/skeleton2d": Skeleton2D,
        f"/humans/bodies/{ids[1]}/skeleton2d": Skeleton2D,
        f"/humans/bodies/{ids[0]}/cropped": Image,
        f"/humans/bodies/{ids[0]}/joint_states": JointState,
        f"/humans/faces/{face_id_0}/roi": NormalizedRegionOfInterest2D,
    }
    for topic, kind in topics.items():
        listener.create_subscription(kind, topic, inbox.callback(topic), qos)
    try:
        pub.publish(header_at(1), results, rgb, w, h)
        per_id = [f"/humans/bodies/{i}/{leaf}" for i in ids for leaf in ("roi", "skeleton2d", "cropped", "joint_states")]
        # discovery: wait until the subscriptions are matched, then send the two frames
        expected = sorted(rep155.face_id(t) for r, t in zip(results, TRACKS)
                          if rep155.face_visible(r) and hri.face_in_image(r, w, h))
        waited = [t for t in topics if face_id_0 in expected or not t.startswith(f"/humans/faces/{face_id_0}/")]
        assert ros.spin_until(lambda: all(publisher_node.count_subscribers(t) >= 1 for t in waited), 15)
        for sec in (2, 3):
            pub.publish(header_at(sec), results, rgb, w, h)
            ros.spin_for(0.2)
        assert ros.spin_until(lambda: any(m.header.stamp.sec == 3 for m in inbox.get(f"/humans/bodies/{ids[0]}/roi"))
                              and any(m.header.stamp.sec == 3 for m in inbox.get("/humans/bodies/tracked"))
                              and inbox.get(f"/humans/bodies/{ids[0]}/skeleton2d")
                              and inbox.get(f"/humans/bodies/{ids[1]}/skeleton2d")
                              and inbox.get(f"/humans/bodies/{ids[0]}/cropped")
                              and inbox.get(f"/humans/bodies/{ids[0]}/joint_states"), 15)
        tracked = [m for m in inbox.get("/humans/bodies/tracked") if m.header.stamp.sec == 3][-1]
        assert sorted(tracked.ids) == sorted(ids)
        roi = inbox.get(f"/humans/bodies/{ids[0]}/roi")[-1]
        assert 0.0 <= roi.xmin < roi.xmax <= 1.0 and 0.0 <= roi.ymin < roi.ymax <= 1.0
        assert abs(roi.xmin - BOXES[0][0] / w) < 1e-6
        skel = inbox.get(f"/humans/bodies/{ids[0]}/skeleton2d")[-1]
        assert len(skel.skeleton) == 18 and any(p.c == 1.0 for p in skel.skeleton)
        crop = inbox.get(f"/humans/bodies/{ids[0]}/cropped")[-1]
        assert crop.encoding == "rgb8" and crop.width == 250 and crop.height == 490
        np.testing.assert_array_equal(np.frombuffer(crop.data, np.uint8).reshape(490, 250, 3), rgb[10:500, 20:270])
        js = inbox.get(f"/humans/bodies/{ids[0]}/joint_states")[-1]
        assert js.name == rep155.urdf_joint_names(ids[0])
        # faces: those turned towards the camera with a box in the image, each matched to its body
        faces = [m for m in inbox.get("/humans/faces/tracked") if m.header.stamp.sec == 3]
        assert faces and sorted(faces[-1].ids) == expected == pub.tracked_faces
        if expected:
            assert ros.spin_until(lambda: len(inbox.get("/humans/candidate_matches")) >= len(expected), 5)
            match = inbox.get("/humans/candidate_matches")[-1]
            assert match.id1_type == IdsMatch.BODY and match.id2_type == IdsMatch.FACE and match.confidence == 1.0
            assert match.id1 in ids and match.id2 in expected
            assert listener.count_publishers(f"/humans/faces/{expected[0]}/roi") == 1
            assert listener.count_publishers(f"/humans/faces/{expected[0]}/cropped") == 1
        if face_id_0 in expected:
            assert ros.spin_until(lambda: inbox.get(f"/humans/faces/{face_id_0}/roi"), 5)
            face_roi = inbox.get(f"/humans/faces/{face_id_0}/roi")[-1]
            np.testing.assert_allclose([face_roi.xmin, face_roi.ymin, face_roi.xmax, face_roi.ymax],
                                       np.clip(np.asarray(results[0].face_bbox, float) / [w, h, w, h], 0, 1), atol=1e-6)

        # the second person's track ends: its per-id topics leave the graph, the first one's stay
        pub.publish(header_at(4), results[:1], rgb, w, h)
        gone = [t for t in per_id if f"/{ids[1]}/" in t]
        kept = [t for t in per_id if f"/{ids[0]}/" in t]
        assert ros.spin_until(lambda: all(listener.count_publishers(t) == 0 for t in gone), 10), \
            {t: listener.count_publishers(t) for t in gone}
        assert all(listener.count_publishers(t) == 1 for t in kept)
        assert ros.spin_until(lambda: any(m.header.stamp.sec == 4 for m in inbox.get("/humans/bodies/tracked")), 10)
        assert [m for m in inbox.get("/humans/bodies/tracked") if m.header.stamp.sec == 4][-1].ids == [ids[0]]
        assert pub.tracked_bodies == [ids[0]]

        # an untracked person is not published (REP ids must be stable)
        pub.publish(header_at(5), [results[0].with_track(track_id=-1)], rgb, w, h)
        assert pub.tracked_bodies == []
    finally:
        pub.close()
    assert ros.spin_until(lambda: all(listener.count_publishers(t) == 0 for t in (*per_id, "/humans/bodies/tracked")), 10)


def test_per_id_messages_are_built_only_for_subscribed_topics(ros, frame, monkeypatch):
    """Lazy publishing: a crop is cut and converted only while its topic has a subscriber."""
    rgb, results = frame
    h, w = rgb.shape[:2]
    built = []
    real_numpy_to_image = hri.numpy_to_image
    monkeypatch.setattr(hri, "numpy_to_image", lambda *a, **k: built.append(1) or real_numpy_to_image(*a, **k))
    publisher_node = ros.node("h4w_hri_lazy")
    listener = ros.node("hri_lazy_app")
    pub = hri.HriPublisher(publisher_node)
    topic = f"/humans/bodies/{rep155.body_id(TRACKS[0])}/cropped"
    inbox = Inbox()
    try:
        pub.publish(header_at(1), results, rgb, w, h)
        assert built == [] and listener.count_publishers(topic) == 1  # the topic exists, nobody listens
        listener.create_subscription(Image, topic, inbox.callback(topic), QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        stamps = iter(range(2, 1_000_000))
        # a frame per try until the publisher has matched the subscription: then exactly one crop is cut
        assert ros.spin_until(lambda: pub.publish(header_at(next(stamps)), results, rgb, w, h) or built, 15)
        assert len(built) == 1  # that one crop, none for the other ids' or the faces' topics
        assert ros.spin_until(lambda: inbox.get(topic), 15)
    finally:
        pub.close()
