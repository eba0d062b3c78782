"""The online half: HTTP API, job queue and workers, video I/O and ONNX inference (no torch)."""
