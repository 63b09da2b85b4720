"""Person boxes from the detection messages the node accepts."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ros_support import require_rclpy

require_rclpy()

from h4w_ros.detections import detection_boxes  # noqa: E402
from h4w_ros.msg import PersonBox, PersonBoxArray  # noqa: E402


def test_person_box_array():
    msg = PersonBoxArray(boxes=[PersonBox(x=10.0, y=20.0, width=30.0, height=60.0, score=0.9),
                                PersonBox(x=1.0, y=2.0, width=3.0, height=4.0, score=0.2)])
    boxes, scores = detection_boxes(msg)
    np.testing.assert_allclose(boxes, [[10, 20, 30, 60], [1, 2, 3, 4]])
    np.testing.assert_allclose(scores, [0.9, 0.2], rtol=1e-6)
    empty_boxes, empty_scores = detection_boxes(None)
    assert empty_boxes.shape == (0, 4) and empty_scores.shape == (0,)


def _vision_detection(cx, cy, w, h, hypotheses):
    """The field layout of vision_msgs/Detection2D (not installable here from PyPI)."""
    results = [SimpleNamespace(hypothesis=SimpleNamespace(class_id=c, score=s)) for c, s in hypotheses]
    bbox = SimpleNamespace(center=SimpleNamespace(position=SimpleNamespace(x=cx, y=cy)), size_x=w, size_y=h)
    return SimpleNamespace(bbox=bbox, results=results)


def test_detection2d_array_keeps_people_only_with_centre_size_boxes():
    msg = SimpleNamespace(detections=[
        _vision_detection(50.0, 100.0, 20.0, 80.0, [("person", 0.8)]),
        _vision_detection(10.0, 10.0, 4.0, 4.0, [("car", 0.99)]),
        _vision_detection(200.0, 120.0, 40.0, 100.0, [("dog", 0.3), ("0", 0.6)]),
    ])
    boxes, scores = detection_boxes(msg)
    np.testing.assert_allclose(boxes, [[40, 60, 20, 80], [180, 70, 40, 100]])
    np.testing.assert_allclose(scores, [0.8, 0.6])
