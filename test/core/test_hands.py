"""Hand states on hands posed with the stand-in SMPL-X: open, fist, pointing and pinch, both hands.

Finger rotations are explicit absolute poses (the model's hand mean subtracted, flat_hand_mean is
False). Flexion axes come from the model's own rest geometry (finger direction x palm normal) and
are checked to bend the fingers towards the palm before any pose relies on them.
"""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from h4w_core.model.joint_tables import JOINT_NAMES, SKELETON_JOINT_NAMES
from h4w_core.people.hands import STATES, HandStateConfig, hand_states

pytest.importorskip("smplx")

SIDES = {"left": "L", "right": "R"}
FINGERS = ("Thumb", "Index", "Middle", "Ring", "Pinky")  # HandState.curls order
POSE_ORDER = ("Index", "Middle", "Pinky", "Ring", "Thumb")  # SMPL-X hand_pose order, 3 joints each
LONG = ("Index", "Middle", "Ring", "Pinky")
FIST_DEG = np.array([80.0, 100.0, 70.0])  # knuckle, middle, end joint of a long finger in a fist
THUMB_FIST_DEG = np.array([30.0, 50.0, 70.0])
POINTING_FOLD = 0.8  # the three folded fingers of the pointing pose: 0.8 x the fist angles
# the person stands 2.5 m in front of the camera facing it, in the optical frame (x right, y down, z forward)
CAMERA_ORIENT = np.array([np.pi, 0.0, 0.0])
CAMERA_TRANSL = np.array([0.1, -0.2, 2.5])


def J(name: str) -> int:
    return JOINT_NAMES.index(name)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(np.dot(unit(a), unit(b)), -1.0, 1.0))))


