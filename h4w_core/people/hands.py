"""Hand states a robot can act on, from one person's 137 3D joints: pointing ray, grip, curls, gesture.

Input: the 137-joint set (``model.joint_tables.JOINT_NAMES``) of one person, metres, in any
right-handed frame (the node's camera optical frame: x right, y down, z forward). Everything below
is invariant to rotating and translating the joints, so the frame only fixes the frame of the ray.

Per hand (see docs/HANDS.md for the measurements behind the defaults):

* pointing ray: origin at the index fingertip (``Index_4``), direction the unit vector from the
  index knuckle to the tip (``Index_1 -> Index_4``). The knuckle-to-tip chord is used rather than
  the last phalanx because it averages the three phalanges (less jitter) and is what a person
  aims along; the origin is the tip so that a ray cast from it starts outside the hand.
* grip aperture: ``|Thumb_4 - Index_4|`` in metres.
* curl per finger (thumb, index, middle, ring, pinky): the sum of the unsigned bend angles between
  consecutive segments ``wrist->_1, _1->_2, _2->_3, _3->_4`` (three bends: knuckle, middle and end
  joint), divided by a full-curl angle (``finger_full_curl_rad`` = 270 deg, ``thumb_full_curl_rad``
  = 180 deg) and clipped to [0, 1]. 0 = straight, 1 = fully closed.
* state: ``pinch``, ``fist``, ``pointing``, ``open`` (first one whose conditions hold, in that
  order) or ``other``, from curls and aperture against the thresholds of ``HandStateConfig``.
  Confidence is the smallest margin of the state's conditions to their thresholds, in units of
  ``curl_margin`` (curls) or ``aperture_margin_m`` (aperture), clipped to [0, 1]: 0 at a threshold,
  1 once every condition clears its threshold by a full margin. For ``other`` it is how far the
  nearest state is from holding, in the same units.

A hand with a non-finite joint (of its wrist and 20 finger joints), or with a segment shorter than
``min_segment_m``, is not measurable: state ``other``, confidence 0, and zeros for origin,
direction, aperture and curls (never NaN), so a consumer can test ``confidence > 0``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from h4w_core.model.joint_tables import JOINT_NAMES, joint_indices

STATES: tuple[str, ...] = ("open", "fist", "pointing", "pinch", "other")
SIDES: tuple[str, ...] = ("left", "right")
FINGERS: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")

_PREFIX = ("L", "R")  # joint-name prefix of SIDES
_FINGER_JOINTS = ("Thumb", "Index", "Middle", "Ring", "Pinky")  # joint-name stem of FINGERS
# (hand, finger, point) -> index in JOINT_NAMES; points: wrist, _1 (knuckle), _2, _3, _4 (tip)
_CHAINS = np.array([[joint_indices(f"{p}_Wrist", *(f"{p}_{f}_{k}" for k in range(1, 5))) for f in _FINGER_JOINTS]
                    for p in _PREFIX])
_THUMB, _INDEX = FINGERS.index("thumb"), FINGERS.index("index")
_LONG = np.array([FINGERS.index(f) for f in ("index", "middle", "ring", "pinky")])
_FOLDED = np.array([FINGERS.index(f) for f in ("middle", "ring", "pinky")])  # curled when pointing
_KNUCKLE, _TIP = 1, 4
# decision order: pinch first (a small aperture is the most specific cue), open last
_PRIORITY = ("pinch", "fist", "pointing", "open")


@dataclass(frozen=True)
class HandStateConfig:
    """Thresholds of the hand states. Curls are fractions of a full curl (0..1), lengths metres.

    straight_max: a long finger with curl <= this is extended (open hand, the pointing index).
    curled_min: a long finger with curl >= this is folded (fist, the three fingers when pointing).
    thumb_straight_max: the thumb's curl must be <= this for an open hand.
    pinch_aperture_m: thumb tip to index tip at most this for a pinch.
    pinch_index_max: a pinch needs the index curl <= this (beyond it the index is in a fist).
    curl_margin, aperture_margin_m: the margin past a threshold that gives confidence 1.
    finger_full_curl_rad, thumb_full_curl_rad: summed bend angles that count as curl 1.
    min_segment_m: shorter segments make the hand unmeasurable (directions undefined).
    """

    straight_max: float = 0.35
    curled_min: float = 0.55
    thumb_straight_max: float = 0.45
    pinch_aperture_m: float = 0.025
    pinch_index_max: float = 0.75
    curl_margin: float = 0.2
    aperture_margin_m: float = 0.01
    finger_full_curl_rad: float = 1.5 * np.pi
    thumb_full_curl_rad: float = np.pi
    min_segment_m: float = 1e-4

    def __post_init__(self):
        if not 0.0 <= self.straight_max < self.curled_min <= 1.0:
            raise ValueError(f"need 0 <= straight_max < curled_min <= 1, got {self.straight_max}, {self.curled_min}")
        if not 0.0 < self.thumb_straight_max <= 1.0 or not 0.0 < self.pinch_index_max <= 1.0:
            raise ValueError(f"thumb_straight_max and pinch_index_max must be in (0, 1], got "
                             f"{self.thumb_straight_max}, {self.pinch_index_max}")
        positive = {"pinch_aperture_m": self.pinch_aperture_m, "curl_margin": self.curl_margin,
                    "aperture_margin_m": self.aperture_margin_m, "finger_full_curl_rad": self.finger_full_curl_rad,
                    "thumb_full_curl_rad": self.thumb_full_curl_rad}
        bad = {k: v for k, v in positive.items() if not (np.isfinite(v) and v > 0)}
        if bad:
            raise ValueError(f"must be finite and positive: {bad}")
        if not (np.isfinite(self.min_segment_m) and self.min_segment_m >= 0):
            raise ValueError(f"min_segment_m must be finite and >= 0, got {self.min_segment_m}")


@dataclass(frozen=True)
class HandState:
    """One hand: gesture with confidence, pointing ray (origin m, unit direction), aperture m, curls."""

    side: Literal["left", "right"]
    state: str  # one of STATES
    confidence: float  # [0, 1]
    pointing_origin: np.ndarray  # (3,) index fingertip, metres
    pointing_direction: np.ndarray  # (3,) unit, index knuckle -> tip
    aperture_m: float  # thumb tip to index tip
    curls: np.ndarray  # (5,) thumb, index, middle, ring, pinky; 0 straight .. 1 closed


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return a


def finger_curls(chains: np.ndarray, config: HandStateConfig = HandStateConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Curls (..., 5) and validity (...,) of finger chains (..., 5, 5, 3): finger, wrist/_1/_2/_3/_4, xyz.

    Invalid (non-finite or degenerate) hands get curls 0.
    """
    valid = np.all(np.isfinite(chains), axis=(-3, -2, -1))
    seg = np.diff(np.where(valid[..., None, None, None], chains, 0.0), axis=-2)  # (..., 5, 4, 3); inf - inf avoided
    length = np.linalg.norm(seg, axis=-1)
    valid &= np.all(length > config.min_segment_m, axis=(-2, -1))
    unit = seg / np.where(length > 0, length, 1.0)[..., None]
    cos = np.sum(unit[..., :-1, :] * unit[..., 1:, :], axis=-1)  # (..., 5, 3) bends at _1, _2, _3
    bend = np.arccos(np.clip(cos, -1.0, 1.0)).sum(axis=-1)
    full = np.full(len(FINGERS), config.finger_full_curl_rad)
    full[_THUMB] = config.thumb_full_curl_rad
    curls = np.where(valid[..., None], np.clip(bend / full, 0.0, 1.0), 0.0)
    return curls, valid


