"""Person boxes from detection messages: the project's PersonBoxArray or vision_msgs' Detection2DArray."""
from __future__ import annotations

import numpy as np

from h4w_ros.msg import PersonBoxArray

PERSON_CLASS_IDS = ("person", "0")  # COCO: class 0 is person


def detections_type(name: str):
    """Message class for the detections topic: 'h4w' -> PersonBoxArray, 'vision_msgs' -> Detection2DArray."""
    if name == "vision_msgs":
        try:
            from vision_msgs.msg import Detection2DArray
        except ImportError as exc:
            raise ValueError("detections_format 'vision_msgs' needs the vision_msgs package (apt: ros-$ROS_DISTRO-vision-msgs)") from exc
        return Detection2DArray
    return PersonBoxArray


def detection_boxes(msg) -> tuple[np.ndarray, np.ndarray]:
    """(P, 4) x y w h and (P,) scores from a PersonBoxArray or a vision_msgs Detection2DArray.

    For Detection2DArray the box is centre + size; a detection counts as a person when one of its
    hypotheses has class id 'person' or '0' (COCO), and its score is that hypothesis' score.
    """
    rows, scores = [], []
    if msg is None:
        pass
    elif hasattr(msg, "boxes"):  # h4w_ros/PersonBoxArray
        for b in msg.boxes:
            rows.append([b.x, b.y, b.width, b.height])
            scores.append(b.score)
    else:  # vision_msgs/Detection2DArray
        for det in msg.detections:
            person = [h.hypothesis.score for h in det.results if h.hypothesis.class_id in PERSON_CLASS_IDS]
            if not person:
                continue
            c, w, h = det.bbox.center.position, det.bbox.size_x, det.bbox.size_y
            rows.append([c.x - w / 2, c.y - h / 2, w, h])
            scores.append(max(person))
    return np.array(rows, dtype=np.float64).reshape(-1, 4), np.array(scores, dtype=np.float64)