class Poser:
    """Poses both hands of the stand-in body with absolute finger rotations (B, 15, 3) per hand."""

    def __init__(self, model):
        self.model = model
        self.mean = {s: getattr(model.layer, f"{side}_hand_mean").detach().double().reshape(15, 3).numpy()
                     for side, s in SIDES.items()}
        self.rest = self.joints(np.zeros((1, 15, 3)), np.zeros((1, 15, 3)), camera=False)[0][0]

    def joints(self, abs_left: np.ndarray, abs_right: np.ndarray, camera: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(B, 137, 3) joints and (B, 55, 3) skeleton joints; in the camera frame unless camera=False."""
        b = abs_left.shape[0]

        def t(x):
            return torch.as_tensor(np.asarray(x, dtype=np.float32).reshape(b, -1))

        orient = np.tile(CAMERA_ORIENT if camera else np.zeros(3), (b, 1))
        with torch.no_grad():
            out = self.model(t(orient), t(np.zeros((b, 63))), t(abs_left - self.mean["L"]), t(abs_right - self.mean["R"]),
                             t(np.zeros((b, 3))), t(np.zeros((b, 10))), t(np.zeros((b, 10))))
        shift = CAMERA_TRANSL if camera else np.zeros(3)
        return out.joints.numpy().astype(np.float64) + shift, out.skeleton_joints.numpy().astype(np.float64) + shift

    def palm_normal(self, s: str) -> np.ndarray:
        """Unit normal out of the palm from the rest joints: thumb side x finger direction, mirrored for the left."""
        r = self.rest
        fingers = unit(r[J(f"{s}_Middle_1")] - r[J(f"{s}_Wrist")])
        thumb_side = unit(r[J(f"{s}_Index_1")] - r[J(f"{s}_Pinky_1")])
        return unit(np.cross(thumb_side, fingers) if s == "R" else np.cross(fingers, thumb_side))

    def flexion_axis(self, s: str, finger: str) -> np.ndarray:
        """Finger direction (knuckle -> tip at rest) x palm normal: rotating about it turns the finger into the palm.

        At rest every joint frame is the identity, so this world axis is also the local axis of all
        three joints of the finger (and a rotation about it leaves it fixed down the chain).
        """
        r = self.rest
        d = unit(r[J(f"{s}_{finger}_4")] - r[J(f"{s}_{finger}_1")])
        return unit(np.cross(d, self.palm_normal(s)))

    def hand(self, s: str, bends_deg: dict[str, np.ndarray]) -> np.ndarray:
        """Absolute hand pose (15, 3): each named finger bent by its three angles about its flexion axis."""
        pose = np.zeros((15, 3))
        for finger, deg in bends_deg.items():
            k = POSE_ORDER.index(finger)
            pose[3 * k:3 * k + 3] = np.radians(deg)[:, None] * self.flexion_axis(s, finger)
        return pose


@pytest.fixture(scope="module")
def poser(standin_assets) -> Poser:
    from h4w_core.model.body_model import BodyModel

    return Poser(BodyModel(standin_assets.smplx_dir))


def _pinch_hands(poser: Poser) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Thumb and index tips brought together (others open) by a grid search on the posed model.

    Parameters per hand: index bend (fraction of the fist angles), thumb swing about the palm
    normal at its base joint (towards the index for one sign), thumb bend about its flexion axis.
    The hands are independent, so both are searched in the same batch; a finer grid follows.
    """

    def batch(s: str, params: np.ndarray) -> np.ndarray:
        n, a_t, a_i = poser.palm_normal(s), poser.flexion_axis(s, "Thumb"), poser.flexion_axis(s, "Index")
        ki, kt = POSE_ORDER.index("Index"), POSE_ORDER.index("Thumb")
        pose = np.zeros((len(params), 15, 3))
        pose[:, 3 * ki:3 * ki + 3] = params[:, 0, None, None] * np.radians(FIST_DEG)[None, :, None] * a_i
        pose[:, 3 * kt] = params[:, 1, None] * n + params[:, 2, None] * a_t
        pose[:, 3 * kt + 1:3 * kt + 3] = params[:, 2, None, None] * a_t
        return pose

    def aperture(params_l: np.ndarray, params_r: np.ndarray) -> dict[str, np.ndarray]:
        joints = poser.joints(batch("L", params_l), batch("R", params_r))[0]
        return {s: np.linalg.norm(joints[:, J(f"{s}_Thumb_4")] - joints[:, J(f"{s}_Index_4")], axis=-1) for s in "LR"}

    steps = np.array([0.1, 0.2, 0.2])
    coarse = np.array(list(itertools.product(np.arange(0.2, 0.81, steps[0]), np.arange(-1.0, 1.01, steps[1]),
                                             np.arange(0.0, 0.81, steps[2]))))
    ap = aperture(coarse, coarse)
    offsets = np.array(list(itertools.product(*[np.linspace(-h, h, 5) for h in steps / 2])))
    fine = {s: coarse[np.argmin(ap[s])] + offsets for s in "LR"}
    ap = aperture(fine["L"], fine["R"])
    best = {s: fine[s][np.argmin(ap[s])] for s in "LR"}
    return batch("L", best["L"][None])[0], batch("R", best["R"][None])[0], {s: float(ap[s].min()) for s in "LR"}


@pytest.fixture(scope="module")
def posed(poser: Poser) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pose name -> (joints (137, 3), skeleton joints (55, 3)) in the camera frame, both hands in that pose."""
    folded = {f: POINTING_FOLD * FIST_DEG for f in ("Middle", "Ring", "Pinky")}
    bends = {
        "open": {},  # absolute hand pose zero: every finger joint straight
        "fist": {"Thumb": THUMB_FIST_DEG, **{f: FIST_DEG for f in LONG}},
        "pointing": {"Thumb": THUMB_FIST_DEG, **folded},
        "half": {f: 0.45 * (THUMB_FIST_DEG if f == "Thumb" else FIST_DEG) for f in FINGERS},  # neither open nor closed
    }
    names = list(bends)
    left = np.stack([poser.hand("L", bends[n]) for n in names])
    right = np.stack([poser.hand("R", bends[n]) for n in names])
    pinch_l, pinch_r, _ = _pinch_hands(poser)
    joints, skeleton = poser.joints(np.concatenate([left, pinch_l[None]]), np.concatenate([right, pinch_r[None]]))
    return {n: (joints[i], skeleton[i]) for i, n in enumerate([*names, "pinch"])}


def test_standin_hands_have_hand_geometry(poser: Poser):
    """Before trusting the stand-in's hands: plausible finger and palm sizes, fingers ahead of the palm."""
    r = poser.rest
    for s in "LR":
        wrist = r[J(f"{s}_Wrist")]
        lengths = {f: np.linalg.norm(np.diff(r[[J(f"{s}_{f}_{k}") for k in range(1, 5)]], axis=0), axis=-1).sum() for f in FINGERS}
        for f in LONG:
            assert 0.06 < lengths[f] < 0.11, (s, f, lengths[f])  # adult knuckle-to-tip 6..11 cm
            knuckle = r[J(f"{s}_{f}_1")]
            assert 0.06 < np.linalg.norm(knuckle - wrist) < 0.11, (s, f)  # wrist to knuckle
            # each joint further from the wrist than the one before: the finger points away from the palm
            dist = np.linalg.norm(r[[J(f"{s}_{f}_{k}") for k in range(1, 5)]] - wrist, axis=-1)
            assert np.all(np.diff(dist) > 0.015), (s, f, dist)
        assert lengths["Middle"] == max(lengths[f] for f in LONG)
        assert lengths["Pinky"] == min(lengths[f] for f in LONG)
        assert 0.06 < lengths["Thumb"] < 0.12
        assert 0.05 < np.linalg.norm(r[J(f"{s}_Index_1")] - r[J(f"{s}_Pinky_1")]) < 0.10  # palm width at the knuckles


@pytest.mark.parametrize("s", ["L", "R"])
def test_flexion_axes_bend_fingers_towards_the_palm(poser: Poser, s: str):
    """The geometric axis moves each fingertip into the palm, at least as well as any local coordinate axis."""
    n = poser.palm_normal(s)
    for finger in FINGERS:
        k = POSE_ORDER.index(finger)
        axes = [poser.flexion_axis(s, finger), -poser.flexion_axis(s, finger)] + [g * e for e in np.eye(3) for g in (1.0, -1.0)]
        pose = np.zeros((len(axes), 15, 3))
        pose[:, 3 * k:3 * k + 3] = 0.3 * np.array(axes)[:, None, :]
        joints = poser.joints(pose, np.zeros_like(pose), camera=False)[0] if s == "L" else \
            poser.joints(np.zeros_like(pose), pose, camera=False)[0]
        towards_palm = (joints[:, J(f"{s}_{finger}_4")] - poser.rest[J(f"{s}_{finger}_4")]) @ n
        assert towards_palm[0] > 0.02, (finger, towards_palm)  # 2 cm into the palm for 3 x 0.3 rad
        assert towards_palm[1] < -0.02, (finger, towards_palm)  # the opposite bend goes out of the palm
        assert towards_palm[0] >= 0.99 * towards_palm[2:].max(), (finger, towards_palm)


def test_pinch_search_brings_the_tips_together(poser: Poser):
    _, _, aperture = _pinch_hands(poser)
    assert max(aperture.values()) < 0.015, aperture


EXPECTED = {"open": "open", "fist": "fist", "pointing": "pointing", "pinch": "pinch", "half": "other"}


@pytest.mark.parametrize("pose", list(EXPECTED))
def test_states_classified(posed, pose: str):
    left, right = hand_states(posed[pose][0])
    for side, hand in (("left", left), ("right", right)):
        assert hand.side == side
        assert hand.state == EXPECTED[pose], (pose, side, hand)
        assert hand.state in STATES
        # 'other' between the thresholds: at most half a margin from the nearest state (gap 0.2 = 1 margin)
        assert (0.5 if pose != "half" else 0.25) <= hand.confidence <= 1.0, (pose, side, hand.confidence)


@pytest.mark.parametrize("pose", list(EXPECTED))
def test_pointing_ray_and_aperture_match_the_joints(posed, pose: str):
    joints, skeleton = posed[pose]
    for hand in hand_states(joints):
        s = SIDES[hand.side]
        tip, knuckle = joints[J(f"{s}_Index_4")], joints[J(f"{s}_Index_1")]
        assert np.linalg.norm(hand.pointing_direction) == pytest.approx(1.0, abs=1e-9)
        assert angle_deg(hand.pointing_direction, tip - knuckle) < 5.0
        np.testing.assert_allclose(hand.pointing_origin, tip, atol=1e-3)
        assert abs(hand.aperture_m - np.linalg.norm(joints[J(f"{s}_Thumb_4")] - tip)) < 0.005
        if pose in ("open", "pointing"):  # a straight index: the skeleton's own index bones point the same way
            bone = skeleton[SKELETON_JOINT_NAMES.index(f"{s}_Index_3")] - skeleton[SKELETON_JOINT_NAMES.index(f"{s}_Index_1")]
            assert angle_deg(hand.pointing_direction, bone) < 5.0


def test_pointing_direction_follows_the_body_in_the_camera_frame(posed):
    """Facing the camera upright (y down), the stand-in's T-pose arms put the fingers sideways: x dominates."""
    left, right = hand_states(posed["pointing"][0])
    assert abs(left.pointing_direction[0]) > 0.95 and abs(right.pointing_direction[0]) > 0.95
    assert np.sign(left.pointing_direction[0]) == -np.sign(right.pointing_direction[0])


def test_curls_ordered(posed):
    c = {p: {h.side: dict(zip(FINGERS, h.curls)) for h in hand_states(posed[p][0])} for p in EXPECTED}
    config = HandStateConfig()
    for side in ("left", "right"):
        assert all(0.0 <= v <= 1.0 for p in c for v in c[p][side].values())
        assert min(c["fist"][side][f] for f in LONG) > c["pointing"][side]["Middle"] > c["open"][side]["Middle"]
        assert c["pointing"][side]["Index"] < config.straight_max < config.curled_min < c["pointing"][side]["Middle"]
        assert max(c["open"][side].values()) < config.straight_max
        assert c["open"][side]["Index"] < c["pinch"][side]["Index"] < c["fist"][side]["Index"]
        assert c["fist"][side]["Thumb"] > c["open"][side]["Thumb"]


def test_rigid_motion_changes_only_the_ray(posed):
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))  # a proper rotation
    for pose in EXPECTED:
        joints = posed[pose][0]
        moved = joints @ q.T + np.array([0.3, -1.0, 2.0])
        for a, b in zip(hand_states(joints), hand_states(moved)):
            assert (a.state, a.side) == (b.state, b.side)
            assert b.confidence == pytest.approx(a.confidence, abs=1e-6)
            np.testing.assert_allclose(b.curls, a.curls, atol=1e-6)
            assert b.aperture_m == pytest.approx(a.aperture_m, abs=1e-9)
            np.testing.assert_allclose(b.pointing_direction, q @ a.pointing_direction, atol=1e-9)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_hand_is_other_with_zeros(posed, bad: float):
    joints = posed["pointing"][0].copy()
    joints[J("L_Index_3")] = bad
    left, right = hand_states(joints)
    assert (left.state, left.confidence, left.aperture_m) == ("other", 0.0, 0.0)
    for a in (left.pointing_origin, left.pointing_direction, left.curls):
        assert np.all(a == 0.0)
    assert right.state == "pointing" and right.confidence > 0.5  # the other hand is untouched
    both = hand_states(np.full((len(JOINT_NAMES), 3), bad))
    assert all(h.state == "other" and h.confidence == 0.0 and np.all(np.isfinite(h.curls)) for h in both)


