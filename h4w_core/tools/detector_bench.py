"""python -m h4w_core.tools.detector_bench: the built-in detector's cost and recall under
detector_every_n and detector_scale, on the synthetic crowd sequence.

For each (every_n, scale) it runs what the node's prepare stage runs for boxes: the people
pipeline's detector on every n-th frame (on the image scaled by ``scale``), the tracker's
constant-velocity predictions in between, the tracker updated every frame; the boxes of confirmed
tracks are what the node passes on. Reported: detector ms per detecting frame and per frame on
average, recall (fully visible people, visibility > 0.9, each matched one-to-one by a passed-on
box at IoU > 0.5), false boxes (IoU < 0.3 with every person), and the
ratio of the frame's average detector time to every-frame full-scale detection. It asserts nothing.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from h4w_core.people.pipeline import PeopleConfig, PeoplePipeline
from h4w_core.people.tracking import box_iou
from h4w_core.testing.sequence import CrowdSequence, make_crowd_sequence
from h4w_core.tools.report import emit, format_table

FULLY_VISIBLE = 0.9
MATCH_IOU, FALSE_IOU = 0.5, 0.3


def run_setting(seq: CrowdSequence, every_n: int, scale: float, detector: str = "hog",
                score_threshold: float = 0.5) -> dict:
    """One (every_n, scale) over the whole sequence, as the node's prepare stage does it."""
    pipeline = PeoplePipeline(PeopleConfig(box_source="detector", detector=detector, detector_score_threshold=score_threshold,
                                           detector_every_n=every_n, detector_scale=scale))
    detect_ms, frame_ms = [], []
    found = visible = false_boxes = 0
    runs = [0]
    detect = pipeline.detector.detect

    def counted(*args, **kwargs):
        runs[0] += 1
        return detect(*args, **kwargs)

    pipeline.detector.detect = counted
    for frame, gt, vis in zip(seq.frames, seq.gt_boxes, seq.visibility):
        before = runs[0]
        start = time.perf_counter()
        boxes, scores = pipeline.boxes(frame, "rgb")
        elapsed = (time.perf_counter() - start) * 1000.0
        frame_ms.append(elapsed)
        if runs[0] > before:
            detect_ms.append(elapsed)
        ids = pipeline.tracker.update(boxes, scores)
        boxes = boxes[np.asarray(ids) >= 0]  # what the node passes on: boxes of confirmed tracks
        iou = box_iou(gt, boxes) if len(gt) and len(boxes) else np.zeros((len(gt), len(boxes)))
        full = vis > FULLY_VISIBLE
        rows, cols = linear_sum_assignment(-iou)  # one box per person at most
        matched = np.zeros(len(gt), dtype=bool)
        matched[rows[iou[rows, cols] > MATCH_IOU]] = True
        found += int(matched[full].sum())
        visible += int(full.sum())
        false_boxes += int((iou.max(axis=0) < FALSE_IOU).sum()) if iou.shape[0] else len(boxes)
    return {"every_n": every_n, "scale": scale, "frames": len(seq.frames), "image": f"{seq.frames[0].shape[1]}x{seq.frames[0].shape[0]}",
            "detector_ms_per_detection": round(statistics.median(detect_ms), 2),
            "detector_ms_per_frame": round(statistics.fmean(frame_ms), 2),
            "detector_runs": runs[0], "recall": round(found / visible, 3) if visible else None, "found": found, "visible": visible,
            "false_boxes": false_boxes}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m h4w_core.tools.detector_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--every-n", type=int, nargs="+", default=[1, 2, 3, 5])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.75, 0.5])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", default="640x480", help="WxH of the sequence (default: a VGA camera)")
    parser.add_argument("--detector", default="hog")
    parser.add_argument("--score-threshold", type=float, default=0.5, help="the node's detector_score_threshold")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    seq = make_crowd_sequence(num_frames=args.frames, size=(height, width))
    records = [run_setting(seq, n, s, args.detector, args.score_threshold) for s in args.scales for n in args.every_n]
    baseline = next((r["detector_ms_per_frame"] for r in records if r["every_n"] == 1 and r["scale"] == 1.0), None)
    for r in records:
        r["cost_vs_every_frame_full_scale"] = round(r["detector_ms_per_frame"] / baseline, 3) if baseline else None
    columns = ["every_n", "scale", "detector_runs", "detector_ms_per_detection", "detector_ms_per_frame", "cost_vs_every_frame_full_scale",
               "recall", "false_boxes"]
    rows = [[str(r[c]) for c in columns] for r in records]
    note = (f"{args.detector} on make_crowd_sequence({args.frames} frames, {args.size}), score threshold {args.score_threshold}; "
            f"recall over fully visible people (visibility > {FULLY_VISIBLE}, IoU > {MATCH_IOU})")
    emit(format_table(columns, rows, note=note), records, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
