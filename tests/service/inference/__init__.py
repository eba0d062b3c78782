"""Tests of inference: classifiers, style engines, strength and smoothing."""
