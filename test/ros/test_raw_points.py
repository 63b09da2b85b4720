"""h4w_ros.raw_points: marker bytes made from numpy points read back, by the middleware, as the
message it would have serialized itself; the fallback when the self-check fails."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from ros_support import require_rclpy

require_rclpy()

from builtin_interfaces.msg import Duration  # noqa: E402
from geometry_msgs.msg import Point  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from std_msgs.msg import ColorRGBA, Header  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from h4w_ros import messages  # noqa: E402
from h4w_ros.raw_points import RawPointsEncoder, _pattern  # noqa: E402


def _random_case(rng: np.random.Generator) -> tuple[MarkerArray, list]:
    """Markers with points from arrays, DELETEs and arrows (Point objects) between them, strings
    of every length mod 8, so every alignment of a points sequence occurs."""
    markers, slots = [], []
    for index in range(int(rng.integers(1, 6))):
        m = Marker(ns="n" * int(rng.integers(0, 9)), id=index, type=Marker.TRIANGLE_LIST,
                   lifetime=Duration(sec=int(rng.integers(0, 3)), nanosec=int(rng.integers(0, 10**9))))
        m.header.frame_id = "f" * int(rng.integers(0, 9))
        m.header.stamp.sec, m.header.stamp.nanosec = int(rng.integers(0, 2**31)), int(rng.integers(0, 10**9))
        m.pose.orientation.w = 1.0
        m.color = ColorRGBA(r=float(rng.random()), g=0.5, b=0.25, a=0.8)
        m.text = "t" * int(rng.integers(0, 9))
        markers.append(m)
        slots.append((m, "points", rng.normal(size=(int(rng.integers(1, 60)), 3))))
        if rng.random() < 0.5:
            markers.append(Marker(ns="gone" * int(rng.integers(0, 3)), id=7, action=Marker.DELETE))
        if rng.random() < 0.5:
            markers.append(Marker(ns="arrow", type=Marker.ARROW, points=[Point(x=1.0), Point(y=-2.0)]))
    return MarkerArray(markers=markers), slots


def _as_the_middleware_has_it(msg: MarkerArray, slots: list) -> MarkerArray:
    for owner, field, points in slots:
        setattr(owner, field, [Point(x=x, y=y, z=z) for x, y, z in np.asarray(points).tolist()])
    try:
        return deserialize_message(serialize_message(msg), MarkerArray)
    finally:
        for owner, field, _ in slots:
            setattr(owner, field, [])


def test_the_self_check_passes_with_this_middleware():
    assert RawPointsEncoder().fast


@pytest.mark.parametrize("seed", range(40))
def test_bytes_read_back_as_the_plain_message(seed):
    encoder = RawPointsEncoder()
    msg, slots = _random_case(np.random.default_rng(seed))
    payload = encoder.encode(msg, slots)
    assert isinstance(payload, bytes)
    assert all(len(owner.points) == 0 for owner, _, _ in slots)  # left as found
    assert deserialize_message(payload, MarkerArray) == _as_the_middleware_has_it(msg, slots)


def test_an_ambiguous_layout_is_sent_as_a_plain_message():
    """Unwritten alignment padding that reads as the length 1 (a stale value in the buffer) makes
    the length's place ambiguous: that message goes with Point objects, correct either way."""
    def stale_padding(msg) -> bytes:
        data = bytearray(serialize_message(msg))
        at = bytes(data).find(_pattern(0))
        if at >= 0:
            data[at - 8:at - 4] = struct.pack("<I", 1)  # the 4 bytes before the length read as 1 too
        return bytes(data)

    encoder = RawPointsEncoder()
    msg, slots = _random_case(np.random.default_rng(3))
    encoder._serialize = stale_padding
    out = encoder.encode(msg, slots)
    assert out is msg
    assert deserialize_message(serialize_message(out), MarkerArray) == _as_the_middleware_has_it(msg, slots)


def test_a_failed_self_check_falls_back_to_point_objects():
    def broken(msg) -> bytes:
        raise RuntimeError("no serializer here")

    encoder = RawPointsEncoder(serialize=broken)
    assert not encoder.fast
    msg, slots = _random_case(np.random.default_rng(11))
    out = encoder.encode(msg, slots)
    assert out is msg
    for owner, _, points in slots:
        np.testing.assert_array_equal([[p.x, p.y, p.z] for p in owner.points], points)


def test_person_marker_points_match_person_markers(standin_estimator):
    """The array form of a person's markers holds the same points as the Point-object form."""
    import cv2

    import h4w_core.data
    from h4w_core.inference.camera import Intrinsics

    photo = cv2.imread(str(h4w_core.data.SAMPLE_PHOTO))
    result = standin_estimator.predict(photo, [h4w_core.data.SAMPLE_PERSON_BOX], "bgr",
                                       intrinsics=Intrinsics.default_for(photo.shape[1], photo.shape[0]))[0]
    header = Header(frame_id="cam")
    faces, parents = standin_estimator.faces, standin_estimator.skeleton_parents
    for stride in (1, 3):
        objects = messages.person_markers(result, header, "7", faces, parents, 2, 0.5, stride)
        arrays = messages.person_marker_points(result, header, "7", faces, parents, 2, 0.5, stride)
        assert len(objects) == len(arrays) == 2
        for plain, (marker, points) in zip(objects, arrays):
            np.testing.assert_array_equal([[p.x, p.y, p.z] for p in plain.points], points)
            marker.points = plain.points
            assert marker == plain


def test_an_empty_point_list_is_sent_as_a_plain_message():
    msg, slots = _random_case(np.random.default_rng(5))
    owner = slots[0][0]
    slots[0] = (owner, "points", np.zeros((0, 3)))
    out = RawPointsEncoder().encode(msg, slots)
    assert out is msg and list(owner.points) == []
    assert deserialize_message(serialize_message(out), MarkerArray) == _as_the_middleware_has_it(msg, slots)
