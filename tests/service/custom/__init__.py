"""Tests of custom classifiers' pieces: training archives and the numpy head."""
