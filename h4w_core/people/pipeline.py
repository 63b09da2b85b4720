"""One frame's people, in order: person boxes -> track ids -> network -> smoothing -> posing -> depth.

Three parts that the node runs as concurrent stages (each not thread-safe with itself):
``prepare`` (boxes, crops, track ids), ``estimate`` (network, smoothing) and ``place`` (posing,
depth, finiteness); ``process`` runs them in a row.

ROS-free: the node converts messages to arrays and calls ``PeoplePipeline.process``; a script or a
test can do the same with a numpy image. Smoothing acts on each track's SMPL-X parameters and
placement box before the body is posed (see ``EstimateSmoother``), so the mesh, the joints and the
joint orientations of a result always belong to the parameters it carries.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, replace

import cv2
import numpy as np

from h4w_core.inference.camera import Intrinsics
from h4w_core.inference.depth import DepthConfig, place_person_with_depth
from h4w_core.inference.estimator import WholeBodyEstimator
from h4w_core.inference.results import PersonResult, TrackInfo
from h4w_core.people.detection import make_detector
from h4w_core.people.smoothing import EstimateSmoother, OneEuroConfig, SmootherConfig, TrackSmoothers
from h4w_core.people.tracking import make_tracker

BOX_SOURCES = ("full_frame", "fixed_roi", "detections", "detector")


@dataclass(frozen=True)
class PeopleConfig:
    """Where person boxes come from, and how people are tracked and smoothed."""

    box_source: str = "detector"  # one of BOX_SOURCES
    fixed_roi: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)  # x, y, w, h pixels for 'fixed_roi'
    detector: str = "hog"  # a name registered in people.detection.DETECTORS
    detector_model: str = ""
    detector_providers: tuple[str, ...] = ()
    detector_score_threshold: float = 0.5
    max_persons: int = 4
    detector_every_n: int = 1  # run the detector on every n-th frame; the tracks' predictions in between
    detector_scale: float = 1.0  # detect on the image scaled by this (boxes mapped back)
    tracking: bool = True
    tracker: str = "iou"  # a name registered in people.tracking.TRACKERS
    track_iou_threshold: float = 0.3
    track_min_hits: int = 1
    track_max_age: int = 15
    smoothing: bool = True
    smoothing_min_cutoff: float = 0.5
    smoothing_translation_beta: float = 1.0
    smoothing_rotation_beta: float = 0.5

    def __post_init__(self):
        if self.box_source not in BOX_SOURCES:
            raise ValueError(f"box_source {self.box_source!r} is not one of {BOX_SOURCES}")
        if self.box_source == "fixed_roi":
            roi = np.asarray(self.fixed_roi, dtype=np.float64)
            if roi.shape != (4,) or not np.all(np.isfinite(roi)) or roi[2] <= 0 or roi[3] <= 0:
                raise ValueError(f"fixed_roi must be [x, y, width, height], finite, with positive size, got {list(self.fixed_roi)}")
        if self.max_persons < 1:
            raise ValueError(f"max_persons must be >= 1, got {self.max_persons}")
        if self.detector_every_n < 1:
            raise ValueError(f"detector_every_n must be >= 1, got {self.detector_every_n}")
        if not 0.05 <= self.detector_scale <= 1.0:
            raise ValueError(f"detector_scale must be in [0.05, 1], got {self.detector_scale}")

    def smoother_config(self) -> SmootherConfig:
        return SmootherConfig(
            translation=OneEuroConfig(min_cutoff=self.smoothing_min_cutoff, beta=self.smoothing_translation_beta),
            rotation=OneEuroConfig(min_cutoff=self.smoothing_min_cutoff, beta=self.smoothing_rotation_beta),
            shape=OneEuroConfig(min_cutoff=self.smoothing_min_cutoff, beta=0.0),
        )


@dataclass(frozen=True)
class PreparedFrame:
    """A frame's people before the network: their crops and identities, and what was dropped."""

    crops: tuple
    tracks: tuple[TrackInfo, ...]
    boxes: int = 0
    invalid_boxes: int = 0
    unconfirmed: int = 0
    detected: bool = True  # False when the boxes are the tracks' predictions (detector_every_n)


@dataclass(frozen=True)
class EstimatedFrame:
    """A frame's people after the network and smoothing, before posing."""

    prepared: PreparedFrame
    estimates: tuple  # PersonEstimate per finite person, smoothed
    non_finite: int = 0  # persons whose network outputs were not finite (dropped)


