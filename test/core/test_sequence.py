"""The real-photo crowd sequence: deterministic, and it contains what the tracking tests rely on."""
from __future__ import annotations

import numpy as np
import pytest

from h4w_core.people.tracking import box_iou
from h4w_core.testing.sequence import load_person_sprite, make_crowd_sequence


@pytest.fixture(scope="module")
def crowd():
    return make_crowd_sequence()


def test_shapes_and_determinism(crowd):
    assert len(crowd.frames) == 40 and crowd.num_people == 3
    assert all(f.shape == (240, 480, 3) and f.dtype == np.uint8 for f in crowd.frames)
    again = make_crowd_sequence()
    assert all(np.array_equal(a, b) for a, b in zip(crowd.frames, again.frames))
    assert all(np.array_equal(a, b) for a, b in zip(crowd.gt_boxes, again.gt_boxes))
    for boxes, ids, vis in zip(crowd.gt_boxes, crowd.gt_ids, crowd.visibility):
        assert boxes.shape == (len(ids), 4) and vis.shape == (len(ids),)
        assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 0] + boxes[:, 2] <= 480)
        assert np.all(boxes[:, 1] + boxes[:, 3] <= 240) and np.all(boxes[:, 2:] > 0)
        assert len(set(ids.tolist())) == len(ids)
    small = make_crowd_sequence(num_frames=5, size=(120, 200))
    assert len(small.frames) == 5 and small.frames[0].shape == (120, 200, 3)


def test_pixels_come_from_the_photo(crowd):
    sprite = load_person_sprite()
    assert sprite.shape == (502, 360, 3)
    # the first frame shows person 0 unoccluded: its pixels are the photo's, resized
    x, y, w, h = crowd.gt_boxes[0][list(crowd.gt_ids[0]).index(0)].astype(int)
    patch = crowd.frames[0][y : y + h, x : x + w].astype(np.float64)
    ref = sprite[:: max(1, 502 // h), :: max(1, 360 // w)][:h, :w].astype(np.float64)
    assert abs(patch.mean() - ref.mean()) < 12.0 and patch.std() > 30.0
    # person 1 is the mirrored copy: its left-right colour profile is reversed
    x1, y1, w1, h1 = crowd.gt_boxes[0][list(crowd.gt_ids[0]).index(1)].astype(int)
    cols0 = crowd.frames[0][y : y + h, x : x + w].mean(axis=(0, 2))
    cols1 = crowd.frames[0][y1 : y1 + h1, x1 : x1 + w1].mean(axis=(0, 2))
    grid = np.linspace(0, 1, 32)
    prof0 = np.interp(grid, np.linspace(0, 1, len(cols0)), cols0)
    prof1 = np.interp(grid, np.linspace(0, 1, len(cols1)), cols1)
    assert np.corrcoef(prof0, prof1[::-1])[0, 1] > np.corrcoef(prof0, prof1)[0, 1] + 0.3
    with pytest.raises(FileNotFoundError):
        load_person_sprite("/nonexistent/photo.jpg")


def test_occlusion_exit_and_return(crowd):
    vis0 = [v[list(i).index(0)] for v, i in zip(crowd.visibility, crowd.gt_ids)]
    # person 1 walks in front of person 0: almost fully hidden for a moment, then visible again
    assert min(vis0) < 0.1 and vis0[0] == 1.0 and vis0[-1] == 1.0
    hidden = [t for t, v in enumerate(vis0) if v < 0.3]
    assert 2 <= len(hidden) <= 6 and hidden == list(range(hidden[0], hidden[-1] + 1))
    # person 2 leaves through the right edge, is gone for a while, comes back
    present = [2 in ids for ids in crowd.gt_ids]
    gone = [t for t, p in enumerate(present) if not p]
    assert present[0] and present[-1] and gone == list(range(gone[0], gone[-1] + 1))
    assert len(gone) > 15  # longer than the tracker's default max_age
    # 0 and 1 are present in every frame and their boxes overlap while crossing
    assert all(0 in ids and 1 in ids for ids in crowd.gt_ids)
    overlap = [box_iou(b[list(i).index(0)], b[list(i).index(1)])[0, 0] for b, i in zip(crowd.gt_boxes, crowd.gt_ids)]
    assert max(overlap) > 0.5
    # people move: the centres shift by several pixels per frame
    c0 = [b[list(i).index(0), 0] + b[list(i).index(0), 2] / 2 for b, i in zip(crowd.gt_boxes, crowd.gt_ids)]
    assert 5.0 < np.mean(np.diff(c0)) < 10.0


def test_bad_arguments():
    with pytest.raises(ValueError):
        make_crowd_sequence(num_frames=1)
    with pytest.raises(ValueError):
        make_crowd_sequence(size=(20, 400))
