"""One-Euro smoothing: measured jitter reduction, bounded lag, irregular time stamps, rotations on SO(3)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from h4w_core.people.smoothing import (
    ROTATION_DEFAULT,
    OneEuroConfig,
    OneEuroRotation,
    OneEuroVector,
    PoseSmoother,
    SmootherConfig,
    TrackSmoothers,
)

RATE = 30.0  # Hz


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.sum(np.asarray(x) ** 2, axis=-1))))


def _filter_vectors(times, samples, config=None):
    f = OneEuroVector(config) if config else OneEuroVector()
    return np.stack([f(t, x) for t, x in zip(times, samples)])


def test_translation_jitter_drops_while_standing_and_lag_stays_small_on_a_step():
    rng = np.random.default_rng(0)
    times = np.arange(0, 4.0, 1 / RATE)
    truth = np.tile([0.3, -0.1, 3.0], (len(times), 1))
    truth[times >= 2.0] += [0.5, 0.0, 0.0]  # the person is displaced by half a metre at t = 2 s
    noisy = truth + rng.normal(0.0, 0.02, truth.shape)  # 2 cm per axis, typical monocular jitter
    smooth = _filter_vectors(times, noisy)
    still = (times > 0.5) & (times < 2.0)
    raw_err, smooth_err = _rms((noisy - truth)[still]), _rms((smooth - truth)[still])
    assert raw_err / smooth_err > 2.5, f"jitter reduction only {raw_err / smooth_err:.2f}x"
    # frame-to-frame jitter (what a viewer sees as shaking) drops even more
    assert _rms(np.diff(noisy[still], axis=0)) / _rms(np.diff(smooth[still], axis=0)) > 8.0
    # lag: time to cover 90 % of the step, against a fixed 1 Hz low-pass (beta = 0)
    def settle(x):
        progress = (x[:, 0] - 0.3) / 0.5
        return times[np.argmax((times >= 2.0) & (progress >= 0.9))] - 2.0

    lowpass = _filter_vectors(times, noisy, OneEuroConfig(min_cutoff=0.5, beta=0.0))
    assert settle(smooth) <= 0.2 and settle(smooth) < 0.5 * settle(lowpass)


def test_walking_at_one_metre_per_second_lags_a_few_centimetres():
    rng = np.random.default_rng(1)
    times = np.arange(0, 3.0, 1 / RATE)
    truth = np.stack([1.0 * times, np.zeros_like(times), np.full_like(times, 3.0)], axis=1)
    smooth = _filter_vectors(times, truth + rng.normal(0.0, 0.02, truth.shape))
    steady = times > 1.0
    assert np.abs(smooth - truth)[steady].max() < 0.1
    assert _rms((smooth - truth)[steady]) < 0.08


def test_irregular_stamps_repeats_and_restarts():
    rng = np.random.default_rng(2)
    # 10-30 Hz with dropped frames
    times = np.cumsum(rng.uniform(1 / 30, 1 / 10, 120))
    truth = np.tile([0.0, 0.0, 2.0], (len(times), 1))
    noisy = truth + rng.normal(0.0, 0.02, truth.shape)
    smooth = _filter_vectors(times, noisy)
    assert _rms((noisy - truth)[10:]) / _rms((smooth - truth)[10:]) > 2.0
    f = OneEuroVector()
    first = f(5.0, np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(first, [1.0, 2.0, 3.0])  # first sample passes through
    moved = f(5.1, np.array([2.0, 2.0, 3.0]))
    np.testing.assert_array_equal(f(5.1, np.array([9.0, 9.0, 9.0])), moved)  # same stamp: unchanged
    np.testing.assert_array_equal(f(1.0, np.array([7.0, 7.0, 7.0])), [7.0, 7.0, 7.0])  # clock went back
    with pytest.raises(ValueError):
        f(float("nan"), np.zeros(3))


def _geodesic(a: Rotation, b: Rotation) -> np.ndarray:
    return (a.inv() * b).magnitude()


def test_rotation_jitter_drops_lag_is_bounded_and_results_stay_rotations():
    rng = np.random.default_rng(3)
    times = np.arange(0, 4.0, 1 / RATE)
    turn = np.where(times >= 2.0, np.pi / 4, 0.0)  # both joints turn 45 degrees at t = 2 s
    step = Rotation.from_rotvec(np.stack([np.zeros_like(turn), turn, np.zeros_like(turn)], 1))
    base = Rotation.from_rotvec([[0.3, -1.2, 0.5], [2.0, 0.1, -0.4]])  # K = 2 joints
    f, raw, smooth, frames = OneEuroRotation(), [], [], []
    for i, t in enumerate(times):
        truth = step[i] * base
        sample = truth * Rotation.from_rotvec(rng.normal(0.0, np.deg2rad(3.0), (2, 3)))
        out = f(t, sample)
        raw.append(_geodesic(truth, sample))
        smooth.append(_geodesic(truth, out))
        frames.append((sample, out))
    raw, smooth = np.array(raw), np.array(smooth)
    still = (times > 0.5) & (times < 2.0)
    reduction = np.sqrt(np.mean(raw[still] ** 2)) / np.sqrt(np.mean(smooth[still] ** 2))
    assert reduction > 2.5, f"rotation jitter reduction only {reduction:.2f}x"
    shake_raw = [_geodesic(a[0], b[0]) for a, b in zip(frames[:-1], frames[1:])]
    shake_smooth = [_geodesic(a[1], b[1]) for a, b in zip(frames[:-1], frames[1:])]
    idx = np.flatnonzero(still[1:])
    assert np.sqrt(np.mean(np.square(shake_raw)[idx])) / np.sqrt(np.mean(np.square(shake_smooth)[idx])) > 7.0
    covered = times[np.argmax((times >= 2.0) & np.all(smooth < 0.1 * np.pi / 4 + 0.05, axis=1))] - 2.0
    assert covered <= 0.2
    m = frames[-1][1].as_matrix()
    np.testing.assert_allclose(m @ m.transpose(0, 2, 1), np.broadcast_to(np.eye(3), m.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=1e-12)


def test_rotation_through_the_axis_angle_wrap_at_180_degrees():
    """Turning about z at 1 rad/s through pi: axis-angle jumps from (0,0,~pi) to (0,0,~-pi). On the
    manifold nothing happens; filtering the three components instead swings through identity."""
    times = np.arange(0, 2.0, 1 / RATE)
    angles = 2.2 + 1.0 * times  # crosses pi at t ~ 0.94 s
    truth = Rotation.from_rotvec(np.stack([np.zeros_like(angles), np.zeros_like(angles), angles], 1))
    rotvecs = truth.as_rotvec()  # scipy wraps the angle into [0, pi]
    assert rotvecs[0, 2] > 0 > rotvecs[-1, 2]
    smoother, naive, errors, naive_errors = PoseSmoother(), OneEuroVector(ROTATION_DEFAULT), [], []
    for t, rv, q in zip(times, rotvecs, truth):
        _, out = smoother(t, np.zeros(3), rv[None])
        assert out.shape == (1, 3)
        errors.append(_geodesic(q, Rotation.from_rotvec(out[0])))
        naive_errors.append(_geodesic(q, Rotation.from_rotvec(naive(t, rv))))
    # steady-state lag of the 1 rad/s turn is bounded; no spike at the wrap
    assert max(errors[10:]) < 0.2
    assert max(naive_errors) > 1.0  # the per-component filter this module avoids


def test_pose_smoother_formats_and_per_joint_cutoffs():
    rng = np.random.default_rng(4)
    smoother = PoseSmoother(SmootherConfig())
    base = Rotation.from_rotvec(rng.normal(size=(3, 3)))
    for t in np.arange(0, 1.0, 1 / RATE):
        # joint 0 swings fast (4 rad/s), joints 1-2 hold still
        spin = Rotation.from_rotvec([[4.0 * t, 0, 0], [0, 0, 0], [0, 0, 0]])
        trans, mats = smoother(t, np.array([0.0, 0.0, 3.0]), (base * spin).as_matrix())
    assert mats.shape == (3, 3, 3) and trans.shape == (3,)
    err = _geodesic(base * spin, Rotation.from_matrix(mats))
    assert err[0] < 0.4 and np.all(err[1:] < 1e-9)
    with pytest.raises(ValueError):
        smoother(2.0, np.zeros(3), np.zeros((3, 4)))
    with pytest.raises(ValueError):
        smoother(2.0, np.zeros(2), np.zeros((3, 3)))
    with pytest.raises(ValueError):
        OneEuroRotation()(0.0, Rotation.identity())  # a stack of K rotations is expected


def test_track_smoothers_keep_state_per_id_and_drop_lost_tracks():
    smoothers = TrackSmoothers()
    rot = np.eye(3)[None]
    smoothers(0, 0.0, np.array([0.0, 0.0, 2.0]), rot)
    smoothers(1, 0.0, np.array([5.0, 0.0, 2.0]), rot)
    a, _ = smoothers(0, 0.1, np.array([0.1, 0.0, 2.0]), rot)
    b, _ = smoothers(1, 0.1, np.array([5.1, 0.0, 2.0]), rot)
    assert 0.0 < a[0] < 0.1 and 5.0 < b[0] < 5.1  # each filtered against its own history
    assert len(smoothers) == 2
    smoothers.drop([0])
    assert 0 not in smoothers and 1 in smoothers
    fresh, _ = smoothers(0, 0.2, np.array([3.0, 0.0, 2.0]), rot)
    np.testing.assert_array_equal(fresh, [3.0, 0.0, 2.0])  # a new track starts unfiltered
    smoothers.retain([0])
    assert len(smoothers) == 1 and 1 not in smoothers
    with pytest.raises(ValueError):
        OneEuroConfig(min_cutoff=0.0)