@dataclass(frozen=True)
class FrameResult:
    """The people of one frame and what was dropped on the way (for diagnostics)."""

    people: tuple[PersonResult, ...]
    boxes: int = 0  # person boxes found or given (after max_persons)
    invalid_boxes: int = 0  # boxes that could not be cropped (empty, outside, not finite)
    non_finite: int = 0  # persons dropped because the network or placement gave NaN/inf
    unconfirmed: int = 0  # boxes of tracks not confirmed yet (no id, not output)


class PeoplePipeline:
    """Boxes, tracking, smoothing and placement for a stream of frames (not thread-safe)."""

    def __init__(self, config: PeopleConfig, depth_config: DepthConfig | None = None):
        self.config = config
        self.depth_config = depth_config
        self.detector = None
        if config.box_source == "detector":
            options = {"score_threshold": config.detector_score_threshold, "max_persons": config.max_persons}
            if config.detector == "onnx":
                options["model_path"] = config.detector_model
                options["providers"] = tuple(config.detector_providers) or None
            self.detector = make_detector(config.detector, **options)
        self.tracker = None
        if config.tracking:
            self.tracker = make_tracker(config.tracker, iou_threshold=config.track_iou_threshold,
                                        min_hits=config.track_min_hits, max_age=config.track_max_age)
        self.smoothers = None
        if config.tracking and config.smoothing:
            self.smoothers = TrackSmoothers(config.smoother_config(), factory=EstimateSmoother)
        self._frames = 0
        self._late_drops: list[int] = []  # tracks whose posed result was not finite, for estimate() to reset
        self._late_drops_lock = threading.Lock()

    def boxes(self, image: np.ndarray, order: str, given: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(P, 4) x y w h boxes and (P,) scores, at most max_persons, best first.

        given: (boxes, scores) from an external detector, for box_source 'detections'.
        """
        height, width = image.shape[:2]
        source = self.config.box_source
        if source == "full_frame":
            boxes, scores = np.array([[0.0, 0.0, width, height]]), np.ones(1)
        elif source == "fixed_roi":
            boxes, scores = np.array([self.config.fixed_roi], dtype=np.float64), np.ones(1)
        elif source == "detections":
            boxes, scores = given if given is not None else (np.zeros((0, 4)), np.zeros(0))
            boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
            scores = np.asarray(scores, dtype=np.float64).reshape(-1)
            keep = scores >= self.config.detector_score_threshold
            boxes, scores = boxes[keep], scores[keep]
        else:
            boxes, scores = self._detect(image, order)
        order_idx = np.argsort(-scores, kind="stable")[: self.config.max_persons]
        return boxes[order_idx], scores[order_idx]

    def _detect(self, image: np.ndarray, order: str) -> tuple[np.ndarray, np.ndarray]:
        """The detector on every n-th frame (on the image scaled by detector_scale); in between the
        confirmed tracks' constant-velocity predictions stand in for it."""
        cfg = self.config
        self._frames += 1
        if cfg.detector_every_n > 1 and (self._frames - 1) % cfg.detector_every_n and self.tracker is not None:
            predicted = [t.predicted() for t in getattr(self.tracker, "tracks", []) if t.track_id >= 0]
            if predicted:
                cxcywh = np.array(predicted, dtype=np.float64)
                boxes = np.concatenate([cxcywh[:, :2] - cxcywh[:, 2:] / 2.0, cxcywh[:, 2:]], axis=1)
                return boxes, np.ones(len(boxes))
        scale = cfg.detector_scale
        small = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        found = self.detector.detect(small, channel_order=order)
        boxes = np.array([d.bbox_xywh for d in found], dtype=np.float64).reshape(-1, 4) / scale
        return boxes, np.array([d.score for d in found], dtype=np.float64)

    def prepare(self, estimator: WholeBodyEstimator, image: np.ndarray, order: str,
                given: tuple[np.ndarray, np.ndarray] | None = None) -> PreparedFrame:
        """Boxes, crops and track ids (everything before the network); not thread-safe with itself."""
        boxes, scores = self.boxes(image, order, given)
        finite = np.all(np.isfinite(boxes), axis=1) & np.isfinite(scores)
        crops, kept = estimator.crops(image, boxes[finite], order, skip_invalid=True)
        kept = [int(np.flatnonzero(finite)[k]) for k in kept]
        invalid = len(boxes) - len(kept)
        tracks = [TrackInfo(input_box=boxes[i], score=float(scores[i])) for i in kept]
        if self.tracker is not None:
            ids = self.tracker.update(boxes[kept].reshape(-1, 4), scores[kept])
            confirmed = [k for k, track_id in enumerate(ids) if track_id >= 0]
            tracks = [replace(tracks[k], track_id=int(ids[k])) for k in confirmed]
            crops = [crops[k] for k in confirmed]
        return PreparedFrame(tuple(crops), tuple(tracks), boxes=len(boxes), invalid_boxes=invalid,
                             unconfirmed=len(kept) - len(tracks))

    def estimate(self, estimator: WholeBodyEstimator, prepared: PreparedFrame, stamp_s: float) -> EstimatedFrame:
        """The network and smoothing of a prepared frame (may run beside ``place`` of an earlier one)."""
        self._apply_late_drops()
        estimates = estimator.estimate(prepared.crops, prepared.tracks)
        ok = [e.params.is_finite() and bool(np.all(np.isfinite(e.bbox_xywh))) for e in estimates]
        good = [e for e, fine in zip(estimates, ok) if fine]
        if self.smoothers is not None:
            self.smoothers.drop(e.track.track_id for e, fine in zip(estimates, ok) if not fine)
            good = [self.smoothers(e.track.track_id, stamp_s, e) for e in good]
            if self.tracker is not None:
                self.smoothers.retain(self.tracker.active_ids())
        return EstimatedFrame(prepared, tuple(good), non_finite=len(estimates) - len(good))

    def place(self, estimator: WholeBodyEstimator, estimated: EstimatedFrame, intrinsics: Intrinsics,
              depth: np.ndarray | None = None) -> FrameResult:
        """Posing and depth placement of an estimated frame; persons that come out non-finite are
        dropped and their filters reset (by the next ``estimate``, which owns the filters)."""
        checked = estimator.pose_checked(estimated.estimates, intrinsics)
        results = [r for r, _ in checked]
        if depth is not None:  # moves the posed arrays: checked again
            results = [place_person_with_depth(r, depth, intrinsics, self.depth_config) for r in results]
            checked = [(r, r.is_finite()) for r in results]
        people = tuple(r for r, finite in checked if finite)
        if len(people) < len(results) and self.smoothers is not None:
            with self._late_drops_lock:
                self._late_drops.extend(r.track_id for r, finite in checked if not finite)
        prepared = estimated.prepared
        return FrameResult(people, boxes=prepared.boxes, invalid_boxes=prepared.invalid_boxes,
                           non_finite=estimated.non_finite + len(results) - len(people), unconfirmed=prepared.unconfirmed)

    def finish(self, estimator: WholeBodyEstimator, prepared: PreparedFrame, intrinsics: Intrinsics, stamp_s: float,
               depth: np.ndarray | None = None) -> FrameResult:
        """The network, smoothing, posing and depth placement of a prepared frame."""
        result = self.place(estimator, self.estimate(estimator, prepared, stamp_s), intrinsics, depth)
        self._apply_late_drops()
        return result

    def _apply_late_drops(self) -> None:
        with self._late_drops_lock:
            drops, self._late_drops = self._late_drops, []
        if drops and self.smoothers is not None:
            self.smoothers.drop(drops)

    def process(
        self,
        estimator: WholeBodyEstimator,
        image: np.ndarray,
        order: str,
        intrinsics: Intrinsics,
        stamp_s: float,
        given: tuple[np.ndarray, np.ndarray] | None = None,
        depth: np.ndarray | None = None,
    ) -> FrameResult:
        """Everything for one frame; depth: registered depth image (metres or millimetres) or None."""
        return self.finish(estimator, self.prepare(estimator, image, order, given), intrinsics, stamp_s, depth)

    def reset(self) -> None:
        """Forget tracks and filter states (after a jump in time: a looping bag, a camera resync)."""
        self.reset_tracks()
        self.reset_filters()

    def reset_tracks(self) -> None:
        """The half of reset() that belongs with prepare()."""
        if self.tracker is not None:
            self.tracker.reset()

    def reset_filters(self) -> None:
        """The half of reset() that belongs with estimate() (the filters)."""
        if self.smoothers is not None:
            self.smoothers.clear()
