"""Action classifiers: UCF101 data, model families, the two training loops, export, reports."""
