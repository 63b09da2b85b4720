"""h4w-infer end to end on stand-in assets, and its errors."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from h4w_core.cli.infer import main
from h4w_core.data import SAMPLE_PHOTO

REPO = Path(__file__).resolve().parents[2]
PHOTO = SAMPLE_PHOTO
KEYS_P3 = {"mesh_cam": (10475, 3), "vertices": (10475, 3), "joints": (137, 3)}
KEYS_P = {"cam_trans": 3, "global_orient": 3, "body_pose": 63, "left_hand_pose": 45, "right_hand_pose": 45,
          "jaw_pose": 3, "betas": 10, "expression": 10, "lhand_bbox": 4, "rhand_bbox": 4, "face_bbox": 4}


def test_two_people_npz_obj_and_overlay(tmp_path, standin_assets, capsys):
    out = tmp_path / "out.npz"
    code = main(["--image", str(PHOTO), "--bbox", "20,10,360,490", "--bbox", "250,200,200,300",
                 "--checkpoint", str(standin_assets.checkpoint), "--smplx-dir", str(standin_assets.smplx_dir),
                 "--intrinsics", "600,600,256,256", "--output", str(out), "--obj", str(tmp_path / "obj"),
                 "--overlay", str(tmp_path / "overlay.png")])
    assert code == 0
    data = np.load(out)
    for key, shape in KEYS_P3.items():
        assert data[key].shape == (2, *shape), key
    for key, n in KEYS_P.items():
        assert data[key].shape == (2, n), key
    assert np.all(np.isfinite(data["vertices"]))
    # real-camera vertices project inside the image for the given intrinsics
    v = data["vertices"][0]
    u = v[:, 0] / v[:, 2] * 600 + 256
    assert np.mean((u >= 0) & (u < 512)) > 0.9
    objs = sorted((tmp_path / "obj").glob("*.obj"))
    assert [p.name for p in objs] == ["person_0.obj", "person_1.obj"]
    assert sum(line.startswith("f ") for line in objs[0].read_text().splitlines()) == 20908
    overlay = cv2.imread(str(tmp_path / "overlay.png"))
    original = cv2.imread(str(PHOTO))
    assert overlay.shape == original.shape and np.mean(np.abs(overlay.astype(int) - original)) > 1.0


def test_standin_use_is_announced(tmp_path, standin_assets, monkeypatch):
    monkeypatch.setenv("H4W_CACHE", str(standin_assets.checkpoint.parent.parent))
    monkeypatch.delenv("H4W_CHECKPOINT", raising=False)
    monkeypatch.delenv("H4W_SMPLX_DIR", raising=False)
    proc = subprocess.run([sys.executable, "-m", "h4w_core.cli.infer", "--image", str(PHOTO), "--bbox", "20,10,360,490",
                           "--output", str(tmp_path / "o.npz")], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "STAND-IN ASSETS" in proc.stderr
    assert bool(np.load(tmp_path / "o.npz")["standin"])


def test_unreadable_image_fails_clearly(tmp_path, standin_assets, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    code = main(["--image", str(bad), "--bbox", "1,1,10,10", "--checkpoint", str(standin_assets.checkpoint),
                 "--smplx-dir", str(standin_assets.smplx_dir), "--output", str(tmp_path / "o.npz")])
    assert code == 1
    assert f"cannot read image {bad}" in capsys.readouterr().err


def test_box_outside_the_image_fails_clearly(tmp_path, standin_assets, capsys):
    code = main(["--image", str(PHOTO), "--bbox", "5000,5000,10,10", "--checkpoint", str(standin_assets.checkpoint),
                 "--smplx-dir", str(standin_assets.smplx_dir), "--output", str(tmp_path / "o.npz")])
    assert code == 1
    assert "outside the 512x512 image" in capsys.readouterr().err


@pytest.mark.parametrize("bbox", ["1,2,3", "a,b,c,d", "0,0,0,10"])
def test_malformed_box_is_a_usage_error(tmp_path, bbox, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--image", str(PHOTO), "--bbox", bbox, "--output", str(tmp_path / "o.npz")])
    assert info.value.code == 2
    assert "--bbox" in capsys.readouterr().err


def test_missing_assets_name_the_path_and_the_source(tmp_path, standin_assets, capsys):
    code = main(["--image", str(PHOTO), "--bbox", "20,10,360,490", "--checkpoint", str(standin_assets.checkpoint),
                 "--smplx-dir", str(tmp_path / "nowhere"), "--output", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert code == 1
    assert str(tmp_path / "nowhere" / "SMPLX_NEUTRAL.npz") in err and "smpl-x.is.tue.mpg.de" in err
    code = main(["--image", str(PHOTO), "--bbox", "20,10,360,490", "--checkpoint", str(tmp_path / "snapshot_6.pth.tar"),
                 "--smplx-dir", str(standin_assets.smplx_dir), "--output", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert code == 1
    assert str(tmp_path / "snapshot_6.pth.tar") in err and "Hand4Whole_RELEASE" in err


def test_mismatched_checkpoint_lists_the_keys(tmp_path, standin_assets, capsys):
    import torch

    torch.save({"network": {"module.backbone.conv1.weight": torch.zeros(1)}}, tmp_path / "wrong.pth.tar")
    code = main(["--image", str(PHOTO), "--bbox", "20,10,360,490", "--checkpoint", str(tmp_path / "wrong.pth.tar"),
                 "--smplx-dir", str(standin_assets.smplx_dir), "--output", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert code == 1
    assert "missing" in err and "backbone.conv1.weight: checkpoint (1,) vs network (64, 3, 7, 7)" in err
