"""python -m h4w_ros.bench --mode node / soak: the real node process, a camera process and this
benchmark's receiver over DDS (loopback), emulated backend. Checks the records' shape only,
never speed values (2-core machines under load)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ros_support import require_rclpy

require_rclpy()

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 300


def _gone(pid: int) -> bool:
    """True when pid no longer runs (absent, or a zombie waiting for a parent to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def run_bench(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """The benchmark in its own session; on any failure the whole session is killed (no orphans)."""
    out = tmp_path / "bench.json"
    log = tmp_path / "bench.log"
    command = [sys.executable, "-m", "h4w_ros.bench", *args, "--json", str(out), "--log-dir", str(tmp_path / "logs")]
    with open(log, "w") as stream:
        proc = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, cwd=REPO, env=dict(os.environ),
                                start_new_session=True)
        try:
            proc.wait(timeout=TIMEOUT_S)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)  # the benchmark stops its node and camera on the way out
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    pass
            try:  # whatever is left of the session (the children die with the benchmark anyway)
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    text = log.read_text()
    result = subprocess.CompletedProcess(command, proc.returncode, text, "")
    assert proc.returncode == 0, f"bench failed ({proc.returncode}):\n{text[-4000:]}"
    records = json.loads(out.read_text())
    for record in records:  # every process the benchmark started has ended
        for name, pid in record.get("pids", {}).items():
            deadline = time.monotonic() + 10
            while not _gone(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert _gone(pid), f"{name} process {pid} outlived the benchmark"
    return result, records


@pytest.mark.slow
def test_node_mode_reports_rate_latency_cpu(tmp_path, standin_assets):
    result, records = run_bench(tmp_path, "--mode", "node", "--network-ms", "5", "--persons", "1", "--rate", "20", "--seconds", "4")
    assert len(records) == 1
    r = records[0]
    assert r["mode"] == "node" and r["persons"] == 1 and r["backend"] == "emulated" and r["network_ms"] == 5.0
    assert r["output_hz"] > 0 and r["outputs"] > 0
    for key in ("latency_ms_p50", "latency_ms_p95", "latency_ms_mean", "latency_ms_max"):
        assert isinstance(r[key], float) and r[key] > 0, key
    assert isinstance(r["node_cpu_pct"], float) and r["node_cpu_pct"] >= 0
    assert "camera_cpu_pct" in r and "tf_msgs_hz" in r and "marker_msgs_hz" in r
    diag = r["diagnostics"]  # whatever the node's /diagnostics held ({} when none arrived)
    assert isinstance(diag, dict)
    if diag:
        assert diag.get("backend") == "emulated" and "frames_received" in diag
    assert "out Hz" in result.stdout and "node CPU %" in result.stdout  # the table


@pytest.mark.slow
def test_short_soak_prints_the_rss_summary(tmp_path, standin_assets):
    result, records = run_bench(tmp_path, "--mode", "soak", "--minutes", "0.2", "--rate", "20")
    assert "rss_growth_pct=" in result.stdout and " frames" in result.stdout.split("rss_growth_pct=")[1]
    r = records[0]
    assert r["mode"] == "soak" and r["backend"] == "emulated" and r["network_ms"] == 5.0
    assert r["frames"] > 0 and len(r["rss_samples"]) >= 2 and r["windows"]
    assert r["rss_growth_pct"] is not None and r["rss_target_met"] is None  # far fewer than 10,000 frames
    assert all("rss_mb" in w and "outputs" in w for w in r["windows"])


@pytest.mark.slow
def test_qos_mode_reports_what_reaches_the_node_per_camera_qos(tmp_path, standin_assets):
    _, records = run_bench(tmp_path, "--mode", "qos", "--sizes", "320x240", "--seconds", "3", "--rate", "15")
    assert [(r["image"], r["camera_qos"]) for r in records] == [("320x240 rgb8", "reliable"), ("320x240 rgb8", "best_effort")]
    for r in records:
        assert r["node_image_qos"] == r["camera_qos"]  # image_reliability auto followed the camera
        assert r["received_hz"] > 0 and r["camera_hz"] > 0  # small images arrive whatever the QoS
        assert "images_lost_in_transport_pct" in r["diagnostics"]


def test_beside_python_thread_is_refused_outside_stages_mode(capsys):
    from h4w_ros.bench import main

    with pytest.raises(SystemExit) as exited:
        main(["--mode", "node", "--beside-python-thread"])
    assert exited.value.code == 2 and "--mode stages only" in capsys.readouterr().err
