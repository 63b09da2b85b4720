"""IoU tracker: ids over the real-photo crowd sequence with noisy, dropped detections; birth and death rules."""
from __future__ import annotations

import numpy as np
import pytest

from h4w_core.people.tracking import InvalidDetectionsError, Tracker, TrackerConfig, box_iou
from h4w_core.testing.sequence import make_crowd_sequence


@pytest.fixture(scope="module")
def crowd():
    return make_crowd_sequence()


def _noisy_detections(seq, rng, drop_rate=0.1, noise_px=2.0, min_visibility=0.3):
    """Ground-truth boxes as a detector would see them: jittered, sometimes missed, and missing
    while mostly hidden behind someone else. Yields (boxes, gt_ids) per frame."""
    for boxes, ids, vis in zip(seq.gt_boxes, seq.gt_ids, seq.visibility):
        keep = (vis >= min_visibility) & (rng.random(len(ids)) >= drop_rate)
        noisy = boxes[keep] + rng.normal(0.0, noise_px, size=(int(keep.sum()), 4))
        noisy[:, 2:] = np.maximum(noisy[:, 2:], 2.0)
        order = rng.permutation(len(noisy))  # detectors list people in no particular order
        yield noisy[order], ids[keep][order]


def _run(seq, config, seed):
    tracker, rng = Tracker(config), np.random.default_rng(seed)
    ids_of: dict[int, list[int]] = {}
    lost_per_frame = []
    for boxes, gt_ids in _noisy_detections(seq, rng):
        for gt, tid in zip(gt_ids, tracker.update(boxes, np.full(len(boxes), 0.9))):
            if tid >= 0:
                ids_of.setdefault(int(gt), []).append(tid)
        lost_per_frame.append(tracker.lost_ids())
    return ids_of, lost_per_frame, tracker


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_ids_survive_noise_drops_and_the_crossing_occlusion(crowd, seed):
    ids_of, lost, tracker = _run(crowd, TrackerConfig(), seed)
    # persons 0 and 1 stay in view; 1 walks in front of 0, hiding it for several frames
    assert len(set(ids_of[0])) == 1 and len(set(ids_of[1])) == 1, ids_of
    assert ids_of[0][0] != ids_of[1][0]
    # person 2 is out of view for longer than max_age: withdrawn once, back under a new id
    first, *rest = dict.fromkeys(ids_of[2])
    assert len(rest) == 1 and rest[0] not in (ids_of[0][0], ids_of[1][0], first)
    withdrawn = [tid for frame in lost for tid in frame]
    assert withdrawn == [first]
    assert sorted(tracker.active_ids()) == sorted({ids_of[0][0], ids_of[1][0], rest[0]})


def test_hidden_person_is_withdrawn_after_max_age_frames():
    tracker = Tracker(TrackerConfig(min_hits=1, max_age=3))
    box = np.array([[10.0, 10.0, 40.0, 80.0]])
    assert tracker.update(box) == [0]
    for _ in range(3):  # misses 1..3: still alive, coasting
        assert tracker.update(np.zeros((0, 4))) == [] and tracker.lost_ids() == []
        assert tracker.active_ids() == [0]
    tracker.update(np.zeros((0, 4)))
    assert tracker.lost_ids() == [0] and tracker.active_ids() == []
    tracker.update(np.zeros((0, 4)))
    assert tracker.lost_ids() == []  # reported once only
    assert tracker.update(box) == [1]  # the same place again: a new person, ids never reused


def test_birth_needs_min_hits_and_a_single_false_positive_gets_no_id():
    tracker = Tracker(TrackerConfig(min_hits=3, birth_max_misses=0))
    person = np.array([[100.0, 50.0, 40.0, 90.0]])
    ghost = np.array([[300.0, 50.0, 40.0, 90.0]])
    assert tracker.update(np.vstack([person, ghost])) == [-1, -1]
    assert tracker.update(person + 2) == [-1]
    assert tracker.update(person + 4) == [0]
    assert tracker.update(ghost) == [-1]  # the ghost's track died at its miss: a fresh start
    # one tolerated miss during birth (the default)
    tracker = Tracker(TrackerConfig(min_hits=2))
    tracker.update(person)
    tracker.update(np.zeros((0, 4)))
    assert tracker.update(person + 3) == [0]


def test_constant_velocity_keeps_a_fast_walker_through_a_gap():
    """A person moving 20 px per frame (box 40 px wide) is missed for two frames: without the
    velocity prediction the boxes would no longer overlap."""
    tracker = Tracker(TrackerConfig(min_hits=1, max_age=5))
    boxes = [np.array([[x, 100.0, 40.0, 100.0]]) for x in np.arange(0.0, 200.0, 20.0)]
    ids = []
    for i, box in enumerate(boxes):
        ids += tracker.update(np.zeros((0, 4)) if i in (5, 6) else box)
    assert set(ids) == {0}
    assert box_iou(boxes[4], boxes[7])[0, 0] == 0.0


def test_confirmed_tracks_win_their_boxes_over_tentative_ones():
    tracker = Tracker(TrackerConfig(min_hits=2))
    a = np.array([[0.0, 0.0, 50.0, 100.0]])
    tracker.update(a)
    assert tracker.update(a) == [0]
    # a spurious tentative track right next to the person
    tracker.update(np.vstack([a, a + [8.0, 0.0, 0.0, 0.0]]))
    assert tracker.update(a + [8.0, 0.0, 0.0, 0.0]) == [0]


def test_deterministic_and_input_checks(crowd):
    a = _run(crowd, TrackerConfig(), seed=7)[0]
    b = _run(crowd, TrackerConfig(), seed=7)[0]
    assert a == b
    tracker = Tracker()
    with pytest.raises(InvalidDetectionsError):
        tracker.update(np.zeros((2, 3)))
    with pytest.raises(InvalidDetectionsError):
        tracker.update(np.zeros((2, 4)), np.ones(3))
    with pytest.raises(InvalidDetectionsError):
        tracker.update(np.array([[np.nan, 0, 1, 1]]))
    with pytest.raises(ValueError):
        TrackerConfig(iou_threshold=0.0)
    assert tracker.update([]) == []
    # low scores neither start nor continue tracks
    t = Tracker(TrackerConfig(min_hits=1, min_score=0.5))
    assert t.update(np.array([[0, 0, 10, 20]]), np.array([0.3])) == [-1] and t.tracks == []


def test_box_iou():
    a = np.array([[0.0, 0.0, 10.0, 10.0]])
    b = np.array([[5.0, 0.0, 10.0, 10.0], [20.0, 20.0, 5.0, 5.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0.0, 0.0]])
