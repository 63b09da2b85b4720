"""Temporal smoothing per tracked person: One-Euro filters on translations and on rotations.

The One-Euro filter (Casiez, Roussel and Vogel, CHI 2012) is a first-order low-pass whose cutoff
rises with speed: ``cutoff = min_cutoff + beta * |speed|``. Slow motion (a person standing)
is smoothed hard, removing per-frame jitter of the network; fast motion gets a high cutoff, so
lag stays small. Both filters are driven by time stamps in seconds, so irregular frame rates and
dropped frames are handled: the smoothing factor of a step of ``dt`` seconds at cutoff ``fc`` is
``alpha = 1 / (1 + 1 / (2 pi fc dt))``.

Translations are filtered as vectors with one cutoff from the speed norm (the filter does not
depend on the axes and keeps the direction of motion). Rotations are filtered on SO(3), not per
axis-angle component: each new rotation is expressed as a tangent vector at the previous
estimate, ``delta = log(R_prev^T R_new)``, the angular speed is ``|delta| / dt`` and the estimate
moves ``R = R_prev exp(alpha delta)`` along the geodesic. Results are exact rotations, and the
axis-angle wrap at 180 degrees (where ``theta n`` jumps to ``-(2 pi - theta) n``) makes no jump.

Defaults, for people seen at 10-30 Hz (measured in test_smoothing.py on 30 Hz samples with
2 cm / 3 degrees of noise per axis): ``min_cutoff = 0.5 Hz`` holds a standing person still
(frame-to-frame shake drops about 10x, error to the truth about 3x); ``beta`` raises the cutoff
with speed so that ordinary motion is followed: walking at 1 m/s lifts the translation cutoff to
1.5 Hz (beta 1 Hz per m/s; about 7 cm behind), a 2 rad/s turn lifts the rotation cutoff to 1.5 Hz
(beta 0.5 Hz per rad/s; about 10 degrees behind), and a sudden 0.5 m or 45 degree step is 90 %
covered within 0.15 s. ``d_cutoff = 1 Hz`` is the paper's value for the speed estimate. At 10 Hz
the same settings smooth less per frame (the factor depends on dt), which is what fixed cutoffs
in hertz mean; lower ``min_cutoff`` for more smoothing, raise ``beta`` for less lag.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.spatial.transform import Rotation

from h4w_core.model.constants import CAMERA_3D_SIZE, POSE_FIELDS

if TYPE_CHECKING:  # pragma: no cover
    from h4w_core.inference.estimator import PersonEstimate


@dataclass(frozen=True)
class OneEuroConfig:
    """min_cutoff (Hz): cutoff at rest; beta (Hz per unit/s): cutoff gain with speed;
    d_cutoff (Hz): cutoff of the speed estimate itself."""

    min_cutoff: float = 0.5
    beta: float = 1.0
    d_cutoff: float = 1.0

    def __post_init__(self):
        if self.min_cutoff <= 0 or self.d_cutoff <= 0:
            raise ValueError(f"cutoffs must be positive, got min_cutoff={self.min_cutoff}, d_cutoff={self.d_cutoff}")
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")


TRANSLATION_DEFAULT = OneEuroConfig(min_cutoff=0.5, beta=1.0, d_cutoff=1.0)  # speed in m/s
ROTATION_DEFAULT = OneEuroConfig(min_cutoff=0.5, beta=0.5, d_cutoff=1.0)  # speed in rad/s
SHAPE_DEFAULT = OneEuroConfig(min_cutoff=0.5, beta=0.0, d_cutoff=1.0)  # betas, expression: unitless


@dataclass(frozen=True)
class SmootherConfig:
    """One filter setting for the person's translation, one for all its joint rotations."""

    translation: OneEuroConfig = field(default_factory=lambda: TRANSLATION_DEFAULT)
    rotation: OneEuroConfig = field(default_factory=lambda: ROTATION_DEFAULT)
    shape: OneEuroConfig = field(default_factory=lambda: SHAPE_DEFAULT)


def smoothing_factor(cutoff: np.ndarray | float, dt: float) -> np.ndarray:
    """Exponential smoothing factor of a first-order low-pass at ``cutoff`` Hz for a step of dt s."""
    return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64) * dt))


