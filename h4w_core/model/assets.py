"""Finding the user's licence-restricted assets, or generating clearly-labelled stand-ins.

The real SMPL-X file and the released checkpoint are never shipped. Without them the project
still runs end to end on stand-ins it generates: a human-shaped SMPL-X file and a randomly
initialised checkpoint in the release format. Every consumer is told loudly.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from h4w_core.model.body_model import find_smplx_file
from h4w_core.model.checkpoint import CHECKPOINT_HINT, save_release_checkpoint
from h4w_core.model.network import Hand4WholeNet

LOG = logging.getLogger(__name__)

STANDIN_WARNING = (
    "*** RUNNING ON STAND-IN ASSETS: a generated human-shaped SMPL-X file and a RANDOMLY "
    "INITIALISED checkpoint. Outputs show the pipeline working, NOT real pose estimates. "
    "Give {checkpoint} snapshot_6.pth.tar and {smplx_dir} with SMPLX_NEUTRAL.npz for real results. ***"
)
STANDIN_VERSION = 4  # bump when the generators change so caches are rebuilt


@dataclass(frozen=True)
class Assets:
    checkpoint: Path
    smplx_dir: Path
    standin: bool


def default_cache_dir() -> Path:
    return Path(os.environ.get("H4W_CACHE", Path.home() / ".cache" / "h4w"))


def _identity_6d(count: int, root_upright: bool = False) -> torch.Tensor:
    """6D (interleaved columns) of the identity, or of diag(1, -1, -1) for an upright root."""
    sixd = torch.tensor([1.0, 0.0, 0.0, -1.0, 0.0, 0.0] if root_upright else [1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    return sixd.repeat(count)


@torch.no_grad()
def make_standin_network(seed: int = 0) -> Hand4WholeNet:
    """Random weights (reference init), with pose-output layers set to a neutral upright person.

    The pose heads' weights are shrunk and their biases set to identity rotations (root turned
    upright in the y-down camera) so a stand-in run draws a recognisable person inside the box.
    """
    torch.manual_seed(seed)
    net = Hand4WholeNet()
    heads = (
        (net.body_rotation_net.root_pose_out[0], _identity_6d(1, root_upright=True)),
        (net.body_rotation_net.body_pose_out[0], _identity_6d(21)),
        (net.hand_rotation_net.hand_pose_out[0], _identity_6d(15)),
        (net.face_regressor.jaw_pose_out[0], _identity_6d(1)),
    )
    # a person ~1.7 m tall (T-pose arms included) fitting the crop: t_z = 56.38 * sigmoid(1.745) = 48 m
    rnet = net.body_rotation_net
    heads += (
        (rnet.cam_out[0], torch.tensor([0.0, 0.1, 1.745])),
        (rnet.shape_out[0], torch.zeros(10)),
        (net.face_regressor.expr_out[0], torch.zeros(10)),
        (net.box_net.lhand_size[2], torch.tensor([1.0, 1.0])),  # output-heatmap units (32 px)
        (net.box_net.rhand_size[2], torch.tensor([1.0, 1.0])),
        (net.box_net.face_size[2], torch.tensor([1.0, 1.0])),
    )
    for layer, bias in heads:
        layer.weight.mul_(1e-4)
        layer.bias.copy_(bias)
    for m in net.modules():  # realistic running stats so activations stay finite
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.fill_(1.0)
    return net.eval()


def ensure_standin_assets(cache_dir: str | os.PathLike | None = None) -> Assets:
    """Generate (once) and return the stand-in checkpoint and SMPL-X folder under cache_dir."""
    from h4w_core.testing.standin_smplx import write_standin_smplx

    root = Path(cache_dir) if cache_dir else default_cache_dir()
    folder = root / f"standin-v{STANDIN_VERSION}"
    ckpt = folder / "standin_snapshot.pth.tar"
    smplx_dir = folder / "smplx"
    smplx_file = smplx_dir / "SMPLX_NEUTRAL.npz"
    if not smplx_file.is_file():
        LOG.warning("generating stand-in SMPL-X file %s", smplx_file)
        tmp = smplx_dir / "SMPLX_NEUTRAL.tmp.npz"
        write_standin_smplx(tmp)
        tmp.replace(smplx_file)
    if not ckpt.is_file():
        LOG.warning("generating stand-in checkpoint %s (random weights, about 310 MB)", ckpt)
        tmp = folder / "standin_snapshot.tmp"
        save_release_checkpoint(make_standin_network(), tmp)
        tmp.replace(ckpt)
    return Assets(ckpt, smplx_dir, standin=True)


def resolve_assets(
    checkpoint: str | os.PathLike | None,
    smplx_dir: str | os.PathLike | None,
    allow_standin: bool = True,
    cache_dir: str | os.PathLike | None = None,
    flags: tuple[str, str] = ("--checkpoint", "--smplx-dir"),
) -> Assets:
    """User assets when given (missing ones are errors, never silently replaced); stand-ins when
    neither is given and allow_standin. Environment: H4W_CHECKPOINT, H4W_SMPLX_DIR.

    flags: how the caller's users pass the two paths, named in error messages (the CLIs' flags;
    the node says ``checkpoint:=`` and ``smplx_dir:=``).
    """
    checkpoint_flag, smplx_flag = flags
    hint = CHECKPOINT_HINT.replace("--checkpoint", checkpoint_flag)
    checkpoint = checkpoint or os.environ.get("H4W_CHECKPOINT") or None
    smplx_dir = smplx_dir or os.environ.get("H4W_SMPLX_DIR") or None
    if checkpoint is None and smplx_dir is None:
        if not allow_standin:
            raise FileNotFoundError(f"no checkpoint given. {hint}")
        LOG.warning(STANDIN_WARNING.format(checkpoint=checkpoint_flag, smplx_dir=smplx_flag))
        return ensure_standin_assets(cache_dir)
    if checkpoint is None or smplx_dir is None:
        missing = checkpoint_flag if checkpoint is None else smplx_flag
        raise FileNotFoundError(f"{missing} is required when the other real asset is given (no mixing with stand-ins)")
    ckpt = Path(checkpoint).expanduser()
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint not found: {ckpt}. {hint}")
    smplx_file = find_smplx_file(smplx_dir)
    return Assets(ckpt, smplx_file.parent, standin=False)
