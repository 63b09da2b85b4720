"""The ROS-free people pipeline: the tracker registry, non-finite outputs dropped and counted
without poisoning a track's filters, configuration errors."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch

from h4w_core.data import SAMPLE_PERSON_BOX, SAMPLE_PHOTO
from h4w_core.inference.camera import Intrinsics
from h4w_core.inference.estimator import WholeBodyEstimator
from h4w_core.inference.results import PLACED_FIELDS, TrackInfo, frozen_array, vouch_read_only
from h4w_core.people.pipeline import PeopleConfig, PeoplePipeline
from h4w_core.people.tracking import TRACKERS, Tracker, TrackerConfig, make_tracker, register_tracker


class PoisonOnce:
    """The real network, with one call's outputs replaced by NaN (a broken input's effect)."""

    def __init__(self, network):
        self.network = network
        self.poison_next = False

    def __call__(self, crops):
        out = self.network(crops)
        if self.poison_next:
            self.poison_next = False
            out = type(out)(*(torch.full_like(t, float("nan")) for t in out))
        return out


@pytest.fixture(scope="module")
def photo():
    return cv2.imread(str(SAMPLE_PHOTO), cv2.IMREAD_COLOR)


def test_non_finite_person_is_dropped_counted_and_its_filters_reset(standin_assets, photo):
    estimator = WholeBodyEstimator(standin_assets.checkpoint, standin_assets.smplx_dir)
    network = PoisonOnce(estimator.network)
    estimator.network = network
    pipeline = PeoplePipeline(PeopleConfig(box_source="fixed_roi", fixed_roi=SAMPLE_PERSON_BOX))
    k = Intrinsics.default_for(photo.shape[1], photo.shape[0])
    first = pipeline.process(estimator, photo, "bgr", k, stamp_s=0.0)
    assert len(first.people) == 1 and first.non_finite == 0
    track_id = first.people[0].track_id
    assert track_id in pipeline.smoothers

    network.poison_next = True
    poisoned = pipeline.process(estimator, photo, "bgr", k, stamp_s=0.1)
    assert poisoned.people == () and poisoned.non_finite == 1
    assert track_id not in pipeline.smoothers  # the track's filter was reset, not fed NaN

    after = pipeline.process(estimator, photo, "bgr", k, stamp_s=0.2)
    assert len(after.people) == 1 and after.people[0].is_finite() and after.people[0].track_id == track_id
    # restarted from the new sample: equal to an unfiltered estimate of the same frame
    alone = estimator.predict(photo, [SAMPLE_PERSON_BOX], "bgr", intrinsics=k)[0]
    np.testing.assert_allclose(after.people[0].vertices, alone.vertices, atol=1e-5)


def test_halves_run_as_stages_reset_a_filter_after_a_non_finite_posing(standin_assets, photo):
    """As the node runs them (network and posing stages): a person posed non-finite is dropped by
    place() and its filter restarts at the next estimate(), which owns the filters."""
    estimator = WholeBodyEstimator(standin_assets.checkpoint, standin_assets.smplx_dir)
    pipeline = PeoplePipeline(PeopleConfig(box_source="fixed_roi", fixed_roi=SAMPLE_PERSON_BOX))
    k = Intrinsics.default_for(photo.shape[1], photo.shape[0])

    def halves(stamp_s: float):
        prepared = pipeline.prepare(estimator, photo, "bgr")
        return prepared, pipeline.estimate(estimator, prepared, stamp_s)

    _, first = halves(0.0)
    assert len(pipeline.place(estimator, first, k).people) == 1
    shifted = photo.copy()
    shifted[:, :40] = 0  # a different frame, so a running filter would differ from the raw estimate
    _, second = halves(0.1)
    # a placement box of width 0 puts the body at infinite depth: the posing graph's own check says so
    broken = dataclasses.replace(second, estimates=tuple(dataclasses.replace(e, bbox_xywh=np.zeros(4))
                                                         for e in second.estimates))
    assert [finite for _, finite in estimator.pose_checked(broken.estimates, k)] == [False]
    dropped = pipeline.place(estimator, broken, k)
    assert dropped.people == () and dropped.non_finite == 1

    prepared = pipeline.prepare(estimator, shifted, "bgr")
    third = pipeline.estimate(estimator, prepared, 0.2)
    raw = estimator.estimate(prepared.crops, prepared.tracks)
    np.testing.assert_array_equal(third.estimates[0].params.body_pose, raw[0].params.body_pose)  # restarted
    np.testing.assert_array_equal(third.estimates[0].params.cam_trans, raw[0].params.cam_trans)
    result = pipeline.place(estimator, third, k)
    assert len(result.people) == 1 and result.people[0].is_finite()


def test_a_registered_tracker_is_selected_by_name(standin_assets, photo):
    built = []

    class CountingTracker(Tracker):
        def __init__(self, config):
            super().__init__(config)
            built.append(self)

    register_tracker("counting", CountingTracker, TrackerConfig)
    try:
        assert isinstance(make_tracker("counting", max_age=3), CountingTracker)
        pipeline = PeoplePipeline(PeopleConfig(box_source="full_frame", tracker="counting"))
        assert pipeline.tracker is built[-1] and pipeline.tracker.config.max_age == 15
    finally:
        TRACKERS.pop("counting")
    with pytest.raises(ValueError, match="unknown tracker"):
        make_tracker("bytetrack")


@pytest.mark.parametrize("roi", [(0.0, 0.0, float("nan"), 10.0), (0.0, 0.0, float("inf"), 10.0), (1.0, 2.0, 0.0, 5.0)])
def test_unusable_fixed_roi_is_a_configuration_error(roi):
    with pytest.raises(ValueError, match="fixed_roi"):
        PeopleConfig(box_source="fixed_roi", fixed_roi=roi)


def test_results_are_immutable(standin_estimator, photo):
    (person,) = standin_estimator.predict(photo, [SAMPLE_PERSON_BOX], "bgr")
    with pytest.raises(dataclasses.FrozenInstanceError):
        person.vertices = person.vertices * 2
    with pytest.raises(ValueError):
        person.vertices[0, 0] = 1.0  # read-only arrays
    moved = person.with_track(track_id=7)
    assert moved.track_id == 7 and person.track_id == -1


def test_pose_checked_shares_one_read_only_buffer_and_agrees_with_a_full_scan(standin_assets, photo):
    """A frame's posed arrays come from one packed graph output: every person's arrays are read-only
    views of it (not copies), and the graph's finite flag agrees with scanning every array."""
    estimator = WholeBodyEstimator(standin_assets.checkpoint, standin_assets.smplx_dir)
    x, y, w, h = SAMPLE_PERSON_BOX
    boxes = [SAMPLE_PERSON_BOX, [x + 20, y, w * 0.8, h]]
    crops, kept = estimator.crops(photo, boxes, "bgr")
    people = estimator.estimate(crops, [TrackInfo(input_box=np.asarray(boxes[i], float), track_id=i + 1) for i in kept])
    checked = estimator.pose_checked(people, Intrinsics.default_for(photo.shape[1], photo.shape[0]))
    assert [finite for _, finite in checked] == [True, True]
    first, second = (r for r, _ in checked)
    assert first.is_finite() and first.is_finite(posed_finite=True) and not first.is_finite(posed_finite=False)
    def buffer(array):
        while isinstance(array.base, np.ndarray):
            array = array.base
        return array

    assert buffer(first.vertices) is buffer(second.mesh_cam)  # one buffer, no copy per person
    for result in (first, second):
        for name in PLACED_FIELDS:
            value = getattr(result, name)
            assert value.dtype == np.float32 and not value.flags.writeable, name
            with pytest.raises(ValueError):
                value.flags.writeable = True  # its buffer is read-only too
    moved = first.with_track(depth_scale=1.5)
    assert moved.vertices is first.vertices  # a read-only array is shared by replace(), not copied


def test_frozen_array_shares_only_vouched_read_only_arrays():
    """Only views of an array whose creator vouched that nothing else writes it are shared; a
    read-only array anyone else made (whose flag its owner could turn back) is copied."""
    vouched = vouch_read_only(np.arange(6, dtype=np.float32))
    assert not vouched.flags.writeable
    assert frozen_array(vouched) is vouched and frozen_array(vouched[2:]).base is vouched
    owned = np.arange(6, dtype=np.float32)
    owned.flags.writeable = False  # read-only, but its owner can make it writable again
    view = np.arange(6, dtype=np.float32)[:]
    view.flags.writeable = False  # read-only, but its base can still change it
    for other in (owned, view, vouched.astype(np.float64), [1.0, 2.0]):
        copy = frozen_array(other)
        assert copy.dtype == np.float32 and not copy.flags.writeable and copy is not other
        assert not isinstance(other, np.ndarray) or not np.shares_memory(copy, other)
