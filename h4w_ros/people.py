"""Person boxes for a frame (chosen source), then track ids and per-track smoothing."""
from __future__ import annotations

import numpy as np

from h4w_core.results import PersonResult
from h4w_ros.params import NodeConfig


class PeoplePipeline:
    """box source -> (boxes, scores); results -> tracked, smoothed results."""

    def __init__(self, config: NodeConfig, logger):
        self.config = config
        self.logger = logger
        self.detector = None
        if config.box_source == "detector":
            from h4w_core.detection import make_detector

            options = {"score_threshold": config.detector_score_threshold, "max_persons": config.max_persons}
            if config.detector == "onnx":
                options["model_path"] = config.detector_model
                providers = tuple(p.strip() for p in config.detector_providers.split(",") if p.strip())
                options["providers"] = providers or None
            self.detector = make_detector(config.detector, **options)
        self.tracker = None
        self.smoothers = None
        if config.tracking:
            from h4w_core.tracking import Tracker, TrackerConfig

            self.tracker = Tracker(TrackerConfig(iou_threshold=config.track_iou_threshold,
                                                 min_hits=config.track_min_hits, max_age=config.track_max_age))
            if config.smoothing:
                from h4w_core.smoothing import OneEuroConfig, SmootherConfig, TrackSmoothers

                self.smoothers = TrackSmoothers(SmootherConfig(
                    translation=OneEuroConfig(min_cutoff=config.smoothing_min_cutoff, beta=config.smoothing_translation_beta),
                    rotation=OneEuroConfig(min_cutoff=config.smoothing_min_cutoff, beta=config.smoothing_rotation_beta),
                ))

    def boxes(self, image: np.ndarray, order: str, detections) -> tuple[np.ndarray, np.ndarray]:
        """(P, 4) x y w h boxes and (P,) scores, at most max_persons, best first."""
        height, width = image.shape[:2]
        source = self.config.box_source
        if source == "full_frame":
            boxes, scores = np.array([[0.0, 0.0, width, height]]), np.ones(1)
        elif source == "fixed_roi":
            boxes, scores = np.array([self.config.fixed_roi], dtype=np.float64), np.ones(1)
        elif source == "detections":
            boxes, scores = detection_boxes(detections)
            keep = scores >= self.config.detector_score_threshold
            boxes, scores = boxes[keep], scores[keep]
        else:
            found = self.detector.detect(image, channel_order=order)
            boxes = np.array([d.bbox_xywh for d in found], dtype=np.float64).reshape(-1, 4)
            scores = np.array([d.score for d in found], dtype=np.float64)
        order_idx = np.argsort(-scores, kind="stable")[: self.config.max_persons]
        return boxes[order_idx], scores[order_idx]

    def track(self, results: list[PersonResult], stamp_s: float) -> list[PersonResult]:
        """Give each result its track id (unconfirmed tracks are left out) and smooth its placement."""
        if self.tracker is None:
            return results
        boxes = np.array([_input_or_processed_box(r) for r in results], dtype=np.float64).reshape(-1, 4)
        scores = np.array([r.score for r in results], dtype=np.float64)
        ids = self.tracker.update(boxes, scores)
        tracked = []
        for r, track_id in zip(results, ids):
            if track_id < 0:
                continue  # not yet born
            r.track_id = int(track_id)
            if self.smoothers is not None:
                smooth_result(r, self.smoothers, stamp_s)
            tracked.append(r)
        if self.smoothers is not None:
            self.smoothers.retain(self.tracker.active_ids())
        return tracked


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
            person = [h.hypothesis.score for h in det.results if h.hypothesis.class_id in ("person", "0")]
            if not person:
                continue
            c, w, h = det.bbox.center.position, det.bbox.size_x, det.bbox.size_y
            rows.append([c.x - w / 2, c.y - h / 2, w, h])
            scores.append(max(person))
    return np.array(rows, dtype=np.float64).reshape(-1, 4), np.array(scores, dtype=np.float64)


def _input_or_processed_box(result: PersonResult) -> np.ndarray:
    box = result.extras.get("input_box")
    return np.asarray(box if box is not None else result.bbox_xywh, dtype=np.float64)


def smooth_result(result: PersonResult, smoothers, stamp_s: float) -> None:
    """Filter pelvis translation and every skeleton orientation; move the mesh with the pelvis."""
    pelvis = result.skeleton_joints[0].astype(np.float64)
    smoothed_pelvis, rotations = smoothers(result.track_id, stamp_s, pelvis, result.skeleton_rotations)
    shift = (np.asarray(smoothed_pelvis) - pelvis).astype(np.float32)
    result.vertices = result.vertices + shift
    result.joints = result.joints + shift
    result.skeleton_joints = result.skeleton_joints + shift
    result.skeleton_rotations = np.asarray(rotations, dtype=np.float32)