class _Clock:
    """Time-stamp bookkeeping shared by both filters.

    A repeated time stamp leaves the estimate unchanged (the same frame seen twice); a stamp
    earlier than the last one (a replayed bag looping, a clock reset) restarts the filter.
    """

    def __init__(self):
        self.last_t: float | None = None

    def step(self, t: float) -> float | None:
        """dt of this sample; None for a first (or restarted) sample; 0.0 for a repeated stamp."""
        t = float(t)
        if not math.isfinite(t):
            raise ValueError(f"time stamp must be finite seconds, got {t}")
        if self.last_t is None or t < self.last_t:
            self.last_t = t
            return None
        dt = t - self.last_t
        self.last_t = t
        return dt


class OneEuroVector:
    """One-Euro filter on a fixed-shape array (one cutoff from the speed norm over the last axis)."""

    def __init__(self, config: OneEuroConfig = TRANSLATION_DEFAULT):
        self.config = config
        self._clock = _Clock()
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    def __call__(self, t: float, x: np.ndarray) -> np.ndarray:
        """Filter sample x (..., D) taken at time t (seconds); returns the estimate (copy)."""
        x = np.asarray(x, dtype=np.float64)
        dt = self._clock.step(t)
        if dt is None or self._x is None or self._x.shape != x.shape:
            self._x, self._dx = x.copy(), np.zeros_like(x)
            return x.copy()
        if dt == 0.0:
            return self._x.copy()
        cfg = self.config
        raw_speed = (x - self._x) / dt
        self._dx = self._dx + smoothing_factor(cfg.d_cutoff, dt) * (raw_speed - self._dx)
        cutoff = cfg.min_cutoff + cfg.beta * np.linalg.norm(self._dx, axis=-1, keepdims=True)
        self._x = self._x + smoothing_factor(cutoff, dt) * (x - self._x)
        return self._x.copy()

    def reset(self) -> None:
        self.__init__(self.config)


class OneEuroRotation:
    """One-Euro filter on a stack of rotations, in the tangent space of the previous estimate."""

    def __init__(self, config: OneEuroConfig = ROTATION_DEFAULT):
        self.config = config
        self._clock = _Clock()
        self._r: Rotation | None = None
        self._w: np.ndarray | None = None  # (K, 3) filtered angular velocity, rad/s

    def __call__(self, t: float, rotations: Rotation) -> Rotation:
        """Filter a scipy Rotation of K rotations taken at time t (seconds); returns the estimate."""
        if rotations.single:
            raise ValueError("pass a stack of rotations (e.g. Rotation.from_matrix(m[None])), not a single one")
        dt = self._clock.step(t)
        if dt is None or self._r is None or len(self._r) != len(rotations):
            self._r, self._w = rotations, np.zeros((len(rotations), 3))
            return rotations
        if dt == 0.0:
            return self._r
        cfg = self.config
        delta = (self._r.inv() * rotations).as_rotvec()  # (K, 3), body-frame tangent at the estimate
        self._w = self._w + smoothing_factor(cfg.d_cutoff, dt) * (delta / dt - self._w)
        cutoff = cfg.min_cutoff + cfg.beta * np.linalg.norm(self._w, axis=1, keepdims=True)
        self._r = self._r * Rotation.from_rotvec(smoothing_factor(cutoff, dt) * delta)
        return self._r

    def reset(self) -> None:
        self.__init__(self.config)


