"""The evidence behind refusing bf16 on the CPU: the probe on the parity fixture."""
import numpy as np
import torch

from h4w_core.tools.precision_probe import POSE_BOUND_RAD, VERTEX_BOUND_M, main, probe


def test_bf16_breaks_the_issue_bounds_on_the_parity_fixture(parity_assets, parity_estimator):
    crop = torch.from_numpy(np.load(parity_assets["reference"])["input_patch"][None].astype(np.float32))
    before, _ = parity_estimator.forward(crop)
    results = {r.region: r for r in probe(parity_estimator, crop, ["whole network", "hand crops + backbone"])}
    # If this starts passing, CPU bf16 may have become accurate enough: revisit the PrecisionError.
    assert not results["whole network"].within_bounds
    assert results["whole network"].pose_err_rad > 10 * POSE_BOUND_RAD
    assert results["hand crops + backbone"].vertex_err_m > VERTEX_BOUND_M
    after, _ = parity_estimator.forward(crop)
    for name in before._fields:  # the fp32 forward is back, bit for bit
        assert torch.equal(getattr(before, name), getattr(after, name)), name


def test_probe_refuses_stand_in_assets(monkeypatch, capsys):
    monkeypatch.delenv("H4W_CHECKPOINT", raising=False)
    monkeypatch.delenv("H4W_SMPLX_DIR", raising=False)
    assert main([]) == 2
    assert "no checkpoint given" in capsys.readouterr().err
