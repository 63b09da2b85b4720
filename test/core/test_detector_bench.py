"""python -m h4w_core.tools.detector_bench: detector_every_n and detector_scale as the node applies them."""
from __future__ import annotations

import json

from h4w_core.testing.sequence import make_crowd_sequence
from h4w_core.tools import detector_bench


def test_every_nth_frame_detects_and_predictions_fill_in():
    seq = make_crowd_sequence(num_frames=12, size=(240, 480))
    every = detector_bench.run_setting(seq, every_n=1, scale=1.0, score_threshold=0.4)
    third = detector_bench.run_setting(seq, every_n=3, scale=1.0, score_threshold=0.4)
    assert every["detector_runs"] == 12
    assert 4 <= third["detector_runs"] < 12  # every third frame, more only while no track is confirmed
    assert every["visible"] == third["visible"] > 0
    assert every["recall"] >= 0.8 and every["false_boxes"] == 0  # as test_detection measures HOG here
    assert third["found"] > 0


def test_the_cli_writes_one_record_per_setting(tmp_path, capsys):
    out = tmp_path / "det.json"
    assert detector_bench.main(["--every-n", "1", "2", "--scales", "1.0", "0.5", "--frames", "4", "--size", "320x240",
                                "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    assert [(r["every_n"], r["scale"]) for r in records] == [(1, 1.0), (2, 1.0), (1, 0.5), (2, 0.5)]
    assert records[0]["cost_vs_every_frame_full_scale"] == 1.0
    assert "recall" in capsys.readouterr().out
