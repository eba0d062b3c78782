"""The offline half: data, models, training loops, evaluation and ONNX export (torch)."""