def test_degenerate_hand_is_other(posed):
    joints = posed["open"][0].copy()
    joints[J("R_Middle_2")] = joints[J("R_Middle_1")]  # zero-length phalanx: no direction
    assert hand_states(joints)[1].state == "other" and hand_states(joints)[1].confidence == 0.0
    assert hand_states(joints)[0].state == "open"


def test_result_is_immutable(posed):
    hand = hand_states(posed["open"][0])[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        hand.state = "fist"
    for a in (hand.pointing_origin, hand.pointing_direction, hand.curls):
        assert not a.flags.writeable
    assert hand.curls.shape == (5,) and hand.pointing_origin.shape == (3,) and hand.pointing_direction.shape == (3,)


def test_thresholds_are_config(posed):
    """The same pointing hand is 'other' once the folded-finger threshold is above its curls."""
    joints = posed["pointing"][0]
    assert hand_states(joints, HandStateConfig(curled_min=0.9))[0].state == "other"
    assert hand_states(joints, HandStateConfig(pinch_aperture_m=0.2))[0].state == "pinch"


def test_bad_input_and_config_rejected():
    with pytest.raises(ValueError, match="shape"):
        hand_states(np.zeros((55, 3)))
    with pytest.raises(ValueError):
        HandStateConfig(straight_max=0.6, curled_min=0.5)
    with pytest.raises(ValueError):
        HandStateConfig(pinch_aperture_m=0.0)
    with pytest.raises(ValueError):
        HandStateConfig(finger_full_curl_rad=float("nan"))
    assert STATES == ("open", "fist", "pointing", "pinch", "other")