class PoseSmoother:
    """Smooths one person: translation (3,) and K rotations as (K, 3, 3) matrices or (K, 3) axis-angle."""

    def __init__(self, config: SmootherConfig | None = None):
        self.config = config or SmootherConfig()
        self._translation = OneEuroVector(self.config.translation)
        self._rotation = OneEuroRotation(self.config.rotation)

    def __call__(self, t: float, translation: np.ndarray, rotations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Returns (translation (3,), rotations) in the input's rotation format."""
        rotations = np.asarray(rotations, dtype=np.float64)
        if rotations.ndim == 3 and rotations.shape[1:] == (3, 3):
            as_matrix = True
            rot = Rotation.from_matrix(rotations)
        elif rotations.ndim == 2 and rotations.shape[1] == 3:
            as_matrix = False
            rot = Rotation.from_rotvec(rotations)
        else:
            raise ValueError(f"rotations must be (K, 3, 3) matrices or (K, 3) axis-angle, got shape {rotations.shape}")
        trans = np.asarray(translation, dtype=np.float64)
        if trans.shape != (3,):
            raise ValueError(f"translation must be (3,), got shape {trans.shape}")
        trans_out = self._translation(t, trans)
        rot_out = self._rotation(t, rot)
        return trans_out, (rot_out.as_matrix() if as_matrix else rot_out.as_rotvec())

    def reset(self) -> None:
        self._translation.reset()
        self._rotation.reset()


class EstimateSmoother:
    """Smooths one person's network estimate before it is posed, so that everything derived from
    it (mesh, joints, joint orientations, TF frames) is one consistent body.

    * every SMPL-X rotation (global orientation, body, hands, jaw) on SO(3) (``rotation``);
    * the virtual-camera translation ``cam_trans``, metres (``translation``);
    * the placement box (centre and size), converted to metres in the person's plane with the
      network's own scale (the processed box spans CAMERA_3D_SIZE metres), so the translation
      filter's units apply (``translation``);
    * betas and expression as vectors (``shape``).
    """

    def __init__(self, config: SmootherConfig | None = None):
        self.config = config or SmootherConfig()
        self.reset()

    def __call__(self, t: float, estimate: PersonEstimate) -> PersonEstimate:
        params = estimate.params
        rotvecs = np.concatenate([np.asarray(getattr(params, n), np.float64).reshape(-1, 3) for n in POSE_FIELDS])
        smoothed = self._rotation(t, Rotation.from_rotvec(rotvecs)).as_rotvec()
        sizes = np.cumsum([0] + [getattr(params, n).size // 3 for n in POSE_FIELDS])
        poses = {n: smoothed[a:b].reshape(-1) for n, a, b in zip(POSE_FIELDS, sizes[:-1], sizes[1:])}
        shape = self._shape(t, np.concatenate([params.betas, params.expression]).astype(np.float64))
        n_betas = params.betas.size
        x, y, w, h = np.asarray(estimate.bbox_xywh, np.float64)
        metres_per_px = CAMERA_3D_SIZE / max(h, 1.0)
        cx, cy, w, h = self._box(t, np.array([x + w / 2, y + h / 2, w, h]) * metres_per_px) / metres_per_px
        new_params = replace(params, **poses, betas=shape[:n_betas], expression=shape[n_betas:],
                             cam_trans=self._translation(t, np.asarray(params.cam_trans, np.float64)))
        return replace(estimate, params=new_params, bbox_xywh=np.array([cx - w / 2, cy - h / 2, w, h]))

    def reset(self) -> None:
        self._rotation = OneEuroRotation(self.config.rotation)
        self._translation = OneEuroVector(self.config.translation)
        self._box = OneEuroVector(self.config.translation)
        self._shape = OneEuroVector(self.config.shape)


class TrackSmoothers:
    """One smoother per track id, created on first sight and dropped with the track.

    ``factory`` makes a track's smoother from the config (PoseSmoother by default; the people
    pipeline uses EstimateSmoother); calling ``smoothers(track_id, t, ...)`` passes the remaining
    arguments to that track's smoother.
    """

    def __init__(self, config: SmootherConfig | None = None, factory: Callable[[SmootherConfig], Any] | None = None):
        self.config = config or SmootherConfig()
        self._factory = factory or PoseSmoother
        self._smoothers: dict[int, Any] = {}

    def __call__(self, track_id: int, t: float, *args):
        """Smooth one person's sample at time t with that track's own history."""
        smoother = self._smoothers.get(track_id)
        if smoother is None:
            smoother = self._smoothers[track_id] = self._factory(self.config)
        return smoother(t, *args)

    def drop(self, track_ids) -> None:
        """Forget the state of these tracks (e.g. Tracker.lost_ids(), or a track whose input was not finite)."""
        for tid in track_ids:
            self._smoothers.pop(int(tid), None)

    def retain(self, track_ids) -> None:
        """Keep only these tracks' state."""
        keep = {int(t) for t in track_ids}
        for tid in [t for t in self._smoothers if t not in keep]:
            del self._smoothers[tid]

    def clear(self) -> None:
        """Forget every track's state (e.g. after the clock jumped)."""
        self._smoothers.clear()

    def __contains__(self, track_id: int) -> bool:
        return track_id in self._smoothers

    def __len__(self) -> int:
        return len(self._smoothers)
