"""Inference backends (TensorRT engine builder and runtime, ...); heavy imports stay lazy."""
