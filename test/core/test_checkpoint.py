"""Checkpoint contract: key names and shapes of the release, strict loading, safe unpickling."""
from __future__ import annotations

import logging
import pickle

import pytest
import torch

from h4w_core.model.checkpoint import CheckpointError, load_network_weights, read_state_dict
from h4w_core.model.network import Hand4WholeNet
from support import SHARED


@pytest.fixture(scope="module")
def net():
    return Hand4WholeNet()


def official_keys():
    path = SHARED / "spec" / "official_state_dict.tsv"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    keys = {}
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            continue
        name, shape, _dtype, kind = line.split("\t")
        if kind in ("learned", "bn_buffer"):
            keys[name[len("module."):]] = tuple(eval(shape))  # trusted spec file: tuples like (64, 3, 7, 7)
    return keys


def test_state_dict_is_the_release_contract(net):
    ours = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert ours == official_keys()
    learned = sum(p.numel() for p in net.parameters())
    assert learned == 77_842_256


def _save(tmp_path, state, name="ckpt.pth.tar"):
    path = tmp_path / name
    torch.save({"epoch": 6, "network": {"module." + k: v for k, v in state.items()}}, path)
    return path


def test_known_extras_are_ignored_with_a_log_line(tmp_path, net, caplog):
    state = dict(net.state_dict())
    state["body_rotation_net.gender_out.0.weight"] = torch.zeros(2, 2048)
    state["body_rotation_net.gender_out.0.bias"] = torch.zeros(2)
    state["smplx_layer.v_template"] = torch.zeros(10475, 3)
    with caplog.at_level(logging.INFO):
        load_network_weights(Hand4WholeNet(), _save(tmp_path, state))
    assert "ignoring 3 known extra keys" in caplog.text


def test_missing_unexpected_and_misshaped_keys_are_listed(tmp_path, net):
    state = dict(net.state_dict())
    del state["face_regressor.expr_out.0.bias"]
    state["box_net.extra.weight"] = torch.zeros(1)
    state["cam_out_typo"] = torch.zeros(1)
    state["hand_position_net.conv.0.bias"] = torch.zeros(7)
    with pytest.raises(CheckpointError) as info:
        load_network_weights(Hand4WholeNet(), _save(tmp_path, state))
    text = str(info.value)
    assert "1 missing: face_regressor.expr_out.0.bias" in text
    assert "box_net.extra.weight" in text and "cam_out_typo" in text
    assert "hand_position_net.conv.0.bias: checkpoint (7,) vs network (160,)" in text


class _Payload:
    def __reduce__(self):
        return (print, ("code ran while loading",))


def test_checkpoint_cannot_run_code(tmp_path):
    path = tmp_path / "evil.pth.tar"
    with open(path, "wb") as f:
        pickle.dump({"network": {"x": _Payload()}}, f)
    with pytest.raises(CheckpointError):
        read_state_dict(path)


def test_missing_checkpoint_names_the_path_and_the_source(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        read_state_dict(tmp_path / "snapshot_6.pth.tar")
    assert str(tmp_path / "snapshot_6.pth.tar") in str(info.value)
    assert "Hand4Whole_RELEASE" in str(info.value)
