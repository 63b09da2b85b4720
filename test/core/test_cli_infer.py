"""h4w-infer end to end on stand-in assets, and its errors."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from h4w_core.cli.common import PNG_SIGNATURE, ImageReadError, StagedOutputs, image_size_from_header, read_image
from h4w_core.cli.infer import join_negative_values, main
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


# --- every failure: one line, a non-zero exit, nothing half-written -------------------------------------------


def error_line(err: str) -> str:
    """The one 'h4w-infer: error:' line of stderr (argparse's usage lines may precede it), no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if line.startswith("h4w-infer: error:")]
    assert len(lines) == 1, err
    return lines[0]


def asset_args(standin_assets) -> list[str]:
    return ["--checkpoint", str(standin_assets.checkpoint), "--smplx-dir", str(standin_assets.smplx_dir)]


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG signature and a valid IHDR chunk (correct CRC) claiming width x height, and no pixel data."""
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(PNG_SIGNATURE + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr)))
    return path


@pytest.mark.parametrize("intrinsics", ["nan,nan,256,256", "inf,600,256,256", "600,600,nan,256", "0,600,256,256",
                                        "-600,600,256,256", "600,-1,256,256", "2e6,2e6,256,256"])
def test_invalid_intrinsics_are_a_usage_error(tmp_path, intrinsics, capsys):
    out = tmp_path / "o.npz"
    with pytest.raises(SystemExit) as info:
        main(["--image", str(PHOTO), "--bbox", "20,10,360,490", "--intrinsics", intrinsics, "--output", str(out)])
    assert info.value.code == 2
    assert "argument --intrinsics" in error_line(capsys.readouterr().err)
    assert not out.exists()


def test_principal_point_far_outside_the_image_is_refused(tmp_path, standin_assets, capsys):
    out = tmp_path / "o.npz"
    with pytest.raises(SystemExit) as info:  # 6000 > 10 * 512: checked once the image size is known
        main(["--image", str(PHOTO), "--bbox", "20,10,360,490", "--intrinsics", "600,600,6000,256", "--output", str(out),
              *asset_args(standin_assets)])
    assert info.value.code == 2
    line = error_line(capsys.readouterr().err)
    assert "principal point" in line and "512x512" in line
    assert not out.exists()


@pytest.mark.parametrize("bbox", ["nan,10,100,200", "10,10,inf,200", "10,10,100,nan", "10,1e999,100,200"])
def test_non_finite_box_is_a_usage_error(tmp_path, bbox, capsys):
    out = tmp_path / "o.npz"
    with pytest.raises(SystemExit) as info:
        main(["--image", str(PHOTO), "--bbox", bbox, "--output", str(out)])
    assert info.value.code == 2
    assert "--bbox" in error_line(capsys.readouterr().err) and not out.exists()


def test_negative_values_after_the_option_are_values():
    argv = ["--bbox", "-50,10,200,300", "--intrinsics", "-.5,1,2,3", "--bbox", "1,2,3,4", "--output", "-x"]
    assert join_negative_values(argv) == ["--bbox=-50,10,200,300", "--intrinsics=-.5,1,2,3", "--bbox", "1,2,3,4", "--output", "-x"]


def test_box_starting_left_of_the_image_works_as_written(tmp_path, standin_assets, capsys):
    out = tmp_path / "o.npz"
    code = main(["--image", str(PHOTO), "--bbox", "-50,10,200,300", "--intrinsics", "600,600,256,256", "--output", str(out),
                 *asset_args(standin_assets)])
    assert code == 0, capsys.readouterr().err
    data = np.load(out)
    assert data["vertices"].shape == (1, 10475, 3) and np.all(np.isfinite(data["vertices"]))


def test_unknown_overlay_extension_is_refused_before_writing(tmp_path, standin_assets, capsys):
    out, overlay = tmp_path / "o.npz", tmp_path / "out.xyz"
    with pytest.raises(SystemExit) as info:
        main(["--image", str(PHOTO), "--bbox", "20,10,360,490", "--output", str(out), "--overlay", str(overlay),
              "--obj", str(tmp_path / "obj"), *asset_args(standin_assets)])
    assert info.value.code == 2
    assert ".xyz" in error_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


def test_output_without_suffix_gets_npz_and_says_so(tmp_path, standin_assets, capsys):
    code = main(["--image", str(PHOTO), "--bbox", "20,10,360,490", "--intrinsics", "600,600,256,256",
                 "--output", str(tmp_path / "noext"), *asset_args(standin_assets)])
    assert code == 0
    assert f"wrote {tmp_path / 'noext.npz'} (1 person(s))" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noext.npz"]
    assert set(KEYS_P) | set(KEYS_P3) | {"faces"} <= set(np.load(tmp_path / "noext.npz").files)


def test_image_header_claiming_a_huge_picture_is_refused_unread(tmp_path):
    huge = png_header_only(tmp_path / "huge.png", 100_000, 100_000)
    out = tmp_path / "o.npz"
    proc = subprocess.run([sys.executable, "-m", "h4w_core.cli.infer", "--image", str(huge), "--bbox", "1,1,10,10",
                           "--output", str(out)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1, proc.stderr
    line = error_line(proc.stderr)
    assert str(huge) in line and "100000x100000" in line and "megapixels" in line
    assert not out.exists()


def test_image_sizes_come_from_the_headers(tmp_path):
    assert image_size_from_header(PHOTO) == (512, 512)  # JPEG: the start-of-frame segment
    assert image_size_from_header(png_header_only(tmp_path / "h.png", 640, 480)) == (640, 480)
    cv2.imwrite(str(tmp_path / "real.png"), np.zeros((30, 70, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "real.jpg"), np.zeros((30, 70, 3), np.uint8))
    assert image_size_from_header(tmp_path / "real.png") == (70, 30)
    assert image_size_from_header(tmp_path / "real.jpg") == (70, 30)
    (tmp_path / "x.txt").write_text("hello")
    assert image_size_from_header(tmp_path / "x.txt") is None


def test_other_formats_are_bounded_and_decoder_complaints_join_the_line(tmp_path):
    (tmp_path / "huge.ppm").write_bytes(b"P6\n100000 100000\n255\n")  # no header parser here: OpenCV's own limit
    with pytest.raises(ImageReadError, match="more pixels than OpenCV decodes") as info:
        read_image(tmp_path / "huge.ppm")
    assert "\n" not in str(info.value)
    (tmp_path / "cut.jpg").write_bytes(PHOTO.read_bytes()[:300])
    with pytest.raises(ImageReadError, match=r"cut\.jpg \(unreadable or not an image") as info:
        read_image(tmp_path / "cut.jpg")
    assert "\n" not in str(info.value)
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "nowhere.png")
    assert read_image(PHOTO).shape == (512, 512, 3)


def _text_file(folder: Path, arrays: dict) -> None:
    (folder / "SMPLX_NEUTRAL.npz").write_text("this is not an SMPL-X model\n")


def _missing_arrays(folder: Path, arrays: dict) -> None:
    np.savez(folder / "SMPLX_NEUTRAL.npz", v_template=arrays["v_template"], f=arrays["f"])


def _truncated_regressor(folder: Path, arrays: dict) -> None:  # smplx loads it; BodyModel names the array
    np.savez(folder / "SMPLX_NEUTRAL.npz", **{**arrays, "J_regressor": arrays["J_regressor"][:3]})


def _wrong_shapedirs(folder: Path, arrays: dict) -> None:  # smplx loads it; BodyModel names the array
    np.savez(folder / "SMPLX_NEUTRAL.npz", **{**arrays, "shapedirs": arrays["shapedirs"][:5]})


@pytest.mark.parametrize("make", [_text_file, _missing_arrays, _truncated_regressor, _wrong_shapedirs],
                         ids=lambda f: f.__name__.strip("_"))
def test_bad_smplx_file_is_one_line_and_writes_nothing(tmp_path, standin_assets, make, capsys):
    with np.load(standin_assets.smplx_dir / "SMPLX_NEUTRAL.npz") as good:
        arrays = {k: good[k] for k in good.files}
    folder = tmp_path / "smplx"
    folder.mkdir()
    make(folder, arrays)
    outputs = tmp_path / "outputs"
    code = main(["--image", str(PHOTO), "--bbox", "20,10,360,490", "--checkpoint", str(standin_assets.checkpoint),
                 "--smplx-dir", str(folder), "--output", str(outputs / "o.npz"), "--obj", str(outputs / "obj"),
                 "--overlay", str(outputs / "overlay.png")])
    assert code == 1
    assert str(folder / "SMPLX_NEUTRAL.npz") in error_line(capsys.readouterr().err)
    assert not outputs.exists()


def test_failure_while_writing_removes_what_the_run_wrote(tmp_path, standin_assets, capsys):
    outputs = tmp_path / "outputs"
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code = main(["--image", str(PHOTO), "--bbox", "20,10,360,490", "--bbox", "250,200,200,300", *asset_args(standin_assets),
                 "--output", str(outputs / "o.npz"), "--obj", str(outputs / "obj"), "--overlay", str(blocker / "overlay.png")])
    assert code == 1  # the npz and both OBJs were staged when the overlay's folder could not be made
    assert str(blocker) in error_line(capsys.readouterr().err)
    assert not outputs.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_failure_while_committing_removes_the_files_already_moved(tmp_path, monkeypatch):
    import h4w_core.cli.common as common

    staged = StagedOutputs()
    for name in ("a.npz", "sub/b.obj", "sub/deeper/c.png"):
        staged.stage(tmp_path / "out" / name).write_text(name)
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst).name == "c.png":
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(common.os, "replace", replace)
    with pytest.raises(OSError):
        staged.commit()
    assert (tmp_path / "out" / "a.npz").exists()
    staged.discard()
    assert list(tmp_path.iterdir()) == []


def test_an_unexpected_exception_is_still_one_line(tmp_path, monkeypatch, capsys):
    import h4w_core.cli.infer as infer

    def broken(*args, **kwargs):
        raise TypeError("a programming error")

    monkeypatch.setattr(infer, "resolve_assets", broken)
    argv = ["--image", str(PHOTO), "--bbox", "20,10,360,490", "--output", str(tmp_path / "o.npz")]
    assert main(argv) == 1
    line = error_line(capsys.readouterr().err)
    assert "unexpected TypeError: a programming error" in line and "H4W_DEBUG" in line
    monkeypatch.setenv("H4W_DEBUG", "1")
    with pytest.raises(TypeError):
        main(argv)


def test_overlay_draws_on_its_own_copy():
    """render_overlay never writes into the frame it is given (the node passes the image message's
    own bytes, read-only): here a read-only RGB frame with only the stand-in banner to draw."""
    from h4w_core.inference.camera import Intrinsics
    from h4w_core.io.render import render_overlay

    rgb = np.full((120, 160, 3), 90, np.uint8)
    rgb.flags.writeable = False
    canvas = render_overlay(rgb[:, :, ::-1], [], np.zeros((0, 3), np.int64), Intrinsics.default_for(160, 120), True)
    assert (rgb == 90).all() and not np.shares_memory(canvas, rgb) and (canvas != 90).any()
