"""Shared fixtures: stand-in assets (generated once per run) and the parity fixture in ../shared."""
from __future__ import annotations

import subprocess
import sys

import pytest

from support import CACHE, PARITY


@pytest.fixture(scope="session")
def standin_assets():
    """Human-shaped stand-in SMPL-X + random release-format checkpoint (cached under .cache/)."""
    from h4w_core.model.assets import ensure_standin_assets

    return ensure_standin_assets(CACHE)


@pytest.fixture(scope="session")
def standin_estimator(standin_assets):
    from h4w_core.inference.estimator import WholeBodyEstimator

    return WholeBodyEstimator(standin_assets.checkpoint, standin_assets.smplx_dir)


@pytest.fixture(scope="session")
def parity_assets():
    """The reference's stand-in checkpoint and SMPL-X file, made by the generators in ../shared/parity."""
    if not (PARITY / "reference_astronaut.npz").is_file():
        pytest.skip(f"parity fixture not found at {PARITY} (set H4W_SHARED to the shared folder)")
    folder = CACHE / "parity"
    ckpt = folder / "parity_snapshot.pth.tar"
    smplx_file = folder / "smplx" / "SMPLX_NEUTRAL.npz"
    folder.mkdir(parents=True, exist_ok=True)
    if not smplx_file.is_file():
        subprocess.run([sys.executable, str(PARITY / "make_stand_in_smplx.py"), str(smplx_file)], check=True)
    if not ckpt.is_file():
        tmp = folder / "parity_snapshot.tmp"
        subprocess.run([sys.executable, str(PARITY / "make_stand_in_checkpoint.py"), str(tmp)], check=True)
        tmp.replace(ckpt)
    return {"checkpoint": ckpt, "smplx_dir": smplx_file.parent, "image": PARITY / "astronaut.png",
            "reference": PARITY / "reference_astronaut.npz", "bbox": (20.0, 10.0, 360.0, 502.0)}


@pytest.fixture(scope="session")
def parity_estimator(parity_assets):
    from h4w_core.inference.estimator import WholeBodyEstimator

    return WholeBodyEstimator(parity_assets["checkpoint"], parity_assets["smplx_dir"])
