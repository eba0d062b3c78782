"""Inference: the exported models' manifest, onnxruntime sessions, and classification."""
