"""Loading the released Hand4Whole checkpoint (snapshot_6.pth.tar) strictly and safely."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import nn

LOG = logging.getLogger(__name__)

CHECKPOINT_HINT = (
    "The released Hand4Whole weights (snapshot_6.pth.tar) are linked from the reference repository "
    "mks0601/Hand4Whole_RELEASE (README, 'Quick demo'); pass its path with --checkpoint."
)
IGNORED_PREFIXES = ("body_rotation_net.gender_out.", "smplx_layer")


class CheckpointError(ValueError):
    """A checkpoint that does not match the network: lists every offending key."""


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a release-format checkpoint ({'network': {'module.<key>': tensor}}) without running code."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}. {CHECKPOINT_HINT}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for bad files
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: {exc}") from exc
    state = blob.get("network", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds no state dict (expected a dict with key 'network')")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def load_network_weights(network: nn.Module, path: str | os.PathLike) -> None:
    """Load strictly by name and shape; tolerate only the documented extras (gender_out, smplx_layer*)."""
    state = read_state_dict(path)
    ignored = sorted(k for k in state if k.startswith(IGNORED_PREFIXES))
    if ignored:
        LOG.info("checkpoint %s: ignoring %d known extra keys (%s ...)", path, len(ignored), ignored[0])
    state = {k: v for k, v in state.items() if not k.startswith(IGNORED_PREFIXES)}
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs network {tuple(expected[k].shape)}"
        for k in set(state) & set(expected)
        if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or mismatched:
        parts = []
        for title, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", mismatched)):
            if keys:
                parts.append(f"{len(keys)} {title}: " + ", ".join(keys[:20]) + (" ..." if len(keys) > 20 else ""))
        raise CheckpointError(f"checkpoint {path} does not match the Hand4Whole network; " + "; ".join(parts))
    network.load_state_dict(state, strict=True)


def save_release_checkpoint(network: nn.Module, path: str | os.PathLike, epoch: int = 6) -> Path:
    """Write network weights in the release format (used for the stand-in checkpoint)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"module." + k: v.detach().cpu() for k, v in network.state_dict().items()}
    torch.save({"epoch": epoch, "network": state}, path)
    return path
