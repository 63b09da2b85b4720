"""python -m h4w_ros.bench: the node's own per-frame overhead, network excluded, in milliseconds.

Stages: image message -> numpy, post-processing (placement, boxes), WholeBodyMeshArray building,
its serialisation, TF building, marker building, and publishing all of them on real publishers.
The network runs once beforehand (stand-in assets unless real ones are given); its outputs are
reused so only the node's work is timed. Prints a table and JSON; asserts nothing.
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import rclpy
from rclpy.serialization import serialize_message
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from h4w_core.data import SAMPLE_PHOTO
from h4w_core.inference.camera import Intrinsics
from h4w_core.inference.estimator import WholeBodyEstimator
from h4w_core.inference.results import TrackInfo
from h4w_core.model.assets import resolve_assets
from h4w_core.tools.report import emit, format_table
from h4w_ros import messages
from h4w_ros.image_conversion import image_to_numpy, numpy_to_image
from h4w_ros.msg import WholeBodyMeshArray
from h4w_ros.tf_compat import make_transform_broadcaster

PHOTO = SAMPLE_PHOTO
STAGES = ("image_to_numpy", "postprocess", "mesh_message", "serialize", "tf_build", "markers_build", "publish", "total")


def bench(persons: int, repeats: int, estimator: WholeBodyEstimator, node, width: int = 640, height: int = 480) -> dict:
    photo = cv2.resize(cv2.imread(str(PHOTO)), (height, height))
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:, (width - height) // 2 : (width + height) // 2] = photo
    header = Header(frame_id="camera_optical_frame")
    image_msg = numpy_to_image(frame, "bgr8", header)
    boxes = [[(width - height) // 2 + 20 + 10 * i, 10, 300, 460] for i in range(persons)]
    intrinsics = Intrinsics(600.0, 600.0, width / 2, height / 2)
    crops, kept = estimator.crops(frame, boxes, "bgr")
    people = estimator.estimate(crops, [TrackInfo(input_box=boxes[i]) for i in kept])
    parents = estimator.skeleton_parents
    mesh_pub = node.create_publisher(WholeBodyMeshArray, "/h4w_bench/wholebody", 10)
    marker_pub = node.create_publisher(MarkerArray, "/h4w_bench/markers", 10)
    tf = make_transform_broadcaster(node)
    samples = defaultdict(list)
    for _ in range(repeats + 1):  # the first round warms up
        t = {}
        start = time.perf_counter()
        image, order = image_to_numpy(image_msg)
        t["image_to_numpy"] = time.perf_counter()
        results = estimator.pose(people, intrinsics)
        t["postprocess"] = time.perf_counter()
        array = messages.array_message(header, [messages.person_message(r) for r in results])
        t["mesh_message"] = time.perf_counter()
        serialize_message(array)
        t["serialize"] = time.perf_counter()
        transforms = [tr for i, r in enumerate(results) for tr in messages.person_transforms(r, header, str(i))]
        t["tf_build"] = time.perf_counter()
        markers = [m for i, r in enumerate(results) for m in messages.person_markers(r, header, str(i), estimator.faces, parents, i, 1.0)]
        t["markers_build"] = time.perf_counter()
        mesh_pub.publish(array)
        tf.sendTransform(transforms)
        marker_pub.publish(messages.marker_array(markers))
        t["publish"] = time.perf_counter()
        previous = start
        for stage in STAGES[:-1]:
            samples[stage].append((t[stage] - previous) * 1000.0)
            previous = t[stage]
        samples["total"].append((previous - start) * 1000.0)
    return {"persons": persons, "image": f"{width}x{height} bgr8",
            **{f"{s}_ms": round(statistics.median(samples[s][1:]), 2) for s in STAGES}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m h4w_ros.bench", description=__doc__.splitlines()[0])
    p.add_argument("--persons", type=int, nargs="+", default=[1, 4])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--smplx-dir", default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    assets = resolve_assets(args.checkpoint, args.smplx_dir)
    estimator = WholeBodyEstimator(assets.checkpoint, assets.smplx_dir)
    rclpy.init()
    node = rclpy.create_node("h4w_bench")
    gc.freeze()  # as the node does after loading: long-lived objects leave the collector's scans
    try:
        records = [bench(n, args.repeats, estimator, node) for n in args.persons]
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    rows = [[str(r["persons"])] + [f"{r[s + '_ms']:.2f}" for s in STAGES] for r in records]
    emit(format_table(["persons", *STAGES], rows, "(median ms per frame, network excluded)"), records, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
