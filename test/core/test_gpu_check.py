"""scripts/gpu_check.sh --dry-run: the GPU check's code paths, JSON and summary on a CPU-only machine (CI).

The dry run measures CPU fp32 eager against itself (errors exactly 0) and lists every CUDA
configuration as skipped; nothing here asserts a time.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from support import REPO, SHARED

SCRIPT = REPO / "scripts" / "gpu_check.sh"
PRECISIONS = ("fp32", "fp16", "bf16")
CUDA_SPECS = {f"cuda {s.format(p=p)}" for p in PRECISIONS
              for s in ("torch:{p}", "torch:{p}:cuda_graphs", "torch_compiled:{p}:mode=inductor")}


def _env() -> dict:
    return {**os.environ, "H4W_SHARED": str(SHARED), "H4W_PYTHON": sys.executable}


@pytest.mark.slow  # 18 to 22 s on the 2-core machine (two Python starts, two checkpoint loads)
def test_gpu_check_dry_run(parity_assets, tmp_path):
    import torch

    out = tmp_path / "check"
    proc = subprocess.run(["bash", str(SCRIPT), str(out), "--dry-run"], capture_output=True, text=True, env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "gpu_check.json").read_text())
    assert data["dry_run"] is True and data["error"] is None and data["aborted"] is None
    assert data["bounds"] == {"pose_rad": 0.005, "vertex_m": 0.005, "required_for": "fp32"}

    parity = {r["config"]: r for r in data["parity"]["configs"]}
    cpu = parity.pop("cpu torch:fp32")
    assert cpu["status"] == "ok", cpu
    assert cpu["pose_err_rad"] == 0 and cpu["vertex_err_m"] == 0 and cpu["parity_max_abs_err"] == 0
    assert all(v == 0 for v in cpu["field_errors"].values()), cpu["field_errors"]
    assert cpu["within_bounds"] is True and cpu["verdict"] == "pass"
    assert set(parity) == CUDA_SPECS
    reason = "dry run" if torch.cuda.is_available() else "no CUDA"
    for part in ("parity", "latency"):
        for r in data[part]["configs"]:
            if r["device"] == "cuda":
                assert (r["status"], r["reason"]) == ("skipped", reason), (part, r)

    latency = {r["config"]: r for r in data["latency"]["configs"]}
    cpu = latency["cpu torch:fp32"]
    assert cpu["status"] == "ok", cpu
    assert [(r["backend"], r["precision"], r["batch"], r["repeats"]) for r in cpu["records"]] == [("torch", "fp32", 1, 1)]
    assert cpu["records"][0]["p50_ms"] > 0 and cpu["records"][0]["parity_max_abs_err"] == 0
    assert (data["node"]["status"], data["node"]["reason"]) == ("skipped", "dry run")
    assert data["environment"]["torch"] == torch.__version__

    summary = (out / "summary.txt").read_text()
    assert "cpu torch:fp32" in summary and f"skipped: {reason}" in summary
    assert "node benchmark: skipped: dry run" in summary


def test_gpu_check_usage_error_is_one_line(tmp_path):
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("gpu_check.sh: error: OUTDIR missing")
