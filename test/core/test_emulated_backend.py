"""The emulated backend: recorded outputs after a GIL-releasing sleep (for measuring the node)."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from h4w_core.backends import BACKENDS, make_runner
from h4w_core.backends.emulated import NETWORK_MS_ENV, RECORDING_ENV, EmulatedRunner
from h4w_core.model.network import NetworkOutput

CROP = (3, 512, 384)
PER_PERSON = {"global_orient": (3,), "body_pose": (63,), "left_hand_pose": (45,), "right_hand_pose": (45,),
              "jaw_pose": (3,), "betas": (10,), "expression": (10,), "cam_trans": (3,), "lhand_bbox": (4,),
              "rhand_bbox": (4,), "face_bbox": (4,), "joint_img": (65, 3)}


@pytest.fixture(scope="module")
def runner(standin_assets, tmp_path_factory):
    cache = tmp_path_factory.mktemp("emulated_cache")
    return make_runner("emulated", standin_assets.checkpoint, network_ms=20.0, cache_dir=cache)


def test_registered_under_its_name():
    assert "emulated" in BACKENDS


@pytest.mark.parametrize("batch", [1, 3])
def test_outputs_are_the_recording_repeated(runner, batch):
    out = runner(torch.full((batch, *CROP), 0.5))
    assert isinstance(out, NetworkOutput)
    with np.load(runner.recording_path) as rec:
        for name, shape in PER_PERSON.items():
            t = getattr(out, name)
            assert t.dtype == torch.float32 and t.device.type == "cpu"
            assert tuple(t.shape) == (batch, *shape), name
            recorded = np.asarray(rec[name], dtype=np.float32)
            assert recorded.shape == (1, *shape)
            np.testing.assert_array_equal(t.numpy(), np.repeat(recorded, batch, axis=0))
            assert np.all(np.isfinite(recorded)), name


def test_outputs_do_not_depend_on_the_image_and_are_fresh(runner):
    a = runner(torch.zeros((1, *CROP)))
    b = runner(torch.ones((1, *CROP)))
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    a.body_pose.add_(1.0)  # a caller changing its outputs must not change the recording
    c = runner(torch.zeros((1, *CROP)))
    torch.testing.assert_close(c.body_pose, b.body_pose, rtol=0, atol=0)


def test_each_call_takes_at_least_network_ms(runner):
    crops = torch.full((2, *CROP), 0.5)
    for _ in range(3):
        start = time.perf_counter()
        runner(crops)
        assert time.perf_counter() - start >= runner.network_ms / 1000.0  # sleep-based: never shorter
        assert runner.inference_time >= runner.network_ms / 1000.0


def test_recording_is_cached_and_can_be_given(runner, standin_assets, tmp_path, monkeypatch):
    cache = runner.recording_path.parents[1]  # <cache>/emulated/<file>
    again = EmulatedRunner(standin_assets.checkpoint, cache_dir=cache, network_ms=0)
    assert again.recording_path == runner.recording_path
    given = EmulatedRunner(None, recording=runner.recording_path, network_ms=0)
    for x, y in zip(given(torch.zeros((1, *CROP))), runner(torch.zeros((1, *CROP)))):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    monkeypatch.setenv(RECORDING_ENV, str(runner.recording_path))
    monkeypatch.setenv(NETWORK_MS_ENV, "7.5")
    from_env = EmulatedRunner(None)
    assert from_env.network_ms == 7.5 and from_env.recording_path == runner.recording_path


def test_bad_settings_are_refused(runner, tmp_path, monkeypatch):
    monkeypatch.setenv(NETWORK_MS_ENV, "fast")
    with pytest.raises(ValueError, match=NETWORK_MS_ENV):
        EmulatedRunner(None, recording=runner.recording_path)
    with pytest.raises(ValueError, match="network_ms"):
        EmulatedRunner(None, recording=runner.recording_path, network_ms=-1)
    with pytest.raises(FileNotFoundError):
        EmulatedRunner(None, recording=tmp_path / "missing.npz", network_ms=0)
    with pytest.raises(Exception, match="precision"):
        EmulatedRunner(None, recording=runner.recording_path, network_ms=0, precision="fp16")
