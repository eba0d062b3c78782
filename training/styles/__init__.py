"""Style transfer on the training side: teacher, data, metrics, export and the CLI commands."""
