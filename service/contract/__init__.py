"""The hand-over between training and the service: the manifest in `exported_models/`."""