def _state_scores(curls: np.ndarray, aperture: np.ndarray, c: HandStateConfig) -> np.ndarray:
    """Per hand the score of each state in _PRIORITY: the smallest normalised margin; >= 0 where it holds."""
    extended = (c.straight_max - curls) / c.curl_margin  # > 0: straighter than straight_max
    folded = (curls - c.curled_min) / c.curl_margin
    thumb_open = (c.thumb_straight_max - curls[..., _THUMB]) / c.curl_margin
    pinch = np.minimum((c.pinch_aperture_m - aperture) / c.aperture_margin_m,
                       (c.pinch_index_max - curls[..., _INDEX]) / c.curl_margin)
    fist = folded[..., _LONG].min(axis=-1)
    pointing = np.minimum(extended[..., _INDEX], folded[..., _FOLDED].min(axis=-1))
    open_ = np.minimum(extended[..., _LONG].min(axis=-1), thumb_open)
    scores = {"pinch": pinch, "fist": fist, "pointing": pointing, "open": open_}
    return np.stack([scores[s] for s in _PRIORITY], axis=-1)


def hand_states(joints137: np.ndarray, config: HandStateConfig = HandStateConfig()) -> tuple[HandState, HandState]:
    """(left, right) hand states of one person's joints (137, 3), metres."""
    joints = np.asarray(joints137, dtype=np.float64)
    if joints.shape != (len(JOINT_NAMES), 3):
        raise ValueError(f"joints137 must have shape ({len(JOINT_NAMES)}, 3), got {joints.shape}")
    chains = joints[_CHAINS]  # (2, 5, 5, 3)
    curls, valid = finger_curls(chains, config)
    safe = np.where(valid[:, None, None, None], chains, 0.0)
    tip, knuckle, thumb_tip = safe[:, _INDEX, _TIP], safe[:, _INDEX, _KNUCKLE], safe[:, _THUMB, _TIP]
    ray = tip - knuckle
    ray_len = np.linalg.norm(ray, axis=-1)
    valid &= ray_len > config.min_segment_m  # a folded index can bring its tip onto the knuckle
    direction = np.where(valid[:, None], ray / np.where(ray_len > 0, ray_len, 1.0)[:, None], 0.0)
    origin = np.where(valid[:, None], tip, 0.0)
    aperture = np.where(valid, np.linalg.norm(thumb_tip - tip, axis=-1), 0.0)
    curls = np.where(valid[:, None], curls, 0.0)

    scores = _state_scores(curls, aperture, config)  # (2, 4)
    holds = scores >= 0.0
    first = np.argmax(holds, axis=-1)
    any_holds = holds.any(axis=-1) & valid
    chosen = np.take_along_axis(scores, first[:, None], axis=-1)[:, 0]
    confidence = np.where(any_holds, chosen, -scores.max(axis=-1))
    confidence = np.where(valid, np.clip(confidence, 0.0, 1.0), 0.0)
    names = np.where(any_holds, np.array(_PRIORITY)[first], "other")
    return tuple(
        HandState(side=SIDES[h], state=str(names[h]), confidence=float(confidence[h]),
                  pointing_origin=_readonly(origin[h]), pointing_direction=_readonly(direction[h]),
                  aperture_m=float(aperture[h]), curls=_readonly(curls[h]))
        for h in range(len(SIDES))
    )
