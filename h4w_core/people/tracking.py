"""Persistent person ids: the tracker protocol, its registry, and the default IoU tracker.

Any tracker with ``update`` / ``lost_ids`` / ``active_ids`` / ``reset`` (``PersonTracker``) can be
registered by name with ``register_tracker`` and selected by the node's ``tracker`` parameter;
a new tracker (ByteTrack, say) is one new module that calls ``register_tracker``.

The default, ``iou``: an IoU tracker with Hungarian assignment and constant-velocity boxes.

Why this design: the node sees a handful of people at 10-30 Hz and needs ids that survive a
missed detection or a short occlusion, with no appearance model to train or download. Each
track predicts its box with a constant velocity, detections are assigned to predictions by
maximum total IoU (scipy's linear_sum_assignment), and birth / death are counted in frames:

* birth: a new box starts a tentative track; it gets an id once it has been matched in
  ``min_hits`` frames (until then ``update`` reports -1 for it, so a one-frame false positive
  never gets an id, a TF frame or a marker). A tentative track that misses more than
  ``birth_max_misses`` consecutive frames is dropped (1 by default: detectors such as HOG miss
  a visible person now and then).
* death: a confirmed track that has not been matched for more than ``max_age`` frames is
  removed and its id reported once by ``lost_ids()``, so the node can withdraw its TF frames
  and markers. Ids are never reused.

Known limit: there is no re-identification. A person who leaves the view, or stays hidden for
longer than ``max_age`` frames, comes back under a new id; one who comes back within
``max_age`` frames keeps the id only if the re-appearing box overlaps the coasting prediction.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from scipy.optimize import linear_sum_assignment


class InvalidDetectionsError(ValueError):
    """Boxes or scores handed to the tracker have the wrong shape or non-finite values."""


class UnknownTrackerError(ValueError):
    """make_tracker was asked for a tracker name that is not registered."""


@runtime_checkable
class PersonTracker(Protocol):
    """What the people pipeline needs from a tracker (frame by frame, not thread-safe)."""

    def update(self, boxes_xywh: np.ndarray, scores: np.ndarray | None = None) -> list[int]:
        """One entry per box: its confirmed track id, or -1 (not confirmed, or rejected)."""
        ...

    def lost_ids(self) -> list[int]:
        """Ids ended by the last update."""
        ...

    def active_ids(self) -> list[int]:
        """Ids of confirmed tracks still alive."""
        ...

    def reset(self) -> None:
        """Forget all tracks (ids are not reused)."""
        ...


@dataclass(frozen=True)
class TrackerConfig:
    """Association and life-cycle parameters (counted in frames, not seconds).

    iou_threshold: a detection continues a track only if IoU(prediction, box) >= this.
    min_hits: matched frames before a track is confirmed and gets an id (1: at once).
    birth_max_misses: consecutive misses after which a tentative track is dropped.
    max_age: frames a confirmed track may go unmatched before it is removed (0: at the first miss).
    min_score: detections below this score neither start nor continue tracks.
    velocity_gain: weight of the newest frame-to-frame motion in the velocity estimate (0..1).
    """

    iou_threshold: float = 0.3
    min_hits: int = 2
    birth_max_misses: int = 1
    max_age: int = 15
    min_score: float = 0.0
    velocity_gain: float = 0.5

    def __post_init__(self):
        if not 0.0 < self.iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {self.iou_threshold}")
        if self.min_hits < 1:
            raise ValueError(f"min_hits must be >= 1, got {self.min_hits}")
        if self.birth_max_misses < 0:
            raise ValueError(f"birth_max_misses must be >= 0, got {self.birth_max_misses}")
        if self.max_age < 0:
            raise ValueError(f"max_age must be >= 0, got {self.max_age}")
        if not 0.0 <= self.velocity_gain <= 1.0:
            raise ValueError(f"velocity_gain must be in [0, 1], got {self.velocity_gain}")


@dataclass
class Track:
    """State of one track. Boxes are centre x, centre y, w, h in pixels."""

    track_id: int  # -1 while tentative
    state: np.ndarray  # (4,) last matched box (cx, cy, w, h)
    velocity: np.ndarray  # (4,) per-frame change of the state
    hits: int = 1
    misses: int = 0  # frames since the last match

    def predicted(self) -> np.ndarray:
        """The box expected this frame, (4,) cx, cy, w, h (sizes kept positive)."""
        box = self.state + self.velocity * (self.misses + 1)
        box[2:] = np.maximum(box[2:], 1.0)
        return box

    @property
    def box_xywh(self) -> np.ndarray:
        """Last matched box as x, y, w, h."""
        return _to_xywh(self.state[None])[0]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of x, y, w, h boxes: (N, 4) x (M, 4) -> (N, M); 0 where a box is empty."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _to_cxcywh(xywh: np.ndarray) -> np.ndarray:
    return np.concatenate([xywh[:, :2] + xywh[:, 2:] / 2.0, xywh[:, 2:]], axis=1)


def _to_xywh(cxcywh: np.ndarray) -> np.ndarray:
    return np.concatenate([cxcywh[:, :2] - cxcywh[:, 2:] / 2.0, cxcywh[:, 2:]], axis=1)


def _assign(tracks: list[Track], boxes: np.ndarray, iou_threshold: float) -> list[tuple[int, int]]:
    """Hungarian matching of tracks to boxes (x, y, w, h) on IoU; pairs below threshold dropped."""
    if not tracks or len(boxes) == 0:
        return []
    predicted = _to_xywh(np.stack([t.predicted() for t in tracks]))
    iou = box_iou(predicted, boxes)
    rows, cols = linear_sum_assignment(-iou)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if iou[r, c] >= iou_threshold]


class Tracker:
    """Frame-by-frame tracker; deterministic (same inputs, same ids). Not thread-safe."""

    def __init__(self, config: TrackerConfig | None = None):
        self.config = config or TrackerConfig()
        self._tracks: list[Track] = []
        self._next_id = 0
        self._lost: list[int] = []

    def update(self, boxes_xywh: np.ndarray, scores: np.ndarray | None = None) -> list[int]:
        """Advance one frame. boxes_xywh (N, 4) pixels, scores (N,) or None (all 1).

        Returns one entry per input box: its track id, or -1 when the box starts or continues a
        track that is not confirmed yet, or scores below ``min_score``. Call it every frame,
        with an empty array when nobody was detected, so that tracks age.
        """
        boxes, scores = self._check(boxes_xywh, scores)
        cfg = self.config
        result = [-1] * len(boxes)
        usable = np.flatnonzero(scores >= cfg.min_score)
        self._lost = []

        # confirmed tracks first, so a tentative track cannot take a confirmed one's box
        confirmed = [t for t in self._tracks if t.track_id >= 0]
        tentative = [t for t in self._tracks if t.track_id < 0]
        matched: set[int] = set()
        free = usable
        for group in (confirmed, tentative):
            pairs = _assign(group, boxes[free], cfg.iou_threshold)
            for ti, bi in pairs:
                det = int(free[bi])
                self._continue(group[ti], boxes[det])
                matched.add(id(group[ti]))
                result[det] = group[ti].track_id
            taken = {int(free[bi]) for _, bi in pairs}
            free = np.array([i for i in free if i not in taken], dtype=np.int64)

        survivors = []
        for track in self._tracks:
            if id(track) not in matched:
                track.misses += 1
                if track.track_id < 0 and track.misses > cfg.birth_max_misses:
                    continue
                if track.track_id >= 0 and track.misses > cfg.max_age:
                    self._lost.append(track.track_id)
                    continue
            survivors.append(track)
        for det in free:
            track = Track(-1, _to_cxcywh(boxes[det][None])[0], np.zeros(4))
            if cfg.min_hits <= 1:
                self._confirm(track)
            result[int(det)] = track.track_id
            survivors.append(track)
        self._tracks = survivors
        return result

    def lost_ids(self) -> list[int]:
        """Ids removed by the last ``update`` (their people are gone; withdraw their outputs)."""
        return list(self._lost)

    def active_ids(self) -> list[int]:
        """Ids of confirmed tracks still alive, including those coasting through a miss."""
        return [t.track_id for t in self._tracks if t.track_id >= 0]

    @property
    def tracks(self) -> list[Track]:
        """Current tracks (tentative ones have track_id -1); do not modify."""
        return list(self._tracks)

    def reset(self) -> None:
        """Forget all tracks; ids keep counting up so old ids are not reused."""
        self._lost = [t.track_id for t in self._tracks if t.track_id >= 0]
        self._tracks = []

    def _continue(self, track: Track, box_xywh: np.ndarray) -> None:
        new_state = _to_cxcywh(box_xywh[None])[0]
        step = (new_state - track.state) / (track.misses + 1)
        gain = self.config.velocity_gain if track.hits > 1 else 1.0  # second sighting: first motion
        track.velocity = gain * step + (1.0 - gain) * track.velocity
        track.state = new_state
        track.hits += 1
        track.misses = 0
        if track.track_id < 0 and track.hits >= self.config.min_hits:
            self._confirm(track)

    def _confirm(self, track: Track) -> None:
        track.track_id = self._next_id
        self._next_id += 1

    @staticmethod
    def _check(boxes_xywh, scores) -> tuple[np.ndarray, np.ndarray]:
        boxes = np.asarray(boxes_xywh, dtype=np.float64)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise InvalidDetectionsError(f"boxes must be (N, 4) x, y, w, h, got shape {boxes.shape}")
        if not np.all(np.isfinite(boxes)):
            raise InvalidDetectionsError("boxes contain NaN or inf; drop such detections before tracking")
        if scores is None:
            scores = np.ones(len(boxes))
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(scores) != len(boxes):
            raise InvalidDetectionsError(f"got {len(boxes)} boxes but {len(scores)} scores")
        return boxes, scores


# ---------------------------------------------------------------------------------------------
# registry: name -> (tracker class, its frozen config class)

TRACKERS: dict[str, tuple[Callable[..., PersonTracker], type]] = {"iou": (Tracker, TrackerConfig)}


def register_tracker(name: str, tracker_cls: Callable[..., PersonTracker], config_cls: type) -> None:
    """Make a tracker selectable by name; ``tracker_cls(config_cls(**options))`` must build it."""
    TRACKERS[name] = (tracker_cls, config_cls)


def make_tracker(name: str, **config) -> PersonTracker:
    """Build a registered tracker from its config fields, e.g. make_tracker('iou', max_age=30)."""
    try:
        cls, config_cls = TRACKERS[name]
    except KeyError:
        raise UnknownTrackerError(f"unknown tracker {name!r}; registered: {sorted(TRACKERS)}") from None
    return cls(config_cls(**config))
