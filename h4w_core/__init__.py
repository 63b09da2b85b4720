"""h4w_core: ROS-free Hand4Whole whole-body SMPL-X inference.

model/ (network, SMPL-X, checkpoint contract), inference/ (crops, estimator, placement, results),
people/ (detectors, trackers, smoothing, the per-frame pipeline), backends/ (runners, ONNX export,
TensorRT), io/ (meshes, overlays), tools/ (benchmarks, probes), testing/ (stand-in assets),
cli/ (the h4w-* commands). docs/ARCHITECTURE.md shows how they connect.
"""
