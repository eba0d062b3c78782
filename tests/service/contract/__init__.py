"""Tests of the manifest: the contract between training and the service."""
